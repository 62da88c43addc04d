//go:build !race

package testutil

// Race is true when the race detector is on: timing bounds of tests widen with it.
const Race = false

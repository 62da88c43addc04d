//go:build !unix

package harness

// cpuTime is not measured here: results report 0.
func cpuTime() int64 { return 0 }

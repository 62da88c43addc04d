package env

import "os"

// osEnviron is the process environment; a config source is the one place outside cmd
// that reads it, because reading it is the source's purpose.
func osEnviron() []string { return os.Environ() }

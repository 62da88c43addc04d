package flag_test

import (
	"flag"
	"fmt"

	cflag "github.com/seed-b3892490/micro/config/source/flag"
)

// Flags nest on '-' and '_'; only the flags given are read.
func ExampleNewSource() {
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	fs.String("db-host", "localhost", "")
	fs.Int("db-port", 5432, "")
	_ = fs.Parse([]string{"-db-host=db.internal"})
	cs, _ := cflag.NewSource(cflag.WithFlagSet(fs)).Read()
	fmt.Println(string(cs.Data))
	// Output: {"db":{"host":"db.internal"}}
}

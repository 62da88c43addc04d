package reader_test

import (
	"fmt"
	"os"

	"github.com/seed-b3892490/micro/config/reader"
)

// Strings may name environment variables, with a default after ":-".
func ExampleExpandEnv() {
	os.Setenv("EXAMPLE_DB_USER", "alice")
	defer os.Unsetenv("EXAMPLE_DB_USER")
	fmt.Println(reader.ExpandEnv("postgres://${EXAMPLE_DB_USER}@${EXAMPLE_DB_HOST:-localhost}/app ($$5)"))
	// Output: postgres://alice@localhost/app ($5)
}

package env_test

import (
	"fmt"
	"os"

	"github.com/seed-b3892490/micro/config/source/env"
)

// Variables nest on underscores; a stripped prefix is removed from the path.
func ExampleNewSource() {
	os.Setenv("EXAMPLEAPP_DB_HOST", "db.internal")
	os.Setenv("EXAMPLEAPP_DB_PORT", "5432")
	defer os.Unsetenv("EXAMPLEAPP_DB_HOST")
	defer os.Unsetenv("EXAMPLEAPP_DB_PORT")
	cs, _ := env.NewSource(env.WithStrippedPrefix("EXAMPLEAPP")).Read()
	fmt.Println(string(cs.Data))
	// Output: {"db":{"host":"db.internal","port":5432}}
}

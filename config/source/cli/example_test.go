package cli_test

import (
	"fmt"

	"github.com/urfave/cli/v2"

	csrc "github.com/seed-b3892490/micro/config/source/cli"
)

// Read the flags of a running action.
func ExampleWithContext() {
	app := &cli.App{
		Name:  "app",
		Flags: []cli.Flag{&cli.StringFlag{Name: "db-host"}, &cli.IntFlag{Name: "db-port", Value: 5432}},
		Action: func(c *cli.Context) error {
			cs, err := csrc.WithContext(c).Read()
			if err != nil {
				return err
			}
			fmt.Println(string(cs.Data))
			return nil
		},
	}
	_ = app.Run([]string{"app", "--db-host", "db.internal"})
	// Output: {"db":{"host":"db.internal"}}
}

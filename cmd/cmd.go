// Package cmd turns command-line flags and MICRO_* environment variables into options.
//
// It is the one place, with micro.Service.Run, that reads os.Args and the environment.
// Backends are chosen by name from tables built explicitly here; a binary that wants a
// backend this module does not link by default adds it to the table in its main:
//
//	cmd.DefaultRegistries["etcd"] = etcd.NewEtcdRegistry
//
// Every flag has an environment variable: --server_name is MICRO_SERVER_NAME, and so on.
// A flag given on the command line wins over its variable.
package cmd

import (
	"github.com/urfave/cli/v2"
)

// Cmd parses flags and environment into options.
type Cmd interface {
	// App returns the cli application, to add flags or commands before Init.
	App() *cli.App
	// Init parses the arguments and environment and applies them to the components
	// Options point at.
	Init(opts ...Option) error
	// Options returns the options.
	Options() Options
}

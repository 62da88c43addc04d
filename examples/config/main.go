// Command config is a service whose greeting comes from a config file and changes as soon
// as the file is edited, without a restart.
//
//	go run ./examples/config --config_file examples/config/config.yaml
//	curl -XPOST -H 'Content-Type: application/json' -H 'Micro-Endpoint: Greeter.Hello' \
//	     -d '{"name": "alice"}' http://localhost:8080      # -> {"message":"Hello alice"}
//
// Edit greeting in config.yaml (with any editor) and the next call answers with the new
// greeting. Environment variables override the file: GREETER_GREETING=Hi sets greeting.
package main

import (
	"context"
	"errors"
	"log"

	"github.com/urfave/cli/v2"

	"github.com/seed-b3892490/micro"
	"github.com/seed-b3892490/micro/config"
	"github.com/seed-b3892490/micro/config/source"
	"github.com/seed-b3892490/micro/config/source/env"
	"github.com/seed-b3892490/micro/config/source/file"
)

// Request is the request of Greeter.Hello.
type Request struct {
	Name string `json:"name"`
}

// Response is the reply of Greeter.Hello.
type Response struct {
	Message string `json:"message"`
}

// Greeter greets with the configured greeting.
type Greeter struct {
	conf config.Config
}

// Hello reads the greeting on every call, so an edit of the file shows at once.
func (g *Greeter) Hello(ctx context.Context, req *Request, rsp *Response) error {
	v, err := g.conf.Get("greeting")
	if err != nil {
		return err
	}
	rsp.Message = v.String("Hello") + " " + req.Name
	return nil
}

func main() {
	var path string
	greeter := new(Greeter)
	service := micro.NewService(
		micro.Name("greeter"),
		micro.Address(":8080"),
		micro.Handle(greeter),
		micro.Flags(&cli.StringFlag{
			Name:        "config_file",
			Usage:       "the YAML, JSON or TOML file with the greeting",
			Value:       "config.yaml",
			EnvVars:     []string{"GREETER_CONFIG_FILE"},
			Destination: &path,
		}),
	)
	service.Init()

	conf := service.Options().Config
	defer conf.Close()
	if err := conf.Load(
		file.NewSource(file.WithPath(path)),
		env.NewSource(env.WithStrippedPrefix("GREETER")),
	); err != nil {
		log.Fatal(err)
	}
	greeter.conf = conf

	// Say when the greeting changes, and when an edit could not be read.
	w, err := conf.Watch("greeting")
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		for {
			v, err := w.Next()
			if errors.Is(err, source.ErrWatcherStopped) {
				return
			}
			if err != nil {
				log.Printf("config: %v", err)
				continue
			}
			log.Printf("greeting is now %q", v.String(""))
		}
	}()
	defer w.Stop()

	if err := service.Run(); err != nil {
		log.Fatal(err)
	}
}

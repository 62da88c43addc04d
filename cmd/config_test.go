package cmd_test

import (
	"strings"
	"testing"

	"github.com/seed-b3892490/micro/cmd"
	"github.com/seed-b3892490/micro/config"
	"github.com/seed-b3892490/micro/config/source/memory"
)

// TestConfigFlag: --config and MICRO_CONFIG choose a config implementation by name;
// without either the config given stays; an unknown name is an error naming the known.
func TestConfigFlag(t *testing.T) {
	mine, _ := config.NewConfig(config.WithWatcherDisabled(), config.WithSource(memory.NewSource(memory.WithJSON([]byte(`{"mine":true}`)))))
	defer mine.Close()

	c := mine
	if err := cmd.NewCmd().Init(cmd.Args("svc"), cmd.Config(&c)); err != nil {
		t.Fatal(err)
	}
	if c != mine {
		t.Fatal("no --config: the config was replaced")
	}

	made := 0
	custom := func(opts ...config.Option) (config.Config, error) {
		made++
		return config.NewConfig(append(opts, config.WithWatcherDisabled())...)
	}
	c = mine
	if err := cmd.NewCmd(cmd.NewConfig("custom", custom)).Init(cmd.Args("svc", "--config", "custom"), cmd.Config(&c)); err != nil {
		t.Fatal(err)
	}
	if c == mine || made != 1 {
		t.Fatalf("--config=custom: replaced %v, made %d", c != mine, made)
	}
	_ = c.Close()

	t.Setenv("MICRO_CONFIG", "default")
	c = mine
	if err := cmd.NewCmd().Init(cmd.Args("svc"), cmd.Config(&c)); err != nil {
		t.Fatal(err)
	}
	if c == mine {
		t.Fatal("MICRO_CONFIG=default did not make a config")
	}
	if v, _ := c.Get("mine"); v.Bool(false) {
		t.Fatal("the new config must start empty")
	}
	_ = c.Close()

	c = mine
	err := cmd.NewCmd().Init(cmd.Args("svc", "--config", "consul"), cmd.Config(&c))
	if err == nil || !strings.Contains(err.Error(), `unknown config "consul"`) || !strings.Contains(err.Error(), "default") {
		t.Fatalf("unknown config: %v", err)
	}
}

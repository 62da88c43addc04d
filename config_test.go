package micro_test

import (
	"testing"

	"github.com/seed-b3892490/micro"
	"github.com/seed-b3892490/micro/config"
	"github.com/seed-b3892490/micro/config/source/memory"
)

func TestServiceConfigOption(t *testing.T) {
	if got := micro.NewService(micro.Name("cfg-default")).Options().Config; got != config.DefaultConfig {
		t.Fatalf("default Config = %v, want config.DefaultConfig", got)
	}
	c, err := config.NewConfig(config.WithWatcherDisabled(), config.WithSource(memory.NewSource(memory.WithJSON([]byte(`{"greeting":"hi"}`)))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	svc := micro.NewService(micro.Name("cfg"), micro.Config(c))
	v, _ := svc.Options().Config.Get("greeting")
	if v.String("") != "hi" {
		t.Fatalf("micro.Config: greeting = %q", v.String(""))
	}
}

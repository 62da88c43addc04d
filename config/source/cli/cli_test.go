package cli

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/urfave/cli/v2"
)

// run runs an app with args and returns the document the source read in its action.
func run(t *testing.T, unset bool, args ...string) map[string]interface{} {
	t.Helper()
	var got map[string]interface{}
	app := &cli.App{
		Name: "test",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "database-address", Value: "localhost"},
			&cli.IntFlag{Name: "database_pool-max", Value: 5},
			&cli.BoolFlag{Name: "debug"},
			&cli.StringSliceFlag{Name: "peers"},
			&cli.DurationFlag{Name: "timeout", Value: 1e9},
			&cli.StringFlag{Name: "from-env", EnvVars: []string{"MICRO_TEST_CLI_FROM_ENV"}},
		},
		Action: func(c *cli.Context) error {
			cs, err := WithContext(c, IncludeUnset(unset)).Read()
			if err != nil {
				return err
			}
			return json.Unmarshal(cs.Data, &got)
		},
	}
	if err := app.Run(append([]string{"test"}, args...)); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestGivenFlagsOnly(t *testing.T) {
	t.Setenv("MICRO_TEST_CLI_FROM_ENV", "env-value")
	got := run(t, false, "--database-address=db:1", "--peers=a", "--peers=b", "--timeout=2s")
	want := map[string]interface{}{
		"database": map[string]interface{}{"address": "db:1"},
		"peers":    []interface{}{"a", "b"},
		"timeout":  "2s",
		"from":     map[string]interface{}{"env": "env-value"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v", got)
	}
}

func TestIncludeUnset(t *testing.T) {
	got := run(t, true, "--debug")
	db := got["database"].(map[string]interface{})
	if db["address"] != "localhost" || got["debug"] != true || got["timeout"] != "1s" {
		t.Fatalf("got %#v", got)
	}
	if db["pool"].(map[string]interface{})["max"] != float64(5) {
		t.Fatalf("pool %#v", db["pool"])
	}
}

func TestWithoutContextReadsCmdFlags(t *testing.T) {
	cs, err := NewSource().Read()
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(cs.Data) || cs.Source != "cli" {
		t.Fatalf("%+v", cs)
	}
	if err := NewSource().Write(cs); err == nil {
		t.Fatal("Write: no error")
	}
}

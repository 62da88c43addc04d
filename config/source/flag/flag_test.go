package flag

import (
	"encoding/json"
	"flag"
	"io"
	"reflect"
	"testing"
	"time"
)

func flagSet(t *testing.T, args ...string) *flag.FlagSet {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("database-address", "localhost", "")
	fs.Int("database_pool-max", 5, "")
	fs.Bool("debug", false, "")
	fs.Float64("ratio", 0.5, "")
	fs.Duration("timeout", time.Second, "")
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func doc(t *testing.T, fs *flag.FlagSet, unset bool) map[string]interface{} {
	t.Helper()
	cs, err := NewSource(WithFlagSet(fs), IncludeUnset(unset)).Read()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]interface{}
	if err := json.Unmarshal(cs.Data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestOnlyGivenFlagsByDefault(t *testing.T) {
	fs := flagSet(t, "-database-address=db:1", "-debug", "-timeout=3s")
	got := doc(t, fs, false)
	want := map[string]interface{}{
		"database": map[string]interface{}{"address": "db:1"},
		"debug":    true,
		"timeout":  "3s",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v", got)
	}
}

func TestIncludeUnset(t *testing.T) {
	got := doc(t, flagSet(t, "-ratio=2"), true)
	want := map[string]interface{}{
		"database": map[string]interface{}{"address": "localhost", "pool": map[string]interface{}{"max": float64(5)}},
		"debug":    false,
		"ratio":    float64(2),
		"timeout":  "1s",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v", got)
	}
}

func TestUnparsedFlagsAreAnError(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	if _, err := NewSource(WithFlagSet(fs)).Read(); err == nil {
		t.Fatal("no error")
	}
	if err := NewSource().Write(nil); err == nil {
		t.Fatal("Write: no error")
	}
}

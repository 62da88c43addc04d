package env

import (
	"encoding/json"
	"reflect"
	"testing"
)

func readEnv(t *testing.T, s *envSource, environ ...string) map[string]interface{} {
	t.Helper()
	s.environ = func() []string { return environ }
	cs, err := s.Read()
	if err != nil {
		t.Fatal(err)
	}
	if cs.Format != "json" || cs.Source != "env" || cs.Checksum != cs.Sum() {
		t.Fatalf("change set %+v", cs)
	}
	var m map[string]interface{}
	if err := json.Unmarshal(cs.Data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNestingAndTypes(t *testing.T) {
	s := NewSource().(*envSource)
	got := readEnv(t, s, "DATABASE_ADDRESS=db:5432", "DATABASE_POOL_MAX=10", "DEBUG=true", "NAME=x=y", "EMPTY=", "_=/bin/sh", "A__B=1", "BAD")
	want := map[string]interface{}{
		"database": map[string]interface{}{"address": "db:5432", "pool": map[string]interface{}{"max": float64(10)}},
		"debug":    true,
		"name":     "x=y",
		"empty":    "",
		"a":        map[string]interface{}{"b": float64(1)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v\nwant %#v", got, want)
	}
}

func TestDeeperVariableWinsWhateverTheOrder(t *testing.T) {
	for _, env := range [][]string{{"APP=1", "APP_PORT=2"}, {"APP_PORT=2", "APP=1"}} {
		got := readEnv(t, NewSource().(*envSource), env...)
		if !reflect.DeepEqual(got, map[string]interface{}{"app": map[string]interface{}{"port": float64(2)}}) {
			t.Fatalf("%v: %#v", env, got)
		}
	}
}

func TestPrefixes(t *testing.T) {
	environ := []string{"MICRO_REGISTRY=etcd", "MICROSOFT=no", "APP_DB_HOST=h", "APPLE=no", "OTHER=x"}
	got := readEnv(t, NewSource(WithPrefix("MICRO_")).(*envSource), environ...)
	if !reflect.DeepEqual(got, map[string]interface{}{"micro": map[string]interface{}{"registry": "etcd"}}) {
		t.Fatalf("WithPrefix: %#v", got)
	}
	got = readEnv(t, NewSource(WithStrippedPrefix("APP")).(*envSource), environ...)
	if !reflect.DeepEqual(got, map[string]interface{}{"db": map[string]interface{}{"host": "h"}}) {
		t.Fatalf("WithStrippedPrefix: %#v", got)
	}
	got = readEnv(t, NewSource(WithStrippedPrefix("APP"), WithPrefix("OTHER")).(*envSource), environ...)
	if len(got) != 2 || got["other"] != "x" {
		t.Fatalf("both: %#v", got)
	}
}

func TestReadsTheProcessEnvironment(t *testing.T) {
	t.Setenv("MICROTESTENV_GREETING", "hi")
	cs, err := NewSource(WithStrippedPrefix("MICROTESTENV")).Read()
	if err != nil || string(cs.Data) != `{"greeting":"hi"}` {
		t.Fatalf("%s %v", cs.Data, err)
	}
	if err := NewSource().Write(cs); err == nil {
		t.Fatal("Write: no error")
	}
	w, _ := NewSource().Watch()
	_ = w.Stop()
}

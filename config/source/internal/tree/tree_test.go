package tree

import (
	"reflect"
	"testing"

	"github.com/seed-b3892490/micro/config/encoder/json"
)

func TestDeeperWinsEitherOrder(t *testing.T) {
	want := map[string]interface{}{"a": map[string]interface{}{"b": 2}}
	m := map[string]interface{}{}
	Set(m, []string{"a"}, 1)
	Set(m, []string{"a", "b"}, 2)
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("leaf first: %#v", m)
	}
	m = map[string]interface{}{}
	Set(m, []string{"a", "b"}, 2)
	Set(m, []string{"a"}, 1)
	Set(m, nil, 3)
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("map first: %#v", m)
	}
	cs, err := ChangeSet(json.NewEncoder(), "test", m)
	if err != nil || string(cs.Data) != `{"a":{"b":2}}` || cs.Source != "test" || cs.Format != "json" || cs.Checksum != cs.Sum() {
		t.Fatalf("%+v %v", cs, err)
	}
}

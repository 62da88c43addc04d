package json

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-b3892490/micro/config/source"
)

func cs(format, data string) *source.ChangeSet {
	return &source.ChangeSet{Format: format, Data: []byte(data), Source: "test-" + format}
}

func mergeValues(t *testing.T, sets ...*source.ChangeSet) map[string]interface{} {
	t.Helper()
	r := NewReader()
	m, err := r.Merge(sets...)
	if err != nil {
		t.Fatal(err)
	}
	v, err := r.Values(m)
	if err != nil {
		t.Fatal(err)
	}
	return v.Map()
}

func TestMergeDeepLaterWins(t *testing.T) {
	got := mergeValues(t,
		cs("json", `{"a":1,"db":{"host":"h1","port":5432,"opts":{"ssl":true}},"list":[1,2]}`),
		cs("yaml", "db:\n  host: h2\n  opts:\n    timeout: 5s\nlist: [3]\n"),
		cs("toml", "[db]\nport = 6543\n"),
	)
	want := map[string]interface{}{
		"a": json.Number("1"),
		"db": map[string]interface{}{
			"host": "h2",
			"port": json.Number("6543"),
			"opts": map[string]interface{}{"ssl": true, "timeout": "5s"},
		},
		"list": []interface{}{json.Number("3")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("merged\n got %#v\nwant %#v", got, want)
	}
}

func TestMergeScalarReplacesMapAndBack(t *testing.T) {
	got := mergeValues(t, cs("json", `{"a":{"b":1}}`), cs("json", `{"a":"flat"}`))
	if got["a"] != "flat" {
		t.Fatalf("a = %#v, want flat", got["a"])
	}
	got = mergeValues(t, cs("json", `{"a":"flat"}`), cs("json", `{"a":{"b":1}}`))
	if !reflect.DeepEqual(got["a"], map[string]interface{}{"b": json.Number("1")}) {
		t.Fatalf("a = %#v", got["a"])
	}
}

func TestMergeDoesNotAliasInputs(t *testing.T) {
	r := NewReader()
	a := cs("json", `{"m":{"x":1}}`)
	m1, _ := r.Merge(a, cs("json", `{"m":{"y":2}}`))
	m2, _ := r.Merge(a)
	if strings.Contains(string(m2.Data), `"y"`) {
		t.Fatalf("second merge saw the first's keys: %s (from %s)", m2.Data, m1.Data)
	}
}

func TestBadDocumentsAreClearErrors(t *testing.T) {
	r := NewReader()
	cases := map[string]*source.ChangeSet{
		"malformed json": cs("json", `{"a":`),
		"trailing data":  cs("json", `{"a":1} {"b":2}`),
		"malformed yaml": cs("yaml", "a: [1, 2\n"),
		"malformed toml": cs("toml", "a = = 1\n"),
		"empty":          cs("json", "  \n"),
		"list root":      cs("json", `[1,2]`),
		"scalar root":    cs("yaml", "hello\n"),
		"unknown format": cs("hcl", `a = 1`),
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := r.Merge(cs("json", `{"ok":true}`), c)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.Source) {
				t.Fatalf("error %q does not name the source %q", err, c.Source)
			}
		})
	}
	if _, err := r.Merge(cs("json", "")); !errors.Is(err, errEmpty) {
		t.Fatalf("empty: %v", err)
	}
}

func TestYAMLOfOnlyCommentsIsEmpty(t *testing.T) {
	got := mergeValues(t, cs("json", `{"a":1}`), cs("yaml", "# nothing yet\n"))
	if got["a"] != json.Number("1") {
		t.Fatalf("got %#v", got)
	}
}

func TestDeepNestingRefused(t *testing.T) {
	doc := strings.Repeat(`{"a":`, maxDepth+5) + "1" + strings.Repeat("}", maxDepth+5)
	if _, err := NewReader().Merge(cs("json", doc)); err == nil || !strings.Contains(err.Error(), "deeper") {
		t.Fatalf("err = %v", err)
	}
}

func TestYAMLAndTOMLTypes(t *testing.T) {
	got := mergeValues(t,
		cs("yaml", "n: 12\nf: 1.5\nnan: .nan\nt: 2026-12-01T10:00:00Z\nm:\n  1: one\nlist:\n  - a: 1\n"),
		cs("toml", "big = 9007199254740993\nwhen = 2026-12-01T10:00:00Z\nday = 2026-12-01\n[[servers]]\nname = \"x\"\n"),
	)
	checks := map[string]interface{}{
		"n":   json.Number("12"),
		"f":   json.Number("1.5"),
		"nan": "NaN",
		"t":   "2026-12-01T10:00:00Z",
		"big": json.Number("9007199254740993"),
		"day": "2026-12-01",
	}
	for k, want := range checks {
		if !reflect.DeepEqual(got[k], want) {
			t.Errorf("%s = %#v, want %#v", k, got[k], want)
		}
	}
	if m, _ := got["m"].(map[string]interface{}); m["1"] != "one" {
		t.Errorf("m = %#v", got["m"])
	}
	if s, _ := got["servers"].([]interface{}); len(s) != 1 {
		t.Errorf("servers = %#v", got["servers"])
	}
}

func TestEnvExpansionInStrings(t *testing.T) {
	t.Setenv("MICRO_TEST_DB_PASSWORD", `p"a\ss`+"\n")
	t.Setenv("MICRO_TEST_EMPTY", "")
	got := mergeValues(t, cs("json", `{"db":{"password":"${MICRO_TEST_DB_PASSWORD}","url":"u:${MICRO_TEST_DB_PASSWORD}@h"},`+
		`"port":"${MICRO_TEST_UNSET_PORT:-8080}","empty":"${MICRO_TEST_EMPTY:-d}","literal":"$${HOME}","bad":"${1X}","open":"${X"}`))
	db := got["db"].(map[string]interface{})
	if db["password"] != "p\"a\\ss\n" || db["url"] != "u:p\"a\\ss\n@h" {
		t.Fatalf("db = %#v", db)
	}
	for k, want := range map[string]string{"port": "8080", "empty": "d", "literal": "${HOME}", "bad": "${1X}", "open": "${X"} {
		if got[k] != want {
			t.Errorf("%s = %#v, want %q", k, got[k], want)
		}
	}
}

func values(t *testing.T, doc string) *jsonValues {
	t.Helper()
	v, err := NewValues([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return v.(*jsonValues)
}

func TestValueConversions(t *testing.T) {
	v := values(t, `{"s":"str","n":42,"f":2.5,"b":true,"sn":" 17 ","sb":"false","sf":"3.25","d":"1.5s","dn":1000,
		"list":["a",1,true],"csv":"x, y,z","m":{"k":"v","n":1,"sub":{"a":1}},"hex":"0x10","big":1e30,"nil":null}`)
	get := func(p ...string) *jsonValue {
		val, err := v.Get(p...)
		if err != nil {
			t.Fatal(err)
		}
		return val.(*jsonValue)
	}
	if got := get("s").String("d"); got != "str" {
		t.Errorf("String = %q", got)
	}
	if got := get("n").String("d"); got != "42" {
		t.Errorf("number String = %q", got)
	}
	if got := get("b").String("d"); got != "true" {
		t.Errorf("bool String = %q", got)
	}
	if got := get("missing").String("d"); got != "d" {
		t.Errorf("missing String = %q", got)
	}
	if got := get("m").String("d"); got != "d" {
		t.Errorf("map String = %q", got)
	}
	if got := get("n").Int(-1); got != 42 {
		t.Errorf("Int = %d", got)
	}
	if got := get("sn").Int(-1); got != 17 {
		t.Errorf("string Int = %d", got)
	}
	if got := get("hex").Int(-1); got != 16 {
		t.Errorf("hex Int = %d", got)
	}
	if got := get("f").Int(-1); got != -1 {
		t.Errorf("fraction Int = %d, want default", got)
	}
	if got := get("big").Int(-1); got != -1 {
		t.Errorf("1e30 Int = %d, want default", got)
	}
	if got := get("s").Int(-1); got != -1 {
		t.Errorf("word Int = %d", got)
	}
	if got := get("f").Float64(-1); got != 2.5 {
		t.Errorf("Float64 = %v", got)
	}
	if got := get("sf").Float64(-1); got != 3.25 {
		t.Errorf("string Float64 = %v", got)
	}
	if got := get("b").Bool(false); !got {
		t.Error("Bool")
	}
	if got := get("sb").Bool(true); got {
		t.Error("string Bool")
	}
	if got := get("s").Bool(true); !got {
		t.Error("word Bool should be default")
	}
	if got := get("d").Duration(0); got != 1500*time.Millisecond {
		t.Errorf("Duration = %v", got)
	}
	if got := get("dn").Duration(0); got != time.Microsecond {
		t.Errorf("number Duration = %v", got)
	}
	if got := get("s").Duration(time.Hour); got != time.Hour {
		t.Errorf("word Duration = %v", got)
	}
	if got := get("list").StringSlice(nil); !reflect.DeepEqual(got, []string{"a", "1", "true"}) {
		t.Errorf("StringSlice = %q", got)
	}
	if got := get("csv").StringSlice(nil); !reflect.DeepEqual(got, []string{"x", "y", "z"}) {
		t.Errorf("csv StringSlice = %q", got)
	}
	if got := get("m").StringSlice([]string{"d"}); !reflect.DeepEqual(got, []string{"d"}) {
		t.Errorf("map StringSlice = %q", got)
	}
	if got := get("m").StringMap(nil); !reflect.DeepEqual(got, map[string]string{"k": "v", "n": "1", "sub": `{"a":1}`}) {
		t.Errorf("StringMap = %q", got)
	}
	if got := get("s").StringMap(map[string]string{"d": "d"}); got["d"] != "d" {
		t.Errorf("string StringMap = %q", got)
	}
	if got := string(get("s").Bytes()); got != "str" {
		t.Errorf("string Bytes = %q", got)
	}
	if got := string(get("m", "sub").Bytes()); got != `{"a":1}` {
		t.Errorf("map Bytes = %q", got)
	}
	if got := get("list", "0").String(""); got != "a" {
		t.Errorf("list index = %q", got)
	}
	if got := get("list", "9").String("d"); got != "d" {
		t.Errorf("list index out of range = %q", got)
	}
	if got := get("s", "deeper").String("d"); got != "d" {
		t.Errorf("path through a string = %q", got)
	}
	if got := get("nil").String("d"); got != "d" {
		t.Errorf("null String = %q", got)
	}
}

func TestScanKeepsDefaults(t *testing.T) {
	v := values(t, `{"db":{"host":"h","port":5432},"timeout":2000000000}`)
	type DB struct {
		Host  string `json:"host"`
		Port  int    `json:"port"`
		Pool  int    `json:"pool"`
		Debug bool   `json:"debug"`
	}
	db := DB{Host: "default", Pool: 10, Debug: true}
	val, _ := v.Get("db")
	if err := val.Scan(&db); err != nil {
		t.Fatal(err)
	}
	if db != (DB{Host: "h", Port: 5432, Pool: 10, Debug: true}) {
		t.Fatalf("db = %+v", db)
	}
	missing := DB{Host: "kept"}
	val, _ = v.Get("nothing", "here")
	if err := val.Scan(&missing); err != nil || missing.Host != "kept" {
		t.Fatalf("missing scan: %v %+v", err, missing)
	}
	var all struct {
		Timeout time.Duration `json:"timeout"`
	}
	if err := v.Scan(&all); err != nil || all.Timeout != 2*time.Second {
		t.Fatalf("root scan: %v %+v", err, all)
	}
	var wrong struct {
		DB string `json:"db"`
	}
	if err := v.Scan(&wrong); err == nil {
		t.Fatal("scanning a map into a string: no error")
	}
}

func TestSetDelCopyOnWrite(t *testing.T) {
	v := values(t, `{"a":{"b":1,"c":2}}`)
	before := v.Map()
	v.Set("x", "a", "b")
	v.Set(map[string]int{"k": 1}, "new", "deep")
	v.Set(struct {
		N int `json:"n"`
	}{3}, "s")
	v.Del("a", "c")
	v.Del("no", "such", "path")
	v.Set(1) // no path: nothing
	got := v.Map()
	want := map[string]interface{}{
		"a":   map[string]interface{}{"b": "x"},
		"new": map[string]interface{}{"deep": map[string]interface{}{"k": json.Number("1")}},
		"s":   map[string]interface{}{"n": json.Number("3")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v\nwant %#v", got, want)
	}
	if !reflect.DeepEqual(before, map[string]interface{}{"a": map[string]interface{}{"b": json.Number("1"), "c": json.Number("2")}}) {
		t.Fatalf("an earlier Map changed: %#v", before)
	}
	var back map[string]interface{}
	if err := json.Unmarshal(v.Bytes(), &back); err != nil || len(back) != 3 {
		t.Fatalf("Bytes after Set: %s %v", v.Bytes(), err)
	}
	// Map returns a copy: changing it changes nothing.
	got["a"].(map[string]interface{})["b"] = "changed"
	if val, _ := v.Get("a", "b"); val.String("") != "x" {
		t.Fatal("Map shares the document")
	}
}

func TestSetWhileReading(t *testing.T) {
	v := values(t, `{"n":{"a":0,"b":0}}`)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var n struct{ A, B int }
				val, _ := v.Get("n")
				if err := val.Scan(&n); err != nil {
					t.Error(err)
					return
				}
				if n.A != n.B {
					t.Errorf("read a half-set value: %+v", n)
					return
				}
			}
		}()
	}
	for i := 1; i <= 500; i++ {
		v.Set(map[string]int{"a": i, "b": i}, "n")
	}
	close(stop)
	wg.Wait()
}

func TestReaderValuesOfOtherFormat(t *testing.T) {
	v, err := NewReader().Values(cs("yaml", "a: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if val, _ := v.Get("a"); val.Int(0) != 1 {
		t.Fatal("yaml change set not read")
	}
	if _, err := NewReader().Values(nil); err == nil {
		t.Fatal("nil change set: no error")
	}
	if _, err := NewValues([]byte(`[1]`)); err == nil {
		t.Fatal("list document: no error")
	}
	if _, err := NewValues([]byte(`{`)); err == nil {
		t.Fatal("malformed: no error")
	}
	if v, err := NewValues(nil); err != nil || len(v.Map()) != 0 {
		t.Fatalf("empty values: %v", err)
	}
}

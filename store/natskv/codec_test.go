package natskv

import (
	"bytes"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/seed-b3892490/micro/store"
)

var (
	validBucket = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	validToken  = regexp.MustCompile(`^[-/_=a-zA-Z0-9]+$`)
)

func TestBucketName(t *testing.T) {
	long := strings.Repeat("d", 100)
	for name, want := range map[string]string{
		"micro":      "micro",
		"user_data":  "user_data",
		"my-db":      "my-2Ddb",
		"a.b c":      "a-2Eb-20c",
		"ключ":       "-D0-BA-D0-BB-D1-8E-D1-87",
		"\x00":       "-00",
		"-":          "-2D",
		"UPPER.case": "UPPER-2Ecase",
	} {
		if got := bucketName(name); got != want {
			t.Errorf("bucketName(%q) = %q, want %q", name, got, want)
		}
	}
	seen := map[string]string{}
	for _, name := range []string{"micro", "Micro", "my-db", "my-2Ddb", "my.db", "my_db", long, long + "x", strings.Repeat("-", 30), strings.Repeat("é", 40), "a-", "a-2D"} {
		b := bucketName(name)
		if !validBucket.MatchString(b) || len(b) > maxNameLen {
			t.Errorf("bucketName(%q) = %q: not a valid bucket name of at most %d characters", name, b, maxNameLen)
		}
		if other, ok := seen[b]; ok {
			t.Errorf("databases %q and %q share bucket %q", name, other, b)
		}
		seen[b] = name
	}
	if b := bucketName(long); len(b) != maxNameLen || !strings.Contains(b, "--") {
		t.Errorf("a long name is not shortened with a hash: %q", b)
	}
}

func TestTableToken(t *testing.T) {
	seen := map[string]string{}
	for _, table := range []string{"micro", "go.micro.srv.greeter", "greeter-service", "a/b", "a=b", "a=3Db", "x y", strings.Repeat("t", 200), strings.Repeat("t", 201)} {
		tok := tableToken(table)
		if !validToken.MatchString(tok) || len(tok) > maxNameLen {
			t.Errorf("tableToken(%q) = %q: not one subject token of at most %d characters", table, tok, maxNameLen)
		}
		if other, ok := seen[tok]; ok {
			t.Errorf("tables %q and %q share token %q", table, other, tok)
		}
		seen[tok] = table
	}
	if got := tableToken("go.micro.srv"); got != "go=2Emicro=2Esrv" {
		t.Errorf("tableToken(go.micro.srv) = %q", got)
	}
}

// codecKeys are keys of every kind: the suite's unusual ones, binary ones, long ones.
var codecKeys = []string{
	"a", "ab", "a/b/c", "a//b", "/", "user/000123", "with space", "dot.ted", "=", "==", "*", ">", "a.>",
	"\x00", "nul\x00in", "\xff\xfe", "tail\xc3", "ключ", "emoji 😀", "%2F", "2F", "AB", "ab.", ".",
	strings.Repeat("k", MaxKeySize), strings.Repeat("\xff", MaxKeySize),
}

func TestKeySubjectRoundTrip(t *testing.T) {
	prefix := tablePrefix(bucketName("db"), "table")
	subjects := map[string]string{}
	for _, key := range codecKeys {
		subj := keySubject(prefix, key)
		for tok := range strings.SplitSeq(strings.TrimPrefix(subj, "$KV."), ".") {
			if !validToken.MatchString(tok) {
				t.Fatalf("key %q: subject %q has token %q", key, subj, tok)
			}
		}
		got, err := decodeKey(prefix, subj)
		if err != nil || got != key {
			t.Fatalf("key %q: subject %q decodes as %q, %v", key, subj, got, err)
		}
		if other, ok := subjects[subj]; ok {
			t.Fatalf("keys %q and %q share subject %q", key, other, subj)
		}
		subjects[subj] = key
	}
	if got := keySubject(prefix, "user/1.x"); got != prefix+"u.s.e.r./.1.2E.x.=" {
		t.Fatalf("subject of user/1.x: %q", got)
	}
}

// matchSubject reports whether a NATS subject matches a filter with wildcards.
func matchSubject(filter, subject string) bool {
	ft, st := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, f := range ft {
		switch {
		case f == ">":
			return len(st) > i
		case i >= len(st):
			return false
		case f != "*" && f != st[i]:
			return false
		}
	}
	return len(ft) == len(st)
}

// TestPrefixFilter: the server-side filter of a prefix matches exactly the keys that
// start with it, by bytes.
func TestPrefixFilter(t *testing.T) {
	prefix := tablePrefix(bucketName("db"), "table")
	other := tablePrefix(bucketName("db"), "table2")
	for _, p := range []string{"", "a", "ab", "a/", "\x00", "\xff", "k", "ключ", "a.", "=", "user/00"} {
		filter := prefixFilter(prefix, p)
		for _, key := range append(codecKeys, "user/001", "user/00", "user/0") {
			want := strings.HasPrefix(key, p)
			if got := matchSubject(filter, keySubject(prefix, key)); got != want {
				t.Errorf("prefix %q, key %q: filter %q matches %v, want %v", p, key, filter, got, want)
			}
			if matchSubject(filter, keySubject(other, key)) {
				t.Errorf("prefix %q: the filter %q matches key %q of another table", p, filter, key)
			}
		}
	}
}

func TestDecodeKeyRejects(t *testing.T) {
	prefix := tablePrefix("db", "t")
	for _, subj := range []string{
		"$KV.other.t.a.=", prefix + "=", prefix + "a", prefix + "a.b", prefix + "a..=", prefix + ".=",
		prefix + "61.=", // 'a' escaped: not canonical
		prefix + "2e.=", // lower-case hex
		prefix + "abc.=", prefix + "=.=", prefix + "*.=", prefix + "a.=.=", prefix + "G0.=",
	} {
		if key, err := decodeKey(prefix, subj); err == nil || !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("decodeKey(%q) = %q, %v; want an error matching store.ErrCorrupt", subj, key, err)
		}
	}
}

func TestEntryRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		value []byte
		md    map[string]interface{}
	}{
		{nil, nil},
		{[]byte{}, map[string]interface{}{}},
		{[]byte("v"), map[string]interface{}{"a": "b", "n": 1.5, "l": []interface{}{true, nil}}},
		{bytes.Repeat([]byte{0, 1, 255}, 10000), map[string]interface{}{"x": map[string]interface{}{"y": "z"}}},
	} {
		mdJSON, err := encodeMetadata(tc.md)
		if err != nil {
			t.Fatal(err)
		}
		data := encodeEntry(tc.value, mdJSON)
		value, md, err := decodeEntry(data)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(value, tc.value) || len(value) != len(tc.value) {
			t.Fatalf("value %q read back as %q", tc.value, value)
		}
		want := tc.md
		if want == nil {
			want = map[string]interface{}{}
		}
		if !reflect.DeepEqual(md, want) {
			t.Fatalf("metadata %v read back as %v", tc.md, md)
		}
		if len(value) > 0 && &value[0] == &data[len(data)-len(value)] {
			t.Fatal("the value shares the entry's bytes")
		}
	}
}

func TestDecodeEntryRejects(t *testing.T) {
	for _, data := range [][]byte{
		nil, {}, {2}, {0}, {1}, {1, 0x80}, {1, 5, '{', '}'}, {1, 4, 'n', 'u', 'l', 'l'},
		{1, 2, '[', ']'}, {1, 3, '{', '"', '}'}, {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		if _, _, err := decodeEntry(data); err == nil || !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("decodeEntry(%v): %v, want an error matching store.ErrCorrupt", data, err)
		}
	}
}

func TestParseExpires(t *testing.T) {
	if at, err := parseExpires(""); at != 0 || err != nil {
		t.Fatalf("no header: %d, %v", at, err)
	}
	if at, err := parseExpires("1700000000000000000"); at != 1700000000000000000 || err != nil {
		t.Fatalf("a time: %d, %v", at, err)
	}
	for _, h := range []string{"0", "-5", "x", "1.5", "99999999999999999999", " 1"} {
		if _, err := parseExpires(h); !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("parseExpires(%q): %v", h, err)
		}
	}
}

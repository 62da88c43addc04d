package file

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/seed-b3892490/micro/config/source"
)

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadFormats(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ name, data, format string }{
		{"a.json", `{"a": 1}`, "json"},
		{"a.yaml", "a: 1\n", "yaml"},
		{"a.yml", "a: 1\n", "yml"},
		{"a.toml", "a = 1\n", "toml"},
		{"A.YAML", "a: 1\n", "yaml"},
		{"noext", `{"a": 1}`, "json"},
		{"bad.json", `{not json`, "json"}, // Read does not validate
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name)
			writeFile(t, path, c.data)
			before := time.Now()
			src := NewSource(WithPath(path))
			if src.String() != "file" {
				t.Fatalf("String() = %q", src.String())
			}
			cs, err := src.Read()
			if err != nil {
				t.Fatal(err)
			}
			if cs.Format != c.format {
				t.Errorf("Format = %q, want %q", cs.Format, c.format)
			}
			if string(cs.Data) != c.data {
				t.Errorf("Data = %q, want %q", cs.Data, c.data)
			}
			if cs.Source != "file" {
				t.Errorf("Source = %q", cs.Source)
			}
			if cs.Checksum == "" || cs.Checksum != cs.Sum() {
				t.Errorf("Checksum = %q, Sum() = %q", cs.Checksum, cs.Sum())
			}
			if cs.Timestamp.Before(before) {
				t.Errorf("Timestamp %v before the read began (%v)", cs.Timestamp, before)
			}
		})
	}
}

func TestReadDefaultPath(t *testing.T) {
	t.Chdir(t.TempDir())
	writeFile(t, DefaultPath, `{"d": true}`)
	cs, err := NewSource().Read()
	if err != nil {
		t.Fatal(err)
	}
	if cs.Format != "json" || string(cs.Data) != `{"d": true}` {
		t.Fatalf("got %q %q", cs.Format, cs.Data)
	}
}

func TestReadMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := NewSource(WithPath(path)).Read()
	if err == nil {
		t.Fatal("no error for a missing file")
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not wrap fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name %s", err, path)
	}
}

func TestWithFS(t *testing.T) {
	fsys := fstest.MapFS{
		"conf/app.toml": {Data: []byte("x = 1\n")},
	}
	src := NewSource(WithFS(fsys), WithPath("conf/app.toml"))
	cs, err := src.Read()
	if err != nil {
		t.Fatal(err)
	}
	if cs.Format != "toml" || string(cs.Data) != "x = 1\n" || cs.Checksum != cs.Sum() {
		t.Fatalf("got %+v", cs)
	}

	_, err = NewSource(WithFS(fsys), WithPath("conf/missing.json")).Read()
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "conf/missing.json") {
		t.Fatalf("missing file in FS: %v", err)
	}

	if err := src.Write(&source.ChangeSet{Data: []byte("x = 2")}); !errors.Is(err, ErrWriteNotSupported) {
		t.Fatalf("Write on an FS source: %v", err)
	}

	// The watcher of an FS source never fires; Stop releases a waiting Next.
	w, err := src.Watch()
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() {
		_, err := w.Next()
		res <- err
	}()
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-res:
		if !errors.Is(err, source.ErrWatcherStopped) {
			t.Fatalf("Next after Stop: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not return after Stop")
	}
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.json")
	src := NewSource(WithPath(path))

	// A new file is created 0644.
	if err := src.Write(&source.ChangeSet{Data: []byte(`{"v": 1}`)}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("new file mode %v", fi.Mode().Perm())
	}

	// An existing file keeps its mode.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := src.Write(&source.ChangeSet{Data: []byte(`{"v": 2}`)}); err != nil {
		t.Fatal(err)
	}
	cs, err := src.Read()
	if err != nil {
		t.Fatal(err)
	}
	if string(cs.Data) != `{"v": 2}` {
		t.Fatalf("Data = %q", cs.Data)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after rewrite %v", fi.Mode().Perm())
	}
	// No temporary file is left behind.
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want 1", len(ents))
	}

	if err := src.Write(nil); err == nil {
		t.Error("Write(nil) did not fail")
	}
	if err := NewSource(WithPath(filepath.Join(dir, "no", "such", "dir.json"))).Write(&source.ChangeSet{}); err == nil {
		t.Error("Write into a missing directory did not fail")
	}
}

func BenchmarkRead(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.json")
	writeFile(b, path, `{"service": {"name": "greeter", "port": 8080, "tags": ["a", "b"]}}`)
	src := NewSource(WithPath(path))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := src.Read(); err != nil {
			b.Fatal(err)
		}
	}
}

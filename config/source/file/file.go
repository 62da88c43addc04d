// Package file is a config source that reads one file, from disk or from an fs.FS.
//
// # Formats
//
// The format of a change set is the file's extension, without the dot and lower-cased:
// "config.json" is "json", "app.YAML" is "yaml", "x.yml" is "yml", "x.toml" is "toml".
// A file with no extension is taken to be "json". The content is not checked here: Read
// returns the bytes as they are and the config reader decodes them (and reports a file
// that does not parse).
//
// # Watching
//
// Watch watches the file's parent directory with fsnotify, not the file itself, so that it
// keeps working whichever way the file is saved:
//
//   - written in place (truncate, then write);
//   - written to a temporary file in the same directory and renamed over the file;
//   - deleted, then created again;
//   - swapped through symlinks, as Kubernetes does for ConfigMap volumes
//     (config.yaml -> ..data/config.yaml, where ..data is a symlink that is replaced by a
//     rename).
//
// When the path is itself a symlink, the directory of the file it resolves to is watched
// as well, so edits made to the target are seen.
//
// Any event in a watched directory schedules a re-read. Events are debounced: the file is
// read once the directory has been quiet for a short window (15 ms), so a burst of events
// such as a truncate followed by a write gives one read, after the write. A file that
// keeps changing is still read at least every 150 ms. After the read, a change set is
// emitted only if its checksum differs from the last one emitted; the first baseline is
// the last document this source's Read returned (or, if Read was never called, the file
// as it was when Watch started), so an unchanged file is not emitted again.
//
// While the file is missing (deleted and not yet recreated) nothing is emitted; when it
// reappears it is emitted if its content changed. A file that is still empty once the
// window has passed is emitted as it is: the reader reports it as malformed and keeps
// the configuration it had.
//
// If fsnotify cannot be used (for example when the inotify limits are reached), the
// watcher falls back to reading the file every 250 ms and comparing checksums.
//
// A source built WithFS reads from the fs.FS and cannot be watched: its watcher never
// yields a change.
//
// # Writing
//
// Write replaces the file atomically: it writes a temporary file in the same directory,
// syncs it and renames it over the path, keeping the old file's permissions (0644 for a
// new file). A source built WithFS does not support Write.
package file

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/seed-b3892490/micro/config/source"
)

// DefaultPath is the file read when no WithPath option is given.
const DefaultPath = "config.json"

// ErrWriteNotSupported is returned by Write on a source that reads from an fs.FS.
var ErrWriteNotSupported = errors.New("file source: write not supported on an fs.FS")

type pathKey struct{}
type fsKey struct{}

// WithPath sets the path of the file to read; the default is DefaultPath ("config.json").
func WithPath(p string) source.Option { return source.ContextOption(pathKey{}, p) }

// WithFS makes the source read its path from fsys instead of the disk. The path must then
// be a valid fs.FS path (slash-separated, unrooted). Such a source cannot be watched (its
// watcher never fires) nor written.
func WithFS(fsys fs.FS) source.Option { return source.ContextOption(fsKey{}, fsys) }

type file struct {
	path string
	fsys fs.FS
	opts source.Options

	mu       sync.Mutex
	lastRead string // checksum of the last successful Read, the watchers' baseline
}

// NewSource returns a source that reads one file (see WithPath and WithFS).
func NewSource(opts ...source.Option) source.Source {
	o := source.NewOptions(opts...)
	f := &file{path: DefaultPath, opts: o}
	if p, ok := o.Context.Value(pathKey{}).(string); ok && p != "" {
		f.path = p
	}
	if fsys, ok := o.Context.Value(fsKey{}).(fs.FS); ok && fsys != nil {
		f.fsys = fsys
	}
	return f
}

func (f *file) String() string { return "file" }

// format returns the lower-cased extension of the path, "json" when it has none.
func (f *file) format() string {
	var ext string
	if f.fsys != nil {
		ext = path.Ext(f.path)
	} else {
		ext = filepath.Ext(f.path)
	}
	ext = strings.ToLower(strings.TrimPrefix(ext, "."))
	if ext == "" {
		return "json"
	}
	return ext
}

// load reads the file at p (or f.path in f.fsys) into a change set.
func (f *file) load(p string) (*source.ChangeSet, error) {
	var (
		data []byte
		err  error
	)
	if f.fsys != nil {
		data, err = fs.ReadFile(f.fsys, p)
	} else {
		data, err = os.ReadFile(p)
	}
	if err != nil {
		return nil, fmt.Errorf("file source: reading %s: %w", f.path, err)
	}
	cs := &source.ChangeSet{
		Timestamp: time.Now(),
		Format:    f.format(),
		Source:    f.String(),
		Data:      data,
	}
	cs.Checksum = cs.Sum()
	return cs, nil
}

func (f *file) Read() (*source.ChangeSet, error) {
	cs, err := f.load(f.path)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.lastRead = cs.Checksum
	f.mu.Unlock()
	return cs, nil
}

func (f *file) Write(cs *source.ChangeSet) error {
	if f.fsys != nil {
		return ErrWriteNotSupported
	}
	if cs == nil {
		return errors.New("file source: nil change set")
	}
	mode := fs.FileMode(0o644)
	if fi, err := os.Stat(f.path); err == nil {
		mode = fi.Mode().Perm()
	}
	dir, base := filepath.Split(f.path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("file source: writing %s: %w", f.path, err)
	}
	name := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(name)
		return fmt.Errorf("file source: writing %s: %w", f.path, err)
	}
	if _, err := tmp.Write(cs.Data); err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return fmt.Errorf("file source: writing %s: %w", f.path, err)
	}
	if err := os.Rename(name, f.path); err != nil {
		os.Remove(name)
		return fmt.Errorf("file source: writing %s: %w", f.path, err)
	}
	return nil
}

func (f *file) Watch() (source.Watcher, error) {
	if f.fsys != nil {
		return source.NewNoopWatcher()
	}
	return newWatcher(f)
}

// Command gomicro-compat writes a copy of micro whose module path is go-micro.dev/v5, so
// that existing Go Micro v5 code builds against micro with one line in its go.mod:
//
//	go run github.com/seed-b3892490/micro/cmd/gomicro-compat -out ../micro-as-gomicro
//	# in the Go Micro program's go.mod:
//	replace go-micro.dev/v5 => ../micro-as-gomicro
//
// A module's packages import each other by its module path, so micro's own directory
// cannot stand in for go-micro.dev/v5 (the go command refuses one directory under two
// module paths, and a program importing both paths would see two copies of every type).
// The copy is micro's non-test sources with their imports of
// github.com/seed-b3892490/micro rewritten to go-micro.dev/v5, micro's go.mod under the
// new path, and its go.sum. Run it again after updating micro. Run from micro's root, or
// pass -src.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// target is the module path the copy takes.
const target = "go-micro.dev/v5"

// skipDirs are not part of the library: programs, test helpers, benchmarks.
var skipDirs = map[string]bool{"examples": true, "bench": true, "testdata": true, "internal/testutil": true, "internal/testproto": true, "cmd/gomicro-compat": true}

func main() {
	src := flag.String("src", ".", "micro's root directory (where its go.mod is)")
	out := flag.String("out", "", "directory to write the go-micro.dev/v5 copy to (replaced whole)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "gomicro-compat: -out is required")
		os.Exit(2)
	}
	n, err := Generate(*src, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gomicro-compat:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %d files of %s to %s\nadd to your go.mod: replace %s => %s\n", n, target, *out, target, *out)
}

// Generate writes the copy of the module at src into out, replacing what out held, and
// returns the number of files written.
func Generate(src, out string) (int, error) {
	gomod, err := os.ReadFile(filepath.Join(src, "go.mod"))
	if err != nil {
		return 0, err
	}
	from, newMod, err := renameModule(gomod)
	if err != nil {
		return 0, err
	}
	absSrc, _ := filepath.Abs(src)
	absOut, _ := filepath.Abs(out)
	if rel, err := filepath.Rel(absSrc, absOut); err == nil && !strings.HasPrefix(rel, "..") {
		return 0, fmt.Errorf("-out %s is inside the module at %s: write the copy elsewhere", out, src)
	}
	if err := os.RemoveAll(out); err != nil {
		return 0, err
	}
	var files []string
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (skipDirs[rel] || strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_")) {
				return filepath.SkipDir
			}
			if rel != "." {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir // a nested module
				}
			}
			return nil
		}
		if strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go") {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	sort.Strings(files)
	for _, rel := range files {
		data, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			return 0, err
		}
		data, err = rewriteImports(rel, data, from)
		if err != nil {
			return 0, err
		}
		dst := filepath.Join(out, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return 0, err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return 0, err
		}
	}
	if err := os.WriteFile(filepath.Join(out, "go.mod"), newMod, 0o644); err != nil {
		return 0, err
	}
	if sum, err := os.ReadFile(filepath.Join(src, "go.sum")); err == nil {
		if err := os.WriteFile(filepath.Join(out, "go.sum"), sum, 0o644); err != nil {
			return 0, err
		}
	}
	return len(files) + 2, nil
}

// renameModule returns the module path of a go.mod and the go.mod with target in its
// place.
func renameModule(gomod []byte) (string, []byte, error) {
	lines := strings.Split(string(gomod), "\n")
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == "module" {
			from, err := strconv.Unquote(f[1])
			if err != nil {
				from = f[1]
			}
			if from == target {
				return "", nil, errors.New("the source already is " + target)
			}
			lines[i] = "module " + target
			return from, []byte(strings.Join(lines, "\n")), nil
		}
	}
	return "", nil, errors.New("go.mod has no module line")
}

// rewriteImports replaces the module path in data's import paths, and nowhere else.
func rewriteImports(name string, data []byte, from string) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, data, parser.ImportsOnly|parser.ParseComments)
	if err != nil {
		return nil, err
	}
	type edit struct {
		start, end int
		text       string
	}
	var edits []edit
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			return nil, err
		}
		if p != from && !strings.HasPrefix(p, from+"/") {
			continue
		}
		edits = append(edits, edit{
			start: fset.Position(imp.Path.Pos()).Offset,
			end:   fset.Position(imp.Path.End()).Offset,
			text:  strconv.Quote(target + p[len(from):]),
		})
	}
	var b bytes.Buffer
	last := 0
	for _, e := range edits {
		b.Write(data[last:e.start])
		b.WriteString(e.text)
		last = e.end
	}
	b.Write(data[last:])
	return b.Bytes(), nil
}

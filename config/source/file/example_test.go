package file_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/seed-b3892490/micro/config/source/file"
)

func Example() {
	dir, err := os.MkdirTemp("", "file-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	path := filepath.Join(dir, "app.yaml")
	if err := os.WriteFile(path, []byte("name: demo\n"), 0o644); err != nil {
		fmt.Println(err)
		return
	}

	src := file.NewSource(file.WithPath(path))
	cs, err := src.Read()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(src.String(), cs.Format)
	fmt.Print(string(cs.Data))
	// Output:
	// file yaml
	// name: demo
}

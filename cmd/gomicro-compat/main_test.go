package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/seed-b3892490/micro/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// program is ordinary Go Micro v5 code: it imports go-micro.dev/v5 only.
const program = `package main

import (
	"context"
	"fmt"
	"os"

	micro "go-micro.dev/v5"
	"go-micro.dev/v5/auth"
	"go-micro.dev/v5/broker"
	"go-micro.dev/v5/client"
	"go-micro.dev/v5/config"
	"go-micro.dev/v5/config/source/memory"
	"go-micro.dev/v5/errors"
	"go-micro.dev/v5/metadata"
	"go-micro.dev/v5/registry"
	"go-micro.dev/v5/server"
	authWrapper "go-micro.dev/v5/wrapper/auth"
)

type Request struct {
	Name string ` + "`json:\"name\"`" + `
}

type Response struct {
	Message string ` + "`json:\"message\"`" + `
}

type Greeter struct{}

func (g *Greeter) Hello(ctx context.Context, req *Request, rsp *Response) error {
	md, _ := metadata.FromContext(ctx)
	rsp.Message = "Hello " + req.Name + md["X-Suffix"]
	return nil
}

func fail(err error) {
	fmt.Println("error:", err)
	os.Exit(1)
}

func main() {
	reg := registry.NewMemoryRegistry()
	srv := server.NewServer(server.Name("greeter"), server.Address("127.0.0.1:0"), server.Registry(reg), server.Broker(broker.NewMemoryBroker()))
	if err := srv.Handle(srv.NewHandler(new(Greeter))); err != nil {
		fail(err)
	}
	if err := srv.Start(); err != nil {
		fail(err)
	}
	c := client.NewClient(client.Registry(reg))
	req := c.NewRequest("greeter", "Greeter.Hello", &Request{Name: "alice"}, client.WithContentType("application/json"))
	var rsp Response
	ctx := metadata.NewContext(context.Background(), metadata.Metadata{"X-Suffix": "!"})
	if err := c.Call(ctx, req, &rsp, client.WithAddress(srv.Options().Address)); err != nil {
		fail(err)
	}
	fmt.Println(rsp.Message)
	if err := c.Call(ctx, c.NewRequest("greeter", "Greeter.Nope", &Request{}), &rsp, client.WithAddress(srv.Options().Address)); errors.FromError(err).Code != 404 {
		fail(fmt.Errorf("unknown endpoint: %v", err))
	}
	conf, err := config.NewConfig(config.WithSource(memory.NewSource(memory.WithJSON([]byte(` + "`" + `{"greeting":"hi"}` + "`" + `)))))
	if err != nil {
		fail(err)
	}
	v, err := conf.Get("greeting")
	if err != nil {
		fail(err)
	}
	fmt.Println(v.String(""))
	_ = conf.Close()
	_ = micro.NewService(micro.Name("x"), micro.WrapClient(authWrapper.FromToken("t")))
	_ = auth.NewRules()
	if err := srv.Stop(); err != nil {
		fail(err)
	}
}
`

// TestGoMicroCodeBuildsAgainstTheCopy: a Go Micro v5 program (imports of go-micro.dev/v5
// only) builds against the copy with one replace line in its go.mod, and runs: a call by
// address, metadata, a 404, config.Get's (Value, error).
func TestGoMicroCodeBuildsAgainstTheCopy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	testutil.Scenario(t)
	copyDir := filepath.Join(t.TempDir(), "gomicro")
	n, err := Generate("../..", copyDir)
	if err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Fatalf("only %d files written", n)
	}
	if out, err := exec.Command("grep", "-rl", "seed-b3892490/micro\"", copyDir).Output(); len(out) > 0 {
		t.Fatalf("imports of micro's path left (%v):\n%s", err, out)
	}
	app := t.TempDir()
	gomod := "module app\n\ngo 1.26\n\nrequire go-micro.dev/v5 v5.12.0\n\nreplace go-micro.dev/v5 => " + copyDir + "\n"
	for name, data := range map[string]string{"go.mod": gomod, "main.go": program} {
		if err := os.WriteFile(filepath.Join(app, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := os.ReadFile("../../go.sum")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(app, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(app, "app")
	build := exec.Command("go", "build", "-mod=mod", "-o", bin, ".")
	build.Dir = app
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if got := string(out); !strings.Contains(got, "Hello alice!\n") || !strings.Contains(got, "hi\n") {
		t.Fatalf("output:\n%s", got)
	}
}

func TestRefusesToWriteInsideTheModule(t *testing.T) {
	if _, err := Generate("../..", "../../somewhere"); err == nil || !strings.Contains(err.Error(), "inside the module") {
		t.Fatalf("err = %v", err)
	}
}

func TestRewriteImportsOnly(t *testing.T) {
	src := []byte("package x\n\n// see github.com/seed-b3892490/micro/client\nimport (\n\t\"fmt\"\n\tm \"github.com/seed-b3892490/micro/client\"\n\t\"github.com/seed-b3892490/micro\"\n\t\"github.com/seed-b3892490/microscope\"\n)\n\nvar s = \"github.com/seed-b3892490/micro/x\"\n")
	got, err := rewriteImports("x.go", src, "github.com/seed-b3892490/micro")
	if err != nil {
		t.Fatal(err)
	}
	want := "package x\n\n// see github.com/seed-b3892490/micro/client\nimport (\n\t\"fmt\"\n\tm \"go-micro.dev/v5/client\"\n\t\"go-micro.dev/v5\"\n\t\"github.com/seed-b3892490/microscope\"\n)\n\nvar s = \"github.com/seed-b3892490/micro/x\"\n"
	if string(got) != want {
		t.Fatalf("got:\n%s", got)
	}
}

package logger_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/seed-b3892490/micro/logger"
)

// syncBuffer is a bytes.Buffer that the race detector lets tests read while loggers
// write (the loggers already serialise their own writes).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) lines() []string {
	s := strings.TrimSuffix(b.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// setDefault makes l the DefaultLogger for the rest of the test.
func setDefault(t *testing.T, l logger.Logger) {
	t.Helper()
	old := logger.DefaultLogger
	logger.DefaultLogger = l
	t.Cleanup(func() { logger.DefaultLogger = old })
}

// nextLine returns the source attribute expected for a record logged on the line after
// the call.
func nextLine(t *testing.T) string {
	t.Helper()
	_, file, line, ok := runtime.Caller(1)
	if !ok {
		t.Fatal("runtime.Caller failed")
	}
	return fmt.Sprintf("source=%s/%s:%d ", filepath.Base(filepath.Dir(file)), filepath.Base(file), line+1)
}

func TestLevelFiltering(t *testing.T) {
	levels := []logger.Level{logger.TraceLevel, logger.DebugLevel, logger.InfoLevel, logger.WarnLevel, logger.ErrorLevel}
	names := []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR"}
	for i, min := range levels {
		t.Run(min.String(), func(t *testing.T) {
			var buf syncBuffer
			l := logger.NewLogger(logger.WithOutput(&buf), logger.WithLevel(min))
			for _, lvl := range levels {
				l.Log(lvl, "msg at ", lvl)
				l.Logf(lvl, "msgf at %s", lvl)
			}
			lines := buf.lines()
			if want := 2 * (len(levels) - i); len(lines) != want {
				t.Fatalf("got %d lines, want %d:\n%s", len(lines), want, buf.String())
			}
			for j, line := range lines {
				k := i + j/2
				if !strings.Contains(line, " level="+names[k]+" ") {
					t.Errorf("line %q: want level=%s", line, names[k])
				}
				if want := "at " + levels[k].String(); !strings.Contains(line, want) {
					t.Errorf("line %q: want message containing %q", line, want)
				}
				if !strings.HasPrefix(line, "time=") {
					t.Errorf("line %q: want time first", line)
				}
			}
			for _, lvl := range levels {
				if got, want := logger.V(lvl, l), lvl >= min; got != want {
					t.Errorf("V(%s) = %v, want %v", lvl, got, want)
				}
			}
		})
	}
}

func TestFatalLevelNameAndOff(t *testing.T) {
	var buf syncBuffer
	l := logger.NewLogger(logger.WithOutput(&buf), logger.WithLevel(logger.FatalLevel))
	l.Log(logger.ErrorLevel, "dropped")
	l.Log(logger.FatalLevel, "kept")
	if got := buf.String(); !strings.Contains(got, " level=FATAL ") || !strings.HasSuffix(got, " msg=kept\n") || strings.Contains(got, "dropped") {
		t.Fatalf("output %q", got)
	}
	buf.buf.Reset()
	if err := l.Init(logger.WithLevel(logger.FatalLevel + 1)); err != nil {
		t.Fatal(err)
	}
	l.Log(logger.FatalLevel, "off")
	if got := buf.String(); got != "" {
		t.Fatalf("logger above FatalLevel wrote %q", got)
	}
}

func TestDefaults(t *testing.T) {
	o := logger.NewLogger().Options()
	if o.Out != os.Stderr || o.Level != logger.InfoLevel || o.CallerSkipCount != 2 || o.Context == nil || o.Fields != nil {
		t.Fatalf("defaults: %+v", o)
	}
	if s := logger.NewLogger().String(); s != "default" {
		t.Fatalf("String() = %q", s)
	}
}

func TestFields(t *testing.T) {
	var buf syncBuffer
	root := logger.NewLogger(logger.WithOutput(&buf), logger.WithFields(map[string]interface{}{"svc": "greeter"}))
	child := root.Fields(map[string]interface{}{"z": 1, "a": "x", "svc": "override"})

	root.Log(logger.InfoLevel, "root")
	child.Log(logger.InfoLevel, "child")
	lines := buf.lines()
	if len(lines) != 2 {
		t.Fatalf("lines: %q", lines)
	}
	if !strings.HasSuffix(lines[0], "msg=root svc=greeter") {
		t.Errorf("root line %q", lines[0])
	}
	// Fields come sorted by key, and the child's value wins on an equal key.
	if !strings.HasSuffix(lines[1], "msg=child a=x svc=override z=1") {
		t.Errorf("child line %q", lines[1])
	}
	if got := root.Options().Fields; len(got) != 1 || got["svc"] != "greeter" {
		t.Errorf("root fields changed: %v", got)
	}
	if got := child.Options().Fields; len(got) != 3 {
		t.Errorf("child fields: %v", got)
	}

	// The map returned by Options is a copy.
	child.Options().Fields["a"] = "mutated"
	buf.buf.Reset()
	child.Log(logger.InfoLevel, "again")
	if strings.Contains(buf.String(), "mutated") {
		t.Errorf("Options().Fields aliases the logger's fields: %q", buf.String())
	}

	// Init with WithFields replaces the logger's fields; Init without keeps them.
	if err := child.Init(logger.WithFields(map[string]interface{}{"only": true})); err != nil {
		t.Fatal(err)
	}
	if err := child.Init(logger.WithLevel(logger.DebugLevel)); err != nil {
		t.Fatal(err)
	}
	buf.buf.Reset()
	child.Log(logger.DebugLevel, "replaced")
	if got := buf.String(); !strings.HasSuffix(got, "msg=replaced only=true\n") {
		t.Errorf("after Init(WithFields): %q", got)
	}
}

func TestDerivedLoggerFollowsParentUntilInit(t *testing.T) {
	var buf syncBuffer
	root := logger.NewLogger(logger.WithOutput(&buf))
	child := root.Fields(map[string]interface{}{"c": 1})
	grandchild := child.Fields(map[string]interface{}{"g": 2})

	child.Log(logger.DebugLevel, "hidden")
	if err := root.Init(logger.WithLevel(logger.DebugLevel)); err != nil {
		t.Fatal(err)
	}
	child.Log(logger.DebugLevel, "shown")
	grandchild.Log(logger.DebugLevel, "shown too")
	if got := buf.String(); strings.Contains(got, "hidden") || !strings.Contains(got, "msg=shown c=1") ||
		!strings.Contains(got, `msg="shown too" c=1 g=2`) {
		t.Fatalf("output %q", got)
	}

	// Init on the child detaches it: the root keeps its level, the child stops following.
	if err := child.Init(logger.WithLevel(logger.ErrorLevel)); err != nil {
		t.Fatal(err)
	}
	if got := root.Options().Level; got != logger.DebugLevel {
		t.Fatalf("root level changed to %s by Init on a child", got)
	}
	if err := root.Init(logger.WithLevel(logger.TraceLevel)); err != nil {
		t.Fatal(err)
	}
	if got := child.Options().Level; got != logger.ErrorLevel {
		t.Fatalf("detached child level = %s", got)
	}
	if got := grandchild.Options().Level; got != logger.ErrorLevel {
		t.Fatalf("grandchild should follow its parent, the child: level = %s", got)
	}
}

type wrapper struct{ l logger.Logger }

func (w wrapper) info(msg string) { w.l.Log(logger.InfoLevel, msg) }

func TestSource(t *testing.T) {
	var buf syncBuffer
	l := logger.NewLogger(logger.WithOutput(&buf), logger.WithLevel(logger.TraceLevel))
	setDefault(t, l)
	h := logger.NewHelper(l)
	ctx := h.WithFields(map[string]interface{}{"req": 7}).Inject(context.Background())

	check := func(name, want string) {
		t.Helper()
		got := buf.String()
		buf.buf.Reset()
		if !strings.Contains(got, want) {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}

	want := nextLine(t)
	l.Log(logger.InfoLevel, "x")
	check("Logger.Log", want)
	want = nextLine(t)
	l.Logf(logger.InfoLevel, "%d", 1)
	check("Logger.Logf", want)
	want = nextLine(t)
	l.Fields(map[string]interface{}{"k": "v"}).Log(logger.InfoLevel, "x")
	check("derived Logger.Log", want)

	want = nextLine(t)
	logger.Log(logger.InfoLevel, "x")
	check("Log", want)
	want = nextLine(t)
	logger.Logf(logger.InfoLevel, "x")
	check("Logf", want)
	want = nextLine(t)
	logger.Trace("x")
	check("Trace", want)
	want = nextLine(t)
	logger.Debugf("x")
	check("Debugf", want)
	want = nextLine(t)
	logger.Info("x")
	check("Info", want)
	want = nextLine(t)
	logger.Warnf("x")
	check("Warnf", want)
	want = nextLine(t)
	logger.Error("x")
	check("Error", want)

	want = nextLine(t)
	h.Info("x")
	check("Helper.Info", want)
	want = nextLine(t)
	h.Errorf("x")
	check("Helper.Errorf", want)
	want = nextLine(t)
	h.Log(logger.WarnLevel, "x")
	check("Helper.Log", want)
	want = nextLine(t)
	h.WithError(errors.New("boom")).Debug("x")
	check("Helper.WithError.Debug", want)
	want = nextLine(t)
	logger.DefaultHelper.Tracef("x")
	check("DefaultHelper.Tracef", want)
	want = nextLine(t)
	logger.Extract(ctx).Info("x")
	check("Extract.Info", want)
	want = nextLine(t)
	logger.Extract(ctx).Fields(map[string]interface{}{"a": 1}).Log(logger.InfoLevel, "x")
	check("Helper as Logger", want)

	// A wrapper of one's own adds a frame, which CallerSkipCount 3 skips.
	if err := l.Init(logger.WithCallerSkipCount(3)); err != nil {
		t.Fatal(err)
	}
	want = nextLine(t)
	wrapper{l}.info("x")
	check("wrapper", want)
}

func TestHelperWithError(t *testing.T) {
	var buf syncBuffer
	h := logger.NewHelper(logger.NewLogger(logger.WithOutput(&buf)))
	h.WithFields(map[string]interface{}{"op": "read"}).WithError(errors.New("disk full")).Error("failed")
	h.Info("plain")
	lines := buf.lines()
	if len(lines) != 2 {
		t.Fatalf("lines %q", lines)
	}
	if !strings.Contains(lines[0], " level=ERROR ") || !strings.HasSuffix(lines[0], ` msg=failed error="disk full" op=read`) {
		t.Errorf("line %q", lines[0])
	}
	if strings.Contains(lines[1], "error=") || strings.Contains(lines[1], "op=") {
		t.Errorf("WithError changed the original Helper: %q", lines[1])
	}
}

func TestDefaultHelperFollowsDefaultLogger(t *testing.T) {
	var first, second syncBuffer
	setDefault(t, logger.NewLogger(logger.WithOutput(&first)))

	logger.DefaultHelper.Debug("hidden")
	if err := logger.Init(logger.WithLevel(logger.DebugLevel)); err != nil {
		t.Fatal(err)
	}
	logger.DefaultHelper.Debug("after Init")
	if got := first.String(); strings.Contains(got, "hidden") || !strings.Contains(got, `msg="after Init"`) {
		t.Fatalf("first: %q", got)
	}

	logger.DefaultLogger = logger.NewLogger(logger.WithOutput(&second))
	logger.DefaultHelper.Info("replaced")
	logger.HelperOrDefault(nil).Info("via HelperOrDefault")
	var zero logger.Helper
	zero.Info("zero Helper")
	var nilHelper *logger.Helper
	nilHelper.Info("nil Helper")
	for _, msg := range []string{"replaced", "via HelperOrDefault", "zero Helper", "nil Helper"} {
		if !strings.Contains(second.String(), msg) {
			t.Errorf("%q not written to the new DefaultLogger: %q", msg, second.String())
		}
	}
	if strings.Contains(first.String(), "replaced") {
		t.Errorf("DefaultHelper wrote to the old DefaultLogger")
	}
	if logger.LoggerOrDefault(nil) != logger.DefaultLogger {
		t.Error("LoggerOrDefault(nil) is not DefaultLogger")
	}
	if h := logger.NewHelper(nil); logger.HelperOrDefault(h) != h {
		t.Error("HelperOrDefault(h) is not h")
	}
	if logger.String() != "default" || logger.DefaultHelper.String() != "default" {
		t.Error("String")
	}
}

func TestContextRoundTrip(t *testing.T) {
	ctx := context.Background()
	if l, ok := logger.FromContext(ctx); ok || l != nil {
		t.Fatalf("FromContext(empty) = %v, %v", l, ok)
	}
	if h := logger.Extract(ctx); h != logger.DefaultHelper {
		t.Fatal("Extract(empty) is not DefaultHelper")
	}

	l := logger.NewLogger(logger.WithOutput(io.Discard))
	if got, ok := logger.FromContext(logger.NewContext(ctx, l)); !ok || got != l {
		t.Fatalf("FromContext(NewContext(l)) = %v, %v", got, ok)
	}
	if h := logger.Extract(logger.NewContext(ctx, l)); h == nil || h.Options().Out != io.Discard {
		t.Fatal("Extract does not wrap a stored Logger")
	}
	if _, ok := logger.FromContext(logger.NewContext(ctx, nil)); ok {
		t.Fatal("FromContext found a nil Logger")
	}

	h := logger.NewHelper(l).WithFields(map[string]interface{}{"id": 1})
	if got := logger.Extract(h.Inject(ctx)); got != h {
		t.Fatalf("Extract(Inject(h)) = %p, want %p", got, h)
	}
	// A string key cannot reach the logger's value.
	if v := h.Inject(ctx).Value("logger"); v != nil {
		t.Fatalf("string key found %v", v)
	}
}

func TestConcurrentLoggingWhileInit(t *testing.T) {
	var buf, other syncBuffer
	l := logger.NewLogger(logger.WithOutput(&buf))
	child := l.Fields(map[string]interface{}{"worker": true})
	h := logger.NewHelper(child)
	setDefault(t, l)

	const writers, records = 8, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range records {
				l.Logf(logger.DebugLevel, "w%d r%d", w, i)
				child.Log(logger.InfoLevel, "child")
				h.Debug("helper")
				logger.Info("package")
				_ = logger.V(logger.DebugLevel, nil)
				_ = child.Options()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range records {
			lvl := logger.InfoLevel
			if i%2 == 0 {
				lvl = logger.DebugLevel
			}
			out := io.Writer(&buf)
			if i%5 == 0 {
				out = &other
			}
			if err := logger.Init(logger.WithLevel(lvl), logger.WithOutput(out)); err != nil {
				t.Error(err)
			}
			_ = l.Fields(map[string]interface{}{"i": i})
		}
	}()
	wg.Wait()

	for _, line := range append(buf.lines(), other.lines()...) {
		if !strings.HasPrefix(line, "time=") || !strings.Contains(line, " level=") {
			t.Fatalf("torn or malformed line %q", line)
		}
	}
}

// recorder is a Logger of another implementation, to check that Helper and the
// package-level functions hand it the records unchanged.
type recorder struct {
	mu      sync.Mutex
	fields  map[string]interface{}
	records *[]string
}

func (r *recorder) Init(...logger.Option) error { return nil }
func (r *recorder) Options() logger.Options {
	return logger.Options{Level: logger.DebugLevel, Fields: r.fields}
}
func (r *recorder) Fields(f map[string]interface{}) logger.Logger {
	return &recorder{fields: f, records: r.records}
}
func (r *recorder) Log(level logger.Level, v ...interface{}) {
	r.add(fmt.Sprintf("%s %s %v", level, fmt.Sprint(v...), r.fields))
}
func (r *recorder) Logf(level logger.Level, format string, v ...interface{}) {
	r.add(fmt.Sprintf("%s %s %v", level, fmt.Sprintf(format, v...), r.fields))
}
func (r *recorder) String() string { return "recorder" }
func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.records = append(*r.records, s)
}

func TestOtherLoggerImplementation(t *testing.T) {
	var records []string
	r := &recorder{records: &records}
	setDefault(t, r)

	logger.Infof("n=%d", 1)
	logger.Trace("t")
	logger.NewHelper(r).WithError(errors.New("e")).Warn("w")
	logger.DefaultHelper.Logf(logger.ErrorLevel, "%s", "x")
	want := []string{"info n=1 map[]", "trace t map[]", "warn w map[error:e]", "error x map[]"}
	if fmt.Sprint(records) != fmt.Sprint(want) {
		t.Fatalf("records %q, want %q", records, want)
	}
	if !logger.V(logger.DebugLevel, nil) || logger.V(logger.TraceLevel, r) {
		t.Fatal("V does not use the logger's Options().Level")
	}
	if logger.String() != "recorder" {
		t.Fatal("String")
	}
}

func TestNewLoggerFromHandler(t *testing.T) {
	var buf syncBuffer
	h := slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn, AddSource: true})
	l := logger.NewLoggerFromHandler(h, logger.WithFields(map[string]interface{}{"svc": "s"}))
	l.Log(logger.DebugLevel, "below the logger's level")
	l.Log(logger.InfoLevel, "below the handler's level")
	want := nextLine(t)
	l.Logf(logger.ErrorLevel, "kept %d", 1)
	got := buf.String()
	if strings.Contains(got, "below") || !strings.Contains(got, `"level":"ERROR"`) ||
		!strings.Contains(got, `"msg":"kept 1","svc":"s"`) {
		t.Fatalf("output %q", got)
	}
	// The JSON handler writes the full path; compare the file and line.
	file, line, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(want, "source="), " "), ":")
	if !strings.Contains(got, filepath.Base(file)+`","line":`+line) {
		t.Fatalf("source %q not in %q", want, got)
	}
	if err := l.Init(logger.WithLevel(logger.WarnLevel)); err != nil {
		t.Fatal(err)
	}
	if l.Options().Level != logger.WarnLevel {
		t.Fatal("Init(WithLevel) ignored")
	}
}

func TestGetLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    logger.Level
		wantErr bool
	}{
		{"trace", logger.TraceLevel, false},
		{"DEBUG", logger.DebugLevel, false},
		{"info", logger.InfoLevel, false},
		{" warn ", logger.WarnLevel, false},
		{"warning", logger.WarnLevel, false},
		{"error", logger.ErrorLevel, false},
		{"fatal", logger.FatalLevel, false},
		{"", logger.InfoLevel, false},
		{"loud", logger.InfoLevel, true},
	}
	for _, tt := range tests {
		got, err := logger.GetLevel(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("GetLevel(%q) = %s, %v", tt.in, got, err)
		}
	}
}

func TestSetOption(t *testing.T) {
	type key struct{}
	l := logger.NewLogger(logger.SetOption(key{}, 42))
	if v := l.Options().Context.Value(key{}); v != 42 {
		t.Fatalf("SetOption value = %v", v)
	}
}

// TestFatal runs the Fatal functions in a child process, since they exit.
func TestFatal(t *testing.T) {
	if name := os.Getenv("LOGGER_TEST_FATAL"); name != "" {
		l := logger.NewLogger(logger.WithOutput(os.Stdout))
		logger.DefaultLogger = l
		switch name {
		case "Fatal":
			logger.Fatal("bye")
		case "Fatalf":
			logger.Fatalf("bye %d", 1)
		case "Helper.Fatal":
			logger.NewHelper(l).Fatal("bye")
		case "Helper.Fatalf":
			logger.NewHelper(l).Fatalf("bye %d", 1)
		}
		return
	}
	for _, name := range []string{"Fatal", "Fatalf", "Helper.Fatal", "Helper.Fatalf"} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestFatal$")
			cmd.Env = append(os.Environ(), "LOGGER_TEST_FATAL="+name)
			out, err := cmd.Output()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit: %v, output %q", err, out)
			}
			if !strings.Contains(string(out), "level=FATAL") || !strings.Contains(string(out), "logger_test.go:") {
				t.Fatalf("output %q", out)
			}
		})
	}
}

func BenchmarkLogDisabled(b *testing.B) {
	l := logger.NewLogger(logger.WithOutput(io.Discard), logger.WithLevel(logger.InfoLevel))
	old := logger.DefaultLogger
	logger.DefaultLogger = l
	b.Cleanup(func() { logger.DefaultLogger = old })
	h := logger.NewHelper(l).WithFields(map[string]interface{}{"k": "v"})

	b.Run("Logger.Log", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			l.Log(logger.DebugLevel, "debug record")
		}
	})
	b.Run("Logger.Logf", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			l.Logf(logger.DebugLevel, "debug record %s", "x")
		}
	})
	b.Run("Debug", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			logger.Debug("debug record")
		}
	})
	b.Run("Helper.Debugf", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.Debugf("debug record %s", "x")
		}
	})
	b.Run("V", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if logger.V(logger.DebugLevel, l) {
				b.Fatal("enabled")
			}
		}
	})
}

func BenchmarkLogInfo(b *testing.B) {
	l := logger.NewLogger(logger.WithOutput(io.Discard))
	b.Run("Logger.Log", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			l.Log(logger.InfoLevel, "info record")
		}
	})
	fl := l.Fields(map[string]interface{}{"service": "greeter", "id": 42})
	b.Run("Fields", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			fl.Logf(logger.InfoLevel, "info record %d", 7)
		}
	})
	h := logger.NewHelper(l)
	b.Run("Helper.Info", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.Info("info record")
		}
	})
}

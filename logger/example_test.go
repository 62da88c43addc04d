package logger_test

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/seed-b3892490/micro/logger"
)

func Example() {
	// A text handler without time, so that the output is the same on every run.
	h := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.Level(-8), // let the logger's level decide
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})
	l := logger.NewLoggerFromHandler(h, logger.WithFields(map[string]interface{}{"service": "greeter"}))

	l.Logf(logger.InfoLevel, "listening on %s", ":8080")
	l.Log(logger.DebugLevel, "not written: the level is info")

	// A Helper travels in a context and adds leveled methods and fields.
	ctx := logger.NewHelper(l).WithFields(map[string]interface{}{"request": 7}).Inject(context.Background())
	logger.Extract(ctx).WithError(errors.New("no such user")).Warn("lookup failed")

	// Init changes the level of a running logger.
	_ = l.Init(logger.WithLevel(logger.DebugLevel))
	logger.Extract(ctx).Debugf("cache size %d", 3)

	// Output:
	// level=INFO msg="listening on :8080" service=greeter
	// level=WARN msg="lookup failed" error="no such user" request=7 service=greeter
	// level=DEBUG msg="cache size 3" request=7 service=greeter
}

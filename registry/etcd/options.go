package etcd

import (
	"context"

	"github.com/seed-b3892490/micro/registry"
	"go.uber.org/zap"
)

type authKey struct{}

type logConfigKey struct{}

type credentials struct{ username, password string }

// Auth sets the user name and password the registry authenticates to etcd with. Both
// must be set for authentication to be used. Default: none.
func Auth(username, password string) registry.Option {
	return func(o *registry.Options) {
		o.Context = context.WithValue(contextOf(o), authKey{}, credentials{username, password})
	}
}

// LogConfig sets the zap configuration of the etcd client's own logger, as Go Micro's
// etcd registry does. Default: the client logs nothing.
func LogConfig(c *zap.Config) registry.Option {
	return func(o *registry.Options) {
		o.Context = context.WithValue(contextOf(o), logConfigKey{}, c)
	}
}

func contextOf(o *registry.Options) context.Context {
	if o.Context == nil {
		return context.Background()
	}
	return o.Context
}

func authOf(o registry.Options) (credentials, bool) {
	if o.Context == nil {
		return credentials{}, false
	}
	c, ok := o.Context.Value(authKey{}).(credentials)
	return c, ok && c.username != "" && c.password != ""
}

func logConfigOf(o registry.Options) *zap.Config {
	if o.Context == nil {
		return nil
	}
	c, _ := o.Context.Value(logConfigKey{}).(*zap.Config)
	return c
}

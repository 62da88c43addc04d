package natskv

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-b3892490/micro/store"
)

// The defaults of the store's own options.
const (
	// DefaultTimeout bounds each call (Read, Write, Delete, List), connecting included,
	// unless Timeout sets another bound.
	DefaultTimeout = 5 * time.Second
	// DefaultSweepInterval is how often a store removes the expired records of the
	// buckets it uses, unless SweepInterval sets another interval.
	DefaultSweepInterval = time.Minute
	// SweepMaxPurges bounds the expired records one sweep removes; the next sweep goes
	// on where it stopped.
	SweepMaxPurges = 1000
	// SweepMaxScan bounds the records one sweep looks at; the next sweep goes on where
	// it stopped.
	SweepMaxScan = 100000
)

// The options are kept in store.Options.Context, under these keys. store.WithContext
// replaces that context: give it before the options of this package.
type (
	natsOptionsKey   struct{}
	jsOptionsKey     struct{}
	kvConfigKey      struct{}
	defaultTTLKey    struct{}
	memoryKey        struct{}
	descriptionKey   struct{}
	timeoutKey       struct{}
	sweepIntervalKey struct{}
)

func withValue(o *store.Options, key, value any) {
	if o.Context == nil {
		o.Context = context.Background()
	}
	o.Context = context.WithValue(o.Context, key, value)
}

func value[T any](ctx context.Context, key any, def T) T {
	if ctx != nil {
		if v, ok := ctx.Value(key).(T); ok {
			return v
		}
	}
	return def
}

// NatsOptions sets the options of the NATS connection, used as given except that
// store.Nodes, when set, replaces Servers and Url. Without it the store connects with
// nats.GetDefaultOptions() changed to reconnect for ever every 250 ms and to buffer
// nothing while reconnecting (calls then fail at once with an error matching
// ErrUnavailable instead of being sent late).
func NatsOptions(nopts nats.Options) store.Option {
	return func(o *store.Options) { withValue(o, natsOptionsKey{}, &nopts) }
}

// JetStreamOptions sets the options of the JetStream context made on the connection
// (jetstream.New), for instance jetstream.WithClientTrace.
func JetStreamOptions(opts ...jetstream.JetStreamOpt) store.Option {
	opts = append([]jetstream.JetStreamOpt(nil), opts...)
	return func(o *store.Options) { withValue(o, jsOptionsKey{}, &opts) }
}

// KeyValueOptions sets the configuration of the buckets the store creates. Its Bucket is
// replaced by the bucket of each database; Storage and Description give way to
// DefaultMemory and DefaultDescription when those are set, and a TTL (the bucket's
// MaxAge) removes every record that long after its last write whatever its own expiry.
// Buckets that exist already are used as they are.
func KeyValueOptions(cfg *jetstream.KeyValueConfig) store.Option {
	var c jetstream.KeyValueConfig
	if cfg != nil {
		c = *cfg
	}
	return func(o *store.Options) { withValue(o, kvConfigKey{}, c) }
}

// DefaultTTL sets the TTL of records written without one (no WriteTTL, WriteExpiry nor
// Record.Expiry); 0, the default, means they never expire. Unlike Go Micro's option of
// the same name it is kept per record, so that Read reports the time left, and it does
// not change the buckets.
func DefaultTTL(ttl time.Duration) store.Option {
	return func(o *store.Options) { withValue(o, defaultTTLKey{}, ttl) }
}

// DefaultMemory makes the buckets the store creates keep their records in the server's
// memory instead of files: faster, lost when the server stops.
func DefaultMemory() store.Option {
	return func(o *store.Options) { withValue(o, memoryKey{}, true) }
}

// DefaultDescription sets the description of the buckets the store creates (default
// "micro store database <name>").
func DefaultDescription(text string) store.Option {
	return func(o *store.Options) { withValue(o, descriptionKey{}, text) }
}

// Timeout bounds each call of the store, connecting included (default DefaultTimeout).
// A call also ends when the context of store.WithContext ends.
func Timeout(d time.Duration) store.Option {
	return func(o *store.Options) { withValue(o, timeoutKey{}, d) }
}

// SweepInterval sets how often the store removes expired records from the buckets it
// has used (default DefaultSweepInterval); a negative interval turns sweeping off.
// Expired records are never returned either way; the sweep frees their space.
func SweepInterval(d time.Duration) store.Option {
	return func(o *store.Options) { withValue(o, sweepIntervalKey{}, d) }
}

// deleteBucketKey marks a Delete made with DeleteBucket.
type deleteBucketKey struct{}

// DeleteBucket makes Delete remove a whole database: the bucket of the database named by
// the key given to Delete, as in Go Micro, or, when the key is empty, of the call's
// database (DeleteFrom's, else the store's). Tables are ignored. A database that has no
// bucket is not an error. Give it after DeleteFrom, which would undo it.
func DeleteBucket() store.DeleteOption {
	return func(d *store.DeleteOptions) {
		// DeleteOptions has no context: the mark rides in the table name, which a
		// DeleteBucket call does not use otherwise.
		d.Table = deleteBucketMark + d.Table
	}
}

// deleteBucketMark starts the table of a Delete made with DeleteBucket. It holds a NUL
// byte, which micro's option parsing never produces on its own.
const deleteBucketMark = "\x00natskv:delete-bucket\x00"

// config is what the store makes of its options.
type config struct {
	servers       []string
	natsOpts      *nats.Options // nil: the defaults
	jsOpts        *[]jetstream.JetStreamOpt
	kv            jetstream.KeyValueConfig
	defaultTTL    time.Duration
	memory        bool
	description   string
	timeout       time.Duration
	sweepInterval time.Duration
}

// newConfig returns the configuration of o, or the error of an invalid option.
func newConfig(o store.Options) (config, error) {
	c := config{
		natsOpts:      value[*nats.Options](o.Context, natsOptionsKey{}, nil),
		jsOpts:        value[*[]jetstream.JetStreamOpt](o.Context, jsOptionsKey{}, nil),
		kv:            value(o.Context, kvConfigKey{}, jetstream.KeyValueConfig{}),
		defaultTTL:    value(o.Context, defaultTTLKey{}, time.Duration(0)),
		memory:        value(o.Context, memoryKey{}, false),
		description:   value(o.Context, descriptionKey{}, ""),
		timeout:       value(o.Context, timeoutKey{}, DefaultTimeout),
		sweepInterval: value(o.Context, sweepIntervalKey{}, DefaultSweepInterval),
	}
	c.servers = serverURLs(o.Nodes)
	switch {
	case c.timeout <= 0:
		return c, fmt.Errorf("invalid option: Timeout %s: want a positive duration", c.timeout)
	case c.defaultTTL < 0:
		return c, fmt.Errorf("invalid option: negative DefaultTTL %s", c.defaultTTL)
	case c.sweepInterval == 0:
		c.sweepInterval = DefaultSweepInterval
	}
	if c.kv.History < 0 || c.kv.History > jetstream.KeyValueMaxHistory {
		return c, fmt.Errorf("invalid option: KeyValueOptions: History %d out of [0, %d]", c.kv.History, jetstream.KeyValueMaxHistory)
	}
	return c, nil
}

// sameConnection reports whether a and b connect the same way.
func (a config) sameConnection(b config) bool {
	return a.natsOpts == b.natsOpts && a.jsOpts == b.jsOpts && strings.Join(a.servers, ",") == strings.Join(b.servers, ",")
}

// serverURLs returns the NATS URLs of nodes (comma-separated lists allowed), adding
// nats:// where no scheme is given; none when nodes name none.
func serverURLs(nodes []string) []string {
	var out []string
	for _, n := range nodes {
		for _, u := range strings.Split(n, ",") {
			u = strings.TrimSpace(u)
			if u == "" {
				continue
			}
			if !strings.Contains(u, "://") {
				u = "nats://" + u
			}
			out = append(out, u)
		}
	}
	return out
}

// natsOptions returns the options of the connection.
func (c config) natsOptions() nats.Options {
	var nopts nats.Options
	if c.natsOpts != nil {
		nopts = *c.natsOpts
	} else {
		nopts = nats.GetDefaultOptions()
		nopts.MaxReconnect = -1
		nopts.ReconnectWait = 250 * time.Millisecond
		nopts.ReconnectJitter = 50 * time.Millisecond
		nopts.ReconnectBufSize = -1
		nopts.Name = "micro-store-natskv"
		if c.timeout < nopts.Timeout {
			nopts.Timeout = c.timeout
		}
	}
	if len(c.servers) > 0 {
		nopts.Servers, nopts.Url = c.servers, ""
	}
	if len(nopts.Servers) == 0 && nopts.Url == "" {
		nopts.Url = nats.DefaultURL
	}
	return nopts
}

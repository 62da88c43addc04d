package natsjs

import (
	"crypto/tls"
	"fmt"
	"math"
	"time"

	"github.com/seed-b3892490/micro/logger"
)

// Defaults of Options.
const (
	// DefaultAddress is the server NewStream connects to without Address.
	DefaultAddress = "nats://127.0.0.1:4222"
	// DefaultMaxAckPending is Options.MaxAckPending's default, JetStream's own.
	DefaultMaxAckPending = 1000
	// DefaultPublishTimeout is Options.PublishTimeout's default.
	DefaultPublishTimeout = 10 * time.Second
	// DefaultDrainTimeout is Options.DrainTimeout's default.
	DefaultDrainTimeout = 10 * time.Second
	// DefaultConnectTimeout bounds the first connection, in NewStream.
	DefaultConnectTimeout = 5 * time.Second
)

// Options configure a stream. The names are Go Micro's; the fields after MaxAge are
// micro's own.
type Options struct {
	// ClusterID is kept for Go Micro compatibility (it named a NATS Streaming cluster);
	// JetStream has no use for it.
	ClusterID string
	// ClientID names the connection when Name is empty.
	ClientID string
	// Address is the server's URL, or several separated by commas. Default
	// DefaultAddress.
	Address string
	// TLSConfig, when set, makes the connection use TLS with it.
	TLSConfig *tls.Config
	// NkeyConfig, when set, is the path of a file holding an nkey seed to authenticate
	// with.
	NkeyConfig string
	// Logger receives the stream's warnings: dead-lettered events, undecodable headers,
	// failed asynchronous publishes, consumers restarted after an error. Default
	// logger.DefaultLogger.
	Logger logger.Logger
	// SyncPublish makes Publish wait for the server to store the event. Default true
	// (Go Micro's default is false): see SynchronousPublish.
	SyncPublish bool
	// Name is the connection's name, as the server shows it.
	Name string
	// DisableDurableStreams makes group consumers forget their place: the server deletes
	// a group's consumer once none of its members has been active for
	// NonDurableInactivity, instead of keeping it for good.
	DisableDurableStreams bool
	// Username and Password, when set, authenticate the connection.
	Username string
	Password string
	// RetentionPolicy of the streams created: 0 limits (the default: events are kept
	// until MaxAge or the server's limits), 1 interest (until every consumer has
	// acknowledged them), 2 work queue (until one consumer has).
	RetentionPolicy int
	// MaxMsgSize bounds an event's payload and headers on the streams created, in
	// bytes. Default 0: the server's limit.
	MaxMsgSize int
	// MaxAge is how long the streams created keep events. Default 0: no limit.
	MaxAge time.Duration
	// MaxAckPending bounds the events a consumer (or group) has unacknowledged; the
	// server delivers no more until some are acknowledged. Default
	// DefaultMaxAckPending (1000).
	MaxAckPending int
	// PublishTimeout bounds a Publish, its retries included, when its context has no
	// earlier deadline. Default DefaultPublishTimeout (10 s).
	PublishTimeout time.Duration
	// DrainTimeout bounds how long Close waits for events handed to consumers with
	// manual acknowledgement to be acknowledged or nacked. Default DefaultDrainTimeout
	// (10 s).
	DrainTimeout time.Duration
}

// Option sets a field of Options. Options only set fields: their order does not matter.
type Option func(o *Options)

// ClusterID sets Options.ClusterID (unused).
func ClusterID(id string) Option { return func(o *Options) { o.ClusterID = id } }

// ClientID sets Options.ClientID.
func ClientID(id string) Option { return func(o *Options) { o.ClientID = id } }

// Address sets Options.Address.
func Address(addr string) Option { return func(o *Options) { o.Address = addr } }

// TLSConfig sets Options.TLSConfig.
func TLSConfig(t *tls.Config) Option { return func(o *Options) { o.TLSConfig = t } }

// NkeyConfig sets Options.NkeyConfig.
func NkeyConfig(nkey string) Option { return func(o *Options) { o.NkeyConfig = nkey } }

// Logger sets Options.Logger.
func Logger(log logger.Logger) Option { return func(o *Options) { o.Logger = log } }

// SynchronousPublish sets Options.SyncPublish. With true (the default) Publish returns
// nil only once the server has stored the event. With false it returns once the event
// is sent, before the server has answered: a failure is then only logged and counted in
// Stats().Rejected, and at most 4,000 events are awaiting an answer at once (beyond,
// Publish waits for room until PublishTimeout, then fails).
func SynchronousPublish(sync bool) Option { return func(o *Options) { o.SyncPublish = sync } }

// Name sets Options.Name.
func Name(name string) Option { return func(o *Options) { o.Name = name } }

// DisableDurableStreams sets Options.DisableDurableStreams.
func DisableDurableStreams() Option { return func(o *Options) { o.DisableDurableStreams = true } }

// Authenticate sets Options.Username and Options.Password.
func Authenticate(username, password string) Option {
	return func(o *Options) { o.Username, o.Password = username, password }
}

// RetentionPolicy sets Options.RetentionPolicy.
func RetentionPolicy(rp int) Option { return func(o *Options) { o.RetentionPolicy = rp } }

// MaxMsgSize sets Options.MaxMsgSize.
func MaxMsgSize(size int) Option { return func(o *Options) { o.MaxMsgSize = size } }

// MaxAge sets Options.MaxAge.
func MaxAge(age time.Duration) Option { return func(o *Options) { o.MaxAge = age } }

// MaxAckPending sets Options.MaxAckPending.
func MaxAckPending(n int) Option { return func(o *Options) { o.MaxAckPending = n } }

// PublishTimeout sets Options.PublishTimeout.
func PublishTimeout(d time.Duration) Option { return func(o *Options) { o.PublishTimeout = d } }

// DrainTimeout sets Options.DrainTimeout.
func DrainTimeout(d time.Duration) Option { return func(o *Options) { o.DrainTimeout = d } }

// newOptions applies the defaults, then opts, and validates the result; an error
// matches events.ErrInvalidOption.
func newOptions(opts []Option) (Options, error) {
	defaults := []Option{
		Address(DefaultAddress),
		SynchronousPublish(true),
		MaxAckPending(DefaultMaxAckPending),
		PublishTimeout(DefaultPublishTimeout),
		DrainTimeout(DefaultDrainTimeout),
	}
	var o Options
	for _, f := range append(defaults, opts...) {
		f(&o)
	}
	o.Logger = logger.LoggerOrDefault(o.Logger)
	bad := func(format string, args ...interface{}) (Options, error) {
		return o, fmt.Errorf("%w: natsjs: %s", errInvalidOption, fmt.Sprintf(format, args...))
	}
	switch {
	case o.Address == "":
		return bad("empty Address")
	case o.RetentionPolicy < 0 || o.RetentionPolicy > 2:
		return bad("RetentionPolicy %d: want 0 (limits), 1 (interest) or 2 (work queue)", o.RetentionPolicy)
	case o.MaxMsgSize < 0 || o.MaxMsgSize > math.MaxInt32:
		return bad("MaxMsgSize %d out of [0, %d]", o.MaxMsgSize, math.MaxInt32)
	case o.MaxAge < 0:
		return bad("negative MaxAge %s", o.MaxAge)
	case o.MaxAckPending < 1:
		return bad("MaxAckPending %d: want at least 1", o.MaxAckPending)
	case o.PublishTimeout <= 0:
		return bad("PublishTimeout %s: want a positive duration", o.PublishTimeout)
	case o.DrainTimeout < 0:
		return bad("negative DrainTimeout %s", o.DrainTimeout)
	}
	return o, nil
}

package selector

import (
	"context"
	"time"

	"github.com/seed-b3892490/micro/logger"
	"github.com/seed-b3892490/micro/registry"
)

// Options configure a Selector.
type Options struct {
	// Registry is where services are looked up. Default registry.DefaultRegistry.
	Registry registry.Registry
	// Strategy picks nodes. Default Random.
	Strategy Strategy
	Context  context.Context
	Logger   logger.Logger

	// EjectAfter is how many timeouts in a row eject a node (default 3); below 0, Mark
	// ejects no node at all. Unreachable nodes are ejected at once.
	EjectAfter int
	// EjectFor is the first back-off of an ejected node (default 1 s); it doubles with
	// each ejection in a row, up to EjectMax (default 5 s).
	EjectFor, EjectMax time.Duration
}

// SelectOptions configure one Select call.
type SelectOptions struct {
	Context  context.Context
	Strategy Strategy
	Filters  []Filter
	// HashKey, when set, picks nodes by rendezvous hashing of the key instead of the
	// strategy: the same key goes to the same node while the node set is stable.
	HashKey string
}

// Option sets a field of Options.
type Option func(*Options)

// SelectOption sets a field of SelectOptions.
type SelectOption func(*SelectOptions)

// Registry sets the registry the selector reads.
func Registry(r registry.Registry) Option { return func(o *Options) { o.Registry = r } }

// Ejection sets the outlier ejection policy of the registry selector: a node is ejected
// after timeouts timeouts in a row (0: the default, 3; below 0: never), for first
// (default 1 s) the first time, twice as long each time in a row, at most most (default
// 5 s).
func Ejection(timeouts int, first, most time.Duration) Option {
	return func(o *Options) { o.EjectAfter, o.EjectFor, o.EjectMax = timeouts, first, most }
}

// SetStrategy sets the default strategy.
func SetStrategy(fn Strategy) Option { return func(o *Options) { o.Strategy = fn } }

// WithLogger sets the selector's logger.
func WithLogger(l logger.Logger) Option { return func(o *Options) { o.Logger = l } }

// WithFilter adds filters to one Select call.
func WithFilter(fn ...Filter) SelectOption {
	return func(o *SelectOptions) { o.Filters = append(o.Filters, fn...) }
}

// WithStrategy sets the strategy of one Select call.
func WithStrategy(fn Strategy) SelectOption { return func(o *SelectOptions) { o.Strategy = fn } }

// WithHashKey sends calls with the same key to the same node (consistent hashing by
// rendezvous): while the node set is stable, a key always lands on one node, and a node
// joining or leaving moves only the keys that must move. Later picks of the same Next
// (retries) go to the key's next-best nodes.
func WithHashKey(key string) SelectOption { return func(o *SelectOptions) { o.HashKey = key } }

package broker

// DefaultBroker is the broker the package-level functions use, and the one a service uses
// when given none: an HTTP broker (NewHttpBroker) on registry.DefaultRegistry. Building it
// starts nothing and it is not connected. The broker is safe for concurrent use;
// replacing the variable is not, so do it before anything uses it.
var DefaultBroker Broker = NewHttpBroker()

// NewBroker returns the default kind of broker, the HTTP broker (NewHttpBroker), with
// opts applied.
func NewBroker(opts ...Option) Broker { return NewHttpBroker(opts...) }

// Init calls DefaultBroker.Init.
func Init(opts ...Option) error { return DefaultBroker.Init(opts...) }

// Connect calls DefaultBroker.Connect.
func Connect() error { return DefaultBroker.Connect() }

// Disconnect calls DefaultBroker.Disconnect.
func Disconnect() error { return DefaultBroker.Disconnect() }

// Publish calls DefaultBroker.Publish.
func Publish(topic string, msg *Message, opts ...PublishOption) error {
	return DefaultBroker.Publish(topic, msg, opts...)
}

// Subscribe calls DefaultBroker.Subscribe.
func Subscribe(topic string, handler Handler, opts ...SubscribeOption) (Subscriber, error) {
	return DefaultBroker.Subscribe(topic, handler, opts...)
}

// String calls DefaultBroker.String: the name of its implementation, "memory" by default.
func String() string { return DefaultBroker.String() }

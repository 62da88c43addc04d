// Package broker is asynchronous messaging: publish a message to a topic, and every
// subscriber of the topic (or one member of each queue group) receives it.
//
// The interface follows Go Micro v5. The default is the HTTP broker (NewHttpBroker),
// which needs no server: subscriptions are found through the registry and messages are
// POSTed to them, and Publish returns only once every subscriber has handled the message
// (or an error naming those that did not). NewMemoryBroker delivers within one process.
// broker/nats and broker/rabbitmq use those servers.
package broker

import "errors"

// Broker publishes messages and delivers them to subscribers. Implementations are safe
// for concurrent use.
type Broker interface {
	Init(...Option) error
	Options() Options
	// Address returns the address the broker listens on, if any.
	Address() string
	Connect() error
	Disconnect() error
	Publish(topic string, m *Message, opts ...PublishOption) error
	Subscribe(topic string, h Handler, opts ...SubscribeOption) (Subscriber, error)
	String() string
}

// Handler processes one delivered Event. A non-nil error is reported to the broker.
type Handler func(Event) error

// Message is what is published: headers and a body.
type Message struct {
	Header map[string]string
	Body   []byte
}

// Event is one delivery of a Message to a subscriber.
type Event interface {
	Topic() string
	Message() *Message
	// Ack acknowledges the delivery (needed only with DisableAutoAck).
	Ack() error
	// Error returns the delivery error, if any.
	Error() error
}

// Subscriber is one subscription.
type Subscriber interface {
	Options() SubscribeOptions
	Topic() string
	Unsubscribe() error
}

var (
	// ErrNotConnected is returned by Publish and Subscribe before Connect.
	ErrNotConnected = errors.New("broker: not connected")
	// ErrMissingTopic is returned for an empty topic.
	ErrMissingTopic = errors.New("broker: missing topic")
	// ErrMissingHandler is returned by Subscribe for a nil Handler.
	ErrMissingHandler = errors.New("broker: missing handler")
	// ErrConnected is returned by Init while the broker is connected: Disconnect first.
	ErrConnected = errors.New("broker: cannot Init while connected")
)

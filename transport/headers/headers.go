// Package headers names the headers micro puts on the wire.
package headers

// Header names, with Go Micro's spelling where it had one. Over HTTP, names are
// case-insensitive and arrive in canonical form (Micro-ID arrives as Micro-Id); look
// them up case-insensitively (metadata.Get does).
const (
	Message   = "Micro-Topic"
	Request   = "Micro-Service"
	Error     = "Micro-Error"
	Endpoint  = "Micro-Endpoint"
	Method    = "Micro-Method"
	ID        = "Micro-ID"
	Prefix    = "Micro-"
	Namespace = "Micro-Namespace"
	Protocol  = "Micro-Protocol"
	Target    = "Micro-Target"
	// ContentType is the codec selector.
	ContentType = "Content-Type"
	SpanID      = "Micro-Span-ID"
	TraceIDKey  = "Micro-Trace-ID"
	Stream      = "Micro-Stream"

	// NotStarted on an error reply says that no handler ran for the request (the server
	// refused it before starting one, e.g. when overloaded): the caller may send it to
	// another node, idempotent or not. Its value is the reason ("overloaded").
	NotStarted = "Micro-Not-Started"

	// Timeout is the time the caller will wait for the reply, in decimal nanoseconds.
	Timeout = "Timeout"
	// Path, Method and Status are pseudo-headers: HTTP transports map them to the request
	// path, the request method and the response status code.
	Path       = ":path"
	HTTPMethod = ":method"
	Status     = ":status"
)

// Package errors defines Error, the one error type that crosses the wire between micro
// clients and servers, and constructors for the common HTTP codes.
//
// An *Error carries an Id (the service or component that produced it), a Code (an HTTP
// status code), a human readable Detail and the Status text of its code. It is encoded as
// JSON wherever it travels: in the Micro-Error header, in HTTP error bodies, in registry and
// broker payloads. Errors returned by a handler arrive at the caller as an *Error with
// their Id, Code and Detail intact, so callers match them with the standard library:
//
//	var merr *errors.Error
//	if errors.As(err, &merr) && merr.Code == 404 { ... }
//	if errors.Is(err, errors.NotFound("", "")) { ... }  // any 404
//
// An *Error made by the client for a local failure (a cancelled context, a refused
// connection) also wraps its cause, so errors.Is(err, context.Canceled) keeps working.
package errors

import (
	"encoding/json"
	stderrors "errors"
	"fmt"
	"net/http"
)

// StatusClientClosedRequest is the code of an error caused by the caller cancelling its
// context. It is not an IANA HTTP status; the value is the one proxies use for the same case.
const StatusClientClosedRequest = 499

// Error is the error type that travels between services. Its fields and JSON form are
// those of Go Micro: {"id","code","detail","status"}, empty fields omitted.
//
// An Error is a value once made; it is safe to share between goroutines if nobody
// mutates it.
type Error struct {
	// Id names the source of the error, usually the service name.
	Id string `json:"id,omitempty"`
	// Code is an HTTP status code (400, 404, 500, ...).
	Code int32 `json:"code,omitempty"`
	// Detail says what went wrong, for people.
	Detail string `json:"detail,omitempty"`
	// Status is the text of Code ("Not Found").
	Status string `json:"status,omitempty"`

	cause error
}

// Error returns the JSON form of e, as Go Micro does.
func (e *Error) Error() string {
	b, err := json.Marshal(e)
	if err != nil { // cannot happen for these field types
		return e.Detail
	}
	return string(b)
}

// Unwrap returns the local cause of e, if any (for example context.Canceled). Errors
// decoded from the wire have no cause.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether target is an *Error that e matches: the codes are equal, and the
// target's Id and Detail are equal to e's where the target sets them. So
// errors.Is(err, errors.NotFound("", "")) matches every 404, and a fully set target
// matches only the same error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok || t == nil {
		return false
	}
	if t.Code != e.Code {
		return false
	}
	if t.Id != "" && t.Id != e.Id {
		return false
	}
	if t.Detail != "" && t.Detail != e.Detail {
		return false
	}
	return true
}

// HTTPStatus returns the HTTP status code to send for e: its Code when that is a valid
// client or server error code (400-599), otherwise 500.
func (e *Error) HTTPStatus() int {
	if e.Code >= 400 && e.Code <= 599 {
		return int(e.Code)
	}
	return http.StatusInternalServerError
}

// StatusText returns the text for an HTTP status code, including 499.
func StatusText(code int32) string {
	if code == StatusClientClosedRequest {
		return "Client Closed Request"
	}
	return http.StatusText(int(code))
}

func newError(id string, code int32, format string, a []interface{}) *Error {
	detail := format
	if len(a) > 0 {
		detail = fmt.Sprintf(format, a...)
	}
	return &Error{Id: id, Code: code, Detail: detail, Status: StatusText(code)}
}

// New returns an *Error with the given id, detail and code. Status is the text of code.
func New(id, detail string, code int32) error {
	return &Error{Id: id, Code: code, Detail: detail, Status: StatusText(code)}
}

// Wrap returns an *Error with the given id, code and detail that wraps cause, so that
// errors.Is and errors.As still find cause. Detail defaults to cause.Error().
func Wrap(cause error, id string, code int32, detail string) *Error {
	if detail == "" && cause != nil {
		detail = cause.Error()
	}
	return &Error{Id: id, Code: code, Detail: detail, Status: StatusText(code), cause: cause}
}

// Parse decodes the JSON form of an Error. A string that is not such JSON becomes the
// Detail of an Error with code 0, as in Go Micro.
func Parse(err string) *Error {
	e := new(Error)
	if jerr := json.Unmarshal([]byte(err), e); jerr != nil {
		e = &Error{Detail: err}
	}
	return e
}

// BadRequest returns a 400 error. The detail is formatted with fmt.Sprintf only when
// arguments are given.
func BadRequest(id, format string, a ...interface{}) error { return newError(id, 400, format, a) }

// Unauthorized returns a 401 error.
func Unauthorized(id, format string, a ...interface{}) error { return newError(id, 401, format, a) }

// Forbidden returns a 403 error.
func Forbidden(id, format string, a ...interface{}) error { return newError(id, 403, format, a) }

// NotFound returns a 404 error.
func NotFound(id, format string, a ...interface{}) error { return newError(id, 404, format, a) }

// MethodNotAllowed returns a 405 error.
func MethodNotAllowed(id, format string, a ...interface{}) error {
	return newError(id, 405, format, a)
}

// Timeout returns a 408 error.
func Timeout(id, format string, a ...interface{}) error { return newError(id, 408, format, a) }

// Conflict returns a 409 error.
func Conflict(id, format string, a ...interface{}) error { return newError(id, 409, format, a) }

// RequestEntityTooLarge returns a 413 error.
func RequestEntityTooLarge(id, format string, a ...interface{}) error {
	return newError(id, 413, format, a)
}

// UnsupportedMediaType returns a 415 error.
func UnsupportedMediaType(id, format string, a ...interface{}) error {
	return newError(id, 415, format, a)
}

// InternalServerError returns a 500 error.
func InternalServerError(id, format string, a ...interface{}) error {
	return newError(id, 500, format, a)
}

// NotImplemented returns a 501 error.
func NotImplemented(id, format string, a ...interface{}) error { return newError(id, 501, format, a) }

// BadGateway returns a 502 error.
func BadGateway(id, format string, a ...interface{}) error { return newError(id, 502, format, a) }

// ServiceUnavailable returns a 503 error.
func ServiceUnavailable(id, format string, a ...interface{}) error {
	return newError(id, 503, format, a)
}

// GatewayTimeout returns a 504 error.
func GatewayTimeout(id, format string, a ...interface{}) error { return newError(id, 504, format, a) }

// Equal reports whether two errors are equal: for two *Error values, when their codes are
// equal (Go Micro's rule); otherwise when err1 == err2.
func Equal(err1 error, err2 error) bool {
	v1, ok1 := err1.(*Error)
	v2, ok2 := err2.(*Error)
	if ok1 != ok2 {
		return false
	}
	if !ok1 {
		return err1 == err2
	}
	if v1 == nil || v2 == nil {
		return v1 == v2
	}
	return v1.Code == v2.Code
}

// FromError returns the *Error in err's chain, or, when there is none, an Error parsed
// from err's text (code 0 unless the text is an Error's JSON form). It returns nil for a
// nil err.
func FromError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if stderrors.As(err, &e) {
		return e
	}
	return Parse(err.Error())
}

// As finds the first *Error in err's chain.
func As(err error) (*Error, bool) {
	if err == nil {
		return nil, false
	}
	if e, ok := err.(*Error); ok {
		return e, true
	}
	var e *Error
	if stderrors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// Code returns the code of the first *Error in err's chain, or 0.
func Code(err error) int32 {
	if e, ok := As(err); ok {
		return e.Code
	}
	return 0
}

// MultiError collects several errors, as in Go Micro.
type MultiError struct {
	Errors []*Error `json:"errors,omitempty"`
}

// NewMultiError returns an empty MultiError.
func NewMultiError() *MultiError { return &MultiError{} }

// Append adds errors to e.
func (e *MultiError) Append(err ...*Error) { e.Errors = append(e.Errors, err...) }

// HasErrors reports whether e holds any error.
func (e *MultiError) HasErrors() bool { return len(e.Errors) > 0 }

// Error returns the JSON form of e.
func (e *MultiError) Error() string {
	b, _ := json.Marshal(e)
	return string(b)
}

package server

import (
	"context"
	"fmt"
	"go/token"
	"reflect"
	"sort"
	"strings"

	"github.com/seed-b3892490/micro/registry"
)

var (
	typeOfError   = reflect.TypeFor[error]()
	typeOfContext = reflect.TypeFor[context.Context]()
	typeOfStream  = reflect.TypeFor[Stream]()
	// typeOfRPCStream is what stream handlers are given; their stream parameter must be
	// an interface it satisfies.
	typeOfRPCStream = reflect.TypeFor[*rpcStream]()
)

// isStreamParam reports whether a handler parameter can receive the server's stream.
func isStreamParam(t reflect.Type) bool {
	return t.Kind() == reflect.Interface && t.Implements(typeOfStream) && typeOfRPCStream.AssignableTo(t)
}

// endpoint is one callable endpoint of a handler.
type endpoint struct {
	name   string // "Type.Method"
	stream bool
	// serverStream is true for func(ctx, *Req, S): the stream's opening message is the
	// request; for func(ctx, S) the opening message is dropped (as Go Micro does).
	serverStream bool
	// callStream runs a stream handler; req is nil for func(ctx, S).
	callStream func(ctx context.Context, req interface{}, stream Stream) error
	// newRequest returns a pointer to decode the request body into.
	newRequest func() interface{}
	// newReply returns a pointer to a fresh reply.
	newReply func() interface{}
	// call runs the handler with the decoded request pointer and the reply pointer.
	call func(ctx context.Context, req, rsp interface{}) error
	desc *registry.Endpoint
}

// endpointSource is implemented by the handlers this package makes.
type endpointSource interface {
	endpoints() ([]*endpoint, error)
}

// rpcHandler is a handler value served by reflection.
type rpcHandler struct {
	name    string
	handler interface{}
	eps     []*endpoint
	err     error
	opts    HandlerOptions
}

// NewRpcHandler wraps a value as a Handler whose qualifying methods are endpoints (see the
// package doc). A value with no qualifying method is refused by Server.Handle.
func NewRpcHandler(handler interface{}, opts ...HandlerOption) Handler {
	var o HandlerOptions
	for _, f := range opts {
		f(&o)
	}
	h := &rpcHandler{handler: handler, opts: o}
	h.eps, h.name, h.err = reflectEndpoints(handler, o)
	return h
}

func (h *rpcHandler) Name() string                    { return h.name }
func (h *rpcHandler) Handler() interface{}            { return h.handler }
func (h *rpcHandler) Options() HandlerOptions         { return h.opts }
func (h *rpcHandler) endpoints() ([]*endpoint, error) { return h.eps, h.err }

func (h *rpcHandler) Endpoints() []*registry.Endpoint {
	out := make([]*registry.Endpoint, 0, len(h.eps))
	for _, e := range h.eps {
		out = append(out, e.desc)
	}
	return out
}

func isExportedOrBuiltin(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return token.IsExported(t.Name()) || t.PkgPath() == ""
}

// reflectEndpoints finds the endpoints of a handler value.
func reflectEndpoints(handler interface{}, o HandlerOptions) ([]*endpoint, string, error) {
	if handler == nil {
		return nil, "", fmt.Errorf("server: handler is nil")
	}
	v := reflect.ValueOf(handler)
	typ := v.Type()
	name := reflect.Indirect(v).Type().Name()
	if name == "" {
		return nil, "", fmt.Errorf("server: handler of type %s has no type name: register a named type", typ)
	}
	if !token.IsExported(name) {
		return nil, name, fmt.Errorf("server: handler type %s is not exported", name)
	}
	var eps []*endpoint
	var skipped []string
	for i := 0; i < typ.NumMethod(); i++ {
		m := typ.Method(i)
		ep, why := reflectMethod(v, m, name+"."+m.Name)
		if ep == nil {
			skipped = append(skipped, m.Name+" ("+why+")")
			continue
		}
		if md, ok := o.Metadata[ep.name]; ok {
			for k, val := range md {
				ep.desc.Metadata[k] = val
			}
		}
		eps = append(eps, ep)
	}
	if len(eps) == 0 {
		detail := "it has no exported methods"
		if len(skipped) > 0 {
			detail = "none of its methods has the shape func(context.Context, *Req, *Rsp) error: " + strings.Join(skipped, ", ")
		}
		return nil, name, fmt.Errorf("server: handler %s has no endpoint: %s", name, detail)
	}
	return eps, name, nil
}

// ctxValue is *ctx as a reflect.Value of the interface type context.Context, the type
// of a handler's first parameter: Call then passes it as it is, instead of checking on
// every call that its concrete type implements the interface.
func ctxValue(ctx *context.Context) reflect.Value { return reflect.ValueOf(ctx).Elem() }

// streamValue is *st as a reflect.Value of the interface type Stream (see ctxValue).
func streamValue(st *Stream) reflect.Value { return reflect.ValueOf(st).Elem() }

// reflectMethod returns the endpoint of a method, or nil and why it does not qualify.
func reflectMethod(rcvr reflect.Value, m reflect.Method, name string) (*endpoint, string) {
	mt := m.Type
	if mt.NumOut() != 1 || mt.Out(0) != typeOfError {
		return nil, "must return exactly error"
	}
	if mt.NumIn() < 2 || mt.In(1) != typeOfContext {
		return nil, "first argument must be context.Context"
	}
	fn := m.Func
	switch mt.NumIn() {
	case 3: // func(ctx, stream S) error
		if !isStreamParam(mt.In(2)) {
			return nil, "second argument must be a request or a server.Stream"
		}
		return &endpoint{
			name:   name,
			stream: true,
			callStream: func(ctx context.Context, _ interface{}, st Stream) error {
				out := fn.Call([]reflect.Value{rcvr, ctxValue(&ctx), streamValue(&st)})
				if err := out[0].Interface(); err != nil {
					return err.(error)
				}
				return nil
			},
			desc: &registry.Endpoint{
				Name:     name,
				Metadata: map[string]string{"stream": "true"},
			},
		}, ""
	case 4: // func(ctx, req A, rsp *B) error, or func(ctx, req *A, stream S) error
		argT, rspT := mt.In(2), mt.In(3)
		if isStreamParam(rspT) {
			if argT.Kind() != reflect.Pointer || !isExportedOrBuiltin(argT) {
				return nil, "request type " + argT.String() + " must be an exported pointer"
			}
			argElem := argT.Elem()
			return &endpoint{
				name:         name,
				stream:       true,
				serverStream: true,
				newRequest:   func() interface{} { return reflect.New(argElem).Interface() },
				callStream: func(ctx context.Context, req interface{}, st Stream) error {
					out := fn.Call([]reflect.Value{rcvr, ctxValue(&ctx), reflect.ValueOf(req), streamValue(&st)})
					if err := out[0].Interface(); err != nil {
						return err.(error)
					}
					return nil
				},
				desc: &registry.Endpoint{
					Name:     name,
					Request:  extractValue(argT, 0),
					Metadata: map[string]string{"stream": "true"},
				},
			}, ""
		}
		if !isExportedOrBuiltin(argT) {
			return nil, "request type " + argT.String() + " is not exported"
		}
		if rspT.Kind() != reflect.Pointer {
			return nil, "reply type " + rspT.String() + " must be a pointer"
		}
		if !isExportedOrBuiltin(rspT) {
			return nil, "reply type " + rspT.String() + " is not exported"
		}
		argIsPtr := argT.Kind() == reflect.Pointer
		argElem := argT
		if argIsPtr {
			argElem = argT.Elem()
		}
		rspElem := rspT.Elem()
		return &endpoint{
			name:       name,
			newRequest: func() interface{} { return reflect.New(argElem).Interface() },
			newReply:   func() interface{} { return reflect.New(rspElem).Interface() },
			call: func(ctx context.Context, req, rsp interface{}) error {
				argv := reflect.ValueOf(req)
				if !argIsPtr {
					argv = argv.Elem()
				}
				out := fn.Call([]reflect.Value{rcvr, ctxValue(&ctx), argv, reflect.ValueOf(rsp)})
				if err := out[0].Interface(); err != nil {
					return err.(error)
				}
				return nil
			},
			desc: &registry.Endpoint{
				Name:     name,
				Request:  extractValue(argT, 0),
				Response: extractValue(rspT, 0),
				Metadata: map[string]string{},
			},
		}, ""
	}
	return nil, "wrong number of arguments"
}

// funcHandler is one typed function registered as an endpoint.
type funcHandler struct {
	name string // the Type part of the endpoint
	fn   interface{}
	ep   *endpoint
	err  error
	opts HandlerOptions
}

func (h *funcHandler) Name() string                    { return h.name }
func (h *funcHandler) Handler() interface{}            { return h.fn }
func (h *funcHandler) Options() HandlerOptions         { return h.opts }
func (h *funcHandler) Endpoints() []*registry.Endpoint { return []*registry.Endpoint{h.ep.desc} }
func (h *funcHandler) endpoints() ([]*endpoint, error) {
	if h.err != nil {
		return nil, h.err
	}
	return []*endpoint{h.ep}, nil
}

// NewHandlerFunc wraps a typed function as the Handler of one endpoint ("Type.Method"),
// served without reflection.
func NewHandlerFunc[Req, Rsp any](endpointName string, fn func(context.Context, *Req, *Rsp) error, opts ...HandlerOption) Handler {
	var o HandlerOptions
	for _, f := range opts {
		f(&o)
	}
	typ, _, _ := strings.Cut(endpointName, ".")
	h := &funcHandler{name: typ, fn: fn, opts: o}
	if err := validEndpointName(endpointName); err != nil {
		h.err = err
	} else if fn == nil {
		h.err = fmt.Errorf("server: handler function for %s is nil", endpointName)
	}
	desc := &registry.Endpoint{
		Name:     endpointName,
		Request:  extractValue(reflect.TypeFor[*Req](), 0),
		Response: extractValue(reflect.TypeFor[*Rsp](), 0),
		Metadata: map[string]string{},
	}
	for k, v := range o.Metadata[endpointName] {
		desc.Metadata[k] = v
	}
	h.ep = &endpoint{
		name:       endpointName,
		newRequest: func() interface{} { return new(Req) },
		newReply:   func() interface{} { return new(Rsp) },
		call: func(ctx context.Context, req, rsp interface{}) error {
			return fn(ctx, req.(*Req), rsp.(*Rsp))
		},
		desc: desc,
	}
	return h
}

// HandleFunc registers fn as the endpoint endpointName ("Type.Method") of s: a typed
// handler without interface{} or reflection.
func HandleFunc[Req, Rsp any](s Server, endpointName string, fn func(context.Context, *Req, *Rsp) error, opts ...HandlerOption) error {
	return s.Handle(NewHandlerFunc(endpointName, fn, opts...))
}

func validEndpointName(name string) error {
	typ, method, ok := strings.Cut(name, ".")
	if !ok || typ == "" || method == "" || strings.Contains(method, ".") {
		return fmt.Errorf("server: endpoint %q is not of the form Type.Method", name)
	}
	return nil
}

// sortEndpoints sorts registry endpoints by name.
func sortEndpoints(eps []*registry.Endpoint) {
	sort.Slice(eps, func(i, j int) bool { return eps[i].Name < eps[j].Name })
}

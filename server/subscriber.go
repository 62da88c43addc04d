package server

import (
	"context"
	stderrors "errors"
	"fmt"
	"go/token"
	"reflect"

	"github.com/seed-b3892490/micro/broker"
	"github.com/seed-b3892490/micro/errors"
	"github.com/seed-b3892490/micro/internal/codecs"
	"github.com/seed-b3892490/micro/metadata"
	"github.com/seed-b3892490/micro/registry"
	"github.com/seed-b3892490/micro/transport"
	"github.com/seed-b3892490/micro/transport/headers"
)

// subscriber is a function or value receiving the messages of a topic.
type subscriber struct {
	topic     string
	value     interface{}
	handlers  []*subHandler
	endpoints []*registry.Endpoint
	opts      SubscriberOptions
	err       error
}

// subHandler is one function or method of a subscriber.
type subHandler struct {
	name    string
	msgType reflect.Type // as declared: pointer or value
	call    func(ctx context.Context, msg interface{}) error
}

// newSubscriber validates a subscriber as Go Micro does: a function
// func(context.Context, T) error, or a value whose every exported method has that shape.
func newSubscriber(topic string, sub interface{}, opts ...SubscriberOption) *subscriber {
	o := NewSubscriberOptions(opts...)
	s := &subscriber{topic: topic, value: sub, opts: o}
	if topic == "" {
		s.err = stderrors.New("server: subscriber topic is empty")
		return s
	}
	if sub == nil {
		s.err = fmt.Errorf("server: subscriber of %s is nil", topic)
		return s
	}
	v := reflect.ValueOf(sub)
	t := v.Type()
	if t.Kind() == reflect.Func {
		h, err := subFunc("Func", v, t, 0)
		if err != nil {
			s.err = fmt.Errorf("server: subscriber of %s: %w", topic, err)
			return s
		}
		s.handlers = append(s.handlers, h)
	} else {
		name := reflect.Indirect(v).Type().Name()
		if t.NumMethod() == 0 {
			s.err = fmt.Errorf("server: subscriber %s of %s has no exported method", t, topic)
			return s
		}
		for i := 0; i < t.NumMethod(); i++ {
			m := t.Method(i)
			h, err := subFunc(name+"."+m.Name, m.Func, m.Type, 1)
			if err != nil {
				s.err = fmt.Errorf("server: subscriber %s of %s: method %s: %w", name, topic, m.Name, err)
				return s
			}
			rcvr := v
			call := h.call
			h.call = func(ctx context.Context, msg interface{}) error { return call(ctx, withRcvr{rcvr, msg}) }
			s.handlers = append(s.handlers, h)
		}
	}
	for _, h := range s.handlers {
		s.endpoints = append(s.endpoints, &registry.Endpoint{
			Name:     h.name,
			Request:  extractValue(h.msgType, 0),
			Metadata: map[string]string{"topic": topic, "subscriber": "true"},
		})
	}
	return s
}

type withRcvr struct {
	rcvr reflect.Value
	msg  interface{}
}

// subFunc checks a func(ctx, T) error (after skip receiver arguments) and returns a caller.
func subFunc(name string, fn reflect.Value, t reflect.Type, skip int) (*subHandler, error) {
	if t.NumIn() != 2+skip || t.NumOut() != 1 || t.Out(0) != typeOfError || t.In(skip) != typeOfContext {
		return nil, fmt.Errorf("want the shape func(context.Context, T) error, have %s", t)
	}
	mt := t.In(skip + 1)
	base := mt
	if base.Kind() == reflect.Pointer {
		base = base.Elem()
	}
	if !token.IsExported(base.Name()) && base.PkgPath() != "" {
		return nil, fmt.Errorf("message type %s is not exported", mt)
	}
	return &subHandler{
		name:    name,
		msgType: mt,
		call: func(ctx context.Context, msg interface{}) error {
			args := make([]reflect.Value, 0, 3)
			if w, ok := msg.(withRcvr); ok {
				args = append(args, w.rcvr)
				msg = w.msg
			}
			mv := reflect.ValueOf(msg)
			if mt.Kind() != reflect.Pointer {
				mv = mv.Elem()
			}
			args = append(args, reflect.ValueOf(ctx), mv)
			if err := fn.Call(args)[0].Interface(); err != nil {
				return err.(error)
			}
			return nil
		},
	}, nil
}

func (s *subscriber) Topic() string                   { return s.topic }
func (s *subscriber) Subscriber() interface{}         { return s.value }
func (s *subscriber) Endpoints() []*registry.Endpoint { return s.endpoints }
func (s *subscriber) Options() SubscriberOptions      { return s.opts }

func (s *rpcServer) NewSubscriber(topic string, sb interface{}, opts ...SubscriberOption) Subscriber {
	return newSubscriber(topic, sb, opts...)
}

// Subscribe registers a subscriber; while the server runs it is subscribed at once.
func (s *rpcServer) Subscribe(sb Subscriber) error {
	sub, ok := sb.(*subscriber)
	if !ok {
		sub = newSubscriber(sb.Topic(), sb.Subscriber(), func(o *SubscriberOptions) { *o = sb.Options() })
	}
	if sub.err != nil {
		return sub.err
	}
	s.mu.Lock()
	for _, old := range s.subscribers {
		if old == sub {
			s.mu.Unlock()
			return fmt.Errorf("server: subscriber of %s is already registered", sub.topic)
		}
	}
	s.subscribers = append(s.subscribers, sub)
	started, registered := s.started, s.registered
	s.mu.Unlock()
	if started {
		if err := s.subscribe(sub); err != nil {
			return err
		}
	}
	if registered {
		return s.Register()
	}
	return nil
}

// subscribe subscribes one subscriber to the broker.
func (s *rpcServer) subscribe(sub *subscriber) error {
	s.mu.RLock()
	b := s.opts.Broker
	s.mu.RUnlock()
	var bopts []broker.SubscribeOption
	if sub.opts.Queue != "" {
		bopts = append(bopts, broker.Queue(sub.opts.Queue))
	}
	if !sub.opts.AutoAck {
		bopts = append(bopts, broker.DisableAutoAck())
	}
	if sub.opts.Context != nil {
		bopts = append(bopts, broker.SubscribeContext(sub.opts.Context))
	}
	bs, err := b.Subscribe(sub.topic, s.eventHandler(sub), bopts...)
	if err != nil {
		return fmt.Errorf("server: subscribe to %s: %w", sub.topic, err)
	}
	s.mu.Lock()
	s.brokerSubs = append(s.brokerSubs, bs)
	s.mu.Unlock()
	return nil
}

// eventHandler decodes a broker event by its Content-Type and calls the subscriber.
func (s *rpcServer) eventHandler(sub *subscriber) broker.Handler {
	return func(e broker.Event) error {
		s.mu.RLock()
		name, codecsOpt, wrappers, base, log := s.opts.Name, s.opts.Codecs, s.opts.SubWrappers, s.baseCtx, s.opts.Logger
		s.mu.RUnlock()
		if base == nil {
			base = context.Background()
		}
		bm := e.Message()
		if bm == nil {
			return errors.BadRequest(name, "event on %s has no message", sub.topic)
		}
		ct := bm.Header[headers.ContentType]
		if ct == "" {
			ct = DefaultContentType
		}
		media := codecs.MediaType(ct)
		m, ok := codecs.Lookup(media, codecsOpt, DefaultCodecs)
		if !ok {
			return errors.UnsupportedMediaType(name, "unsupported Content-Type %q on topic %s", ct, sub.topic)
		}
		nc, _ := codecs.NewCodec(media, codecsOpt, DefaultCodecs)
		md := make(metadata.Metadata, len(bm.Header)+1)
		for k, v := range bm.Header {
			if !serverOwned(k) {
				md[k] = v
			}
		}
		if pe, ok := e.(interface{ PeerService() string }); ok {
			if peer := pe.PeerService(); peer != "" {
				md[PeerServiceKey] = peer
			}
		}
		ctx := context.WithValue(metadata.NewContextNoCopy(base, md), eventKey{}, e)
		var errs []error
		for _, h := range sub.handlers {
			mt := h.msgType
			if mt.Kind() == reflect.Pointer {
				mt = mt.Elem()
			}
			val := reflect.New(mt).Interface()
			if err := m.Unmarshal(bm.Body, val); err != nil {
				errs = append(errs, errors.BadRequest(name, "cannot decode the %s message on %s for %s: %v", media, sub.topic, h.name, err))
				continue
			}
			call := h.call
			fn := SubscriberFunc(func(ctx context.Context, msg Message) error { return call(ctx, msg.Payload()) })
			for i := len(wrappers) - 1; i >= 0; i-- {
				fn = wrappers[i](fn)
			}
			msg := &message{topic: sub.topic, contentType: ct, payload: val, header: bm.Header, body: bm.Body, newCodec: nc}
			if err := s.call(ctx, log, h.name, func() error { return fn(ctx, msg) }); err != nil {
				errs = append(errs, err)
			}
		}
		switch len(errs) {
		case 0:
			return nil
		case 1:
			// one handler failed: its error, code and all, is the delivery's
			if e, ok := errors.As(errs[0]); ok {
				return e
			}
			return errors.Wrap(errs[0], name, 500, "subscriber error: "+errs[0].Error())
		}
		// several: the code of the first that has one
		joined := stderrors.Join(errs...)
		code := int32(500)
		if e, ok := errors.As(joined); ok && e.Code != 0 {
			code = e.Code
		}
		return errors.Wrap(joined, name, code, "subscriber error: "+joined.Error())
	}
}

// serveEvent delivers a message that came to the RPC port with a Micro-Topic header (and
// no endpoint) to the server's subscribers of that topic, as Go Micro's servers do, so
// that `curl -H 'Micro-Topic: t' -d ...` triggers them. The reply is empty, with the
// subscribers' error if any failed; a topic without subscribers here is a 404.
func (s *rpcServer) serveEvent(sock transport.Socket, msg *transport.Message, topic, name string) {
	s.mu.RLock()
	var subs []*subscriber
	for _, sb := range s.subscribers {
		if sb.topic == topic && sb.err == nil {
			subs = append(subs, sb)
		}
	}
	s.mu.RUnlock()
	if len(subs) == 0 {
		s.sendError(sock, errors.NotFound(name, "no subscriber of topic %s here", topic).(*errors.Error))
		return
	}
	ev := &rpcEvent{topic: topic, msg: broker.Message{Header: msg.Header, Body: msg.Body}}
	ev.peer, _ = peerService(sock)
	var errs []error
	for _, sb := range subs {
		if err := s.eventHandler(sb)(ev); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		s.sendError(sock, s.toError(name, stderrors.Join(errs...)))
		return
	}
	_ = sock.Send(&transport.Message{Header: map[string]string{headers.ContentType: "application/json"}})
}

// rpcEvent is a broker.Event for a message that came to the RPC port.
type rpcEvent struct {
	topic string
	msg   broker.Message
	peer  string // the service of the sender's verified certificate
}

func (e *rpcEvent) Topic() string            { return e.topic }
func (e *rpcEvent) Message() *broker.Message { return &e.msg }
func (e *rpcEvent) Ack() error               { return nil }
func (e *rpcEvent) Error() error             { return nil }

// PeerService returns the service of the sender's verified TLS certificate, or "".
func (e *rpcEvent) PeerService() string { return e.peer }

type eventKey struct{}

// EventFromContext returns the broker event a subscriber's handler was called for. A
// subscriber registered with DisableAutoAck acknowledges its message with the event's
// Ack (with brokers that redeliver what is not acknowledged: broker/rabbitmq,
// events/natsjs); with AutoAck, the default, the broker acknowledges it once the handler
// returns nil.
func EventFromContext(ctx context.Context) (broker.Event, bool) {
	e, ok := ctx.Value(eventKey{}).(broker.Event)
	return e, ok
}

// Package metadata carries request metadata, the string key/value pairs that travel with
// a call as headers, in a context.Context.
//
// A client sends the metadata of its call's context as request headers; a server puts
// the headers it receives into the handler's context. Over HTTP, header names are
// canonicalised (micro-id becomes Micro-Id), so Get looks a key up exactly, then in its
// canonical form, then case-insensitively: Get(ctx, "Micro-ID") finds "Micro-Id".
//
// Metadata values stored in a context are never mutated: every function that changes
// metadata returns a new context holding a new map, so a Metadata read from a context
// is safe to use from several goroutines.
package metadata

import (
	"context"
	"net/textproto"
	"strings"
)

type metadataKey struct{}

// Metadata is a set of request headers: key to value.
type Metadata map[string]string

// Get returns the value of key: the exact key first, then its canonical header form,
// then any key equal under case folding.
func (md Metadata) Get(key string) (string, bool) {
	if v, ok := md[key]; ok {
		return v, true
	}
	if v, ok := md[textproto.CanonicalMIMEHeaderKey(key)]; ok {
		return v, true
	}
	for k, v := range md {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

// Set sets key to val, replacing any key equal to it under case folding.
func (md Metadata) Set(key, val string) {
	md.Delete(key)
	md[key] = val
}

// Delete removes key and every key equal to it under case folding.
func (md Metadata) Delete(key string) {
	delete(md, key)
	for k := range md {
		if strings.EqualFold(k, key) {
			delete(md, k)
		}
	}
}

// Copy returns a copy of md.
func Copy(md Metadata) Metadata {
	cmd := make(Metadata, len(md))
	for k, v := range md {
		cmd[k] = v
	}
	return cmd
}

// Delete returns a context without key in its metadata.
func Delete(ctx context.Context, k string) context.Context {
	return Set(ctx, k, "")
}

// Set returns a context whose metadata has k set to v; an empty v deletes k.
func Set(ctx context.Context, k, v string) context.Context {
	md, _ := fromContext(ctx)
	cmd := Copy(md)
	if v == "" {
		cmd.Delete(k)
	} else {
		cmd.Set(k, v)
	}
	return context.WithValue(ctx, metadataKey{}, cmd)
}

// Get returns the value of key in the context's metadata, looked up as Metadata.Get does.
func Get(ctx context.Context, key string) (string, bool) {
	md, ok := fromContext(ctx)
	if !ok {
		return "", false
	}
	return md.Get(key)
}

// FromContext returns a copy of the context's metadata. Keys keep their case.
func FromContext(ctx context.Context) (Metadata, bool) {
	md, ok := fromContext(ctx)
	if !ok {
		return nil, false
	}
	return Copy(md), true
}

// Range calls fn for each pair of the context's metadata without copying it, until fn
// returns false. fn must not keep or modify anything it is given beyond the call.
func Range(ctx context.Context, fn func(key, val string) bool) {
	md, _ := fromContext(ctx)
	for k, v := range md {
		if !fn(k, v) {
			return
		}
	}
}

func fromContext(ctx context.Context) (Metadata, bool) {
	if ctx == nil {
		return nil, false
	}
	md, ok := ctx.Value(metadataKey{}).(Metadata)
	return md, ok
}

// NewContext returns a context holding a copy of md as its metadata, replacing any
// metadata it had.
func NewContext(ctx context.Context, md Metadata) context.Context {
	return context.WithValue(ctx, metadataKey{}, Copy(md))
}

// MergeContext returns a context whose metadata is the context's merged with patchMd.
// A key already present is replaced only when overwrite is true; an empty value in
// patchMd deletes the key.
func MergeContext(ctx context.Context, patchMd Metadata, overwrite bool) context.Context {
	md, _ := fromContext(ctx)
	cmd := Copy(md)
	for k, v := range patchMd {
		_, exists := cmd.Get(k)
		switch {
		case v == "":
			cmd.Delete(k)
		case !exists || overwrite:
			cmd.Set(k, v)
		}
	}
	return context.WithValue(ctx, metadataKey{}, cmd)
}

// NewContextNoCopy is NewContext without the copy: the caller gives up md and must not
// modify it afterwards. The server uses it to avoid a copy per request.
func NewContextNoCopy(ctx context.Context, md Metadata) context.Context {
	return context.WithValue(ctx, metadataKey{}, md)
}

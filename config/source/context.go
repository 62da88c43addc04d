package source

import "context"

// ContextOption returns an Option that stores v under k in the source's context. Source
// packages build their own options with it.
func ContextOption(k, v interface{}) Option {
	return func(o *Options) {
		if o.Context == nil {
			o.Context = context.Background()
		}
		o.Context = context.WithValue(o.Context, k, v)
	}
}

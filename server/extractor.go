package server

import (
	"reflect"
	"strings"

	"github.com/seed-b3892490/micro/registry"
)

// extractValue describes a type for the registry, three levels deep. Fields are named
// after their json tag, or their Go name when untagged; fields tagged "-" are left out.
func extractValue(v reflect.Type, depth int) *registry.Value {
	if depth > 3 || v == nil {
		return nil
	}
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Name() == "" && v.Kind() != reflect.Slice && v.Kind() != reflect.Map {
		return &registry.Value{Name: v.String(), Type: v.String()}
	}
	arg := &registry.Value{Name: v.Name(), Type: v.Name()}
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			if !f.IsExported() {
				continue
			}
			name := f.Name
			if tag, ok := f.Tag.Lookup("json"); ok {
				tname, _, _ := strings.Cut(tag, ",")
				if tname == "-" {
					continue
				}
				if tname != "" {
					name = tname
				}
			}
			val := extractValue(f.Type, depth+1)
			if val == nil {
				continue
			}
			val.Name = name
			arg.Values = append(arg.Values, val)
		}
	case reflect.Slice:
		elem := v.Elem()
		if elem.Kind() == reflect.Pointer {
			elem = elem.Elem()
		}
		arg.Name = v.String()
		arg.Type = "[]" + elem.Name()
		if elem.Name() == "" {
			arg.Type = v.String()
		}
		if val := extractValue(v.Elem(), depth+1); val != nil && val.Values != nil {
			arg.Values = append(arg.Values, val)
		}
	case reflect.Map:
		arg.Name = v.String()
		arg.Type = v.String()
	}
	return arg
}

package json

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"time"

	"github.com/seed-b3892490/micro/config/reader"
)

// maxDepth bounds the nesting of a document, so a hostile one cannot exhaust the stack.
const maxDepth = 256

// normalize converts what any decoder produced into the reader's tree: maps with string
// keys, []interface{}, string, json.Number, bool and nil. Strings have environment
// references expanded.
func normalize(v interface{}, depth int) (interface{}, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("the document nests deeper than %d levels", maxDepth)
	}
	switch t := v.(type) {
	case nil, bool, json.Number:
		return t, nil
	case string:
		return reader.ExpandEnv(t), nil
	case map[string]interface{}:
		out := make(map[string]interface{}, len(t))
		for k, e := range t {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case map[interface{}]interface{}:
		out := make(map[string]interface{}, len(t))
		for k, e := range t {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[fmt.Sprint(k)] = n
		}
		return out, nil
	case []interface{}:
		out := make([]interface{}, len(t))
		for i, e := range t {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case int:
		return json.Number(strconv.FormatInt(int64(t), 10)), nil
	case int64:
		return json.Number(strconv.FormatInt(t, 10)), nil
	case uint64:
		return json.Number(strconv.FormatUint(t, 10)), nil
	case float64:
		return floatNumber(t), nil
	case float32:
		return floatNumber(float64(t)), nil
	case time.Time:
		return formatTime(t), nil
	case fmt.Stringer:
		return t.String(), nil // TOML's local dates and times
	}
	// Other slices and maps (a decoder's own types, such as TOML's []map[string]interface{}).
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		out := make([]interface{}, rv.Len())
		for i := range out {
			n, err := normalize(rv.Index(i).Interface(), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case reflect.Map:
		out := make(map[string]interface{}, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			n, err := normalize(it.Value().Interface(), depth+1)
			if err != nil {
				return nil, err
			}
			out[fmt.Sprint(it.Key().Interface())] = n
		}
		return out, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32:
		return json.Number(strconv.FormatInt(rv.Int(), 10)), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uintptr:
		return json.Number(strconv.FormatUint(rv.Uint(), 10)), nil
	}
	return nil, fmt.Errorf("unsupported value of type %T", v)
}

// floatNumber keeps a float as a number; NaN and the infinities, which JSON cannot hold,
// become strings.
func floatNumber(f float64) interface{} {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
}

// mergeMaps merges src into dst and returns dst (a new map when dst is nil). Maps merge
// key by key; anything else from src replaces what dst held. src's maps are not shared
// with the result.
func mergeMaps(dst, src map[string]interface{}) map[string]interface{} {
	if dst == nil {
		dst = make(map[string]interface{}, len(src))
	}
	for k, v := range src {
		if sm, ok := v.(map[string]interface{}); ok {
			dm, _ := dst[k].(map[string]interface{})
			dst[k] = mergeMaps(dm, sm)
			continue
		}
		dst[k] = v
	}
	return dst
}

// lookup walks path from root. Path elements name map keys, or index lists.
func lookup(root interface{}, path []string) (interface{}, bool) {
	cur := root
	for _, p := range path {
		switch t := cur.(type) {
		case map[string]interface{}:
			v, ok := t[p]
			if !ok {
				return nil, false
			}
			cur = v
		case []interface{}:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(t) {
				return nil, false
			}
			cur = t[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// withValue returns a copy of m with val at path; the maps along the path are copied, the
// rest is shared. A nil val with del removes the key.
func withValue(m map[string]interface{}, path []string, val interface{}, del bool) map[string]interface{} {
	out := make(map[string]interface{}, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	if len(path) == 0 {
		return out
	}
	k := path[0]
	if len(path) == 1 {
		if del {
			delete(out, k)
		} else {
			out[k] = val
		}
		return out
	}
	child, ok := out[k].(map[string]interface{})
	if !ok {
		if del {
			return out
		}
		child = nil
	}
	out[k] = withValue(child, path[1:], val, del)
	return out
}

// deepCopy copies maps and lists so callers cannot change a shared document.
func deepCopy(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		out := make(map[string]interface{}, len(t))
		for k, e := range t {
			out[k] = deepCopy(e)
		}
		return out
	case []interface{}:
		out := make([]interface{}, len(t))
		for i, e := range t {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

func kind(v interface{}) string {
	switch v.(type) {
	case []interface{}:
		return "list"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	}
	return fmt.Sprintf("%T", v)
}

// sortedKeys returns m's keys in order.
func sortedKeys(m map[string]interface{}) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// formatTime writes a time as RFC 3339. TOML's local dates and times (which the TOML
// decoder marks with locations of these names) keep their own shorter forms.
func formatTime(t time.Time) string {
	switch t.Location().String() {
	case "date-local":
		return t.Format(time.DateOnly)
	case "time-local":
		return t.Format("15:04:05.999999999")
	case "datetime-local":
		return t.Format("2006-01-02T15:04:05.999999999")
	}
	return t.Format(time.RFC3339Nano)
}

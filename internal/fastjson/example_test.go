package fastjson_test

import (
	"encoding/json"
	"fmt"

	"github.com/seed-b3892490/micro/internal/fastjson"
)

type greeting struct {
	Message string `json:"message"`
	Count   int    `json:"count,omitempty"`
}

// The JSON codec tries fastjson first and falls back to encoding/json when it declines.
func Example() {
	in := []byte(`{"message":"Hello alice","count":2}`)
	var g greeting
	if !fastjson.Decode(in, &g) {
		if err := json.Unmarshal(in, &g); err != nil {
			panic(err)
		}
	}
	out, ok := fastjson.Append(nil, &g)
	fmt.Println(g.Message, g.Count, ok, string(out))

	// a string encoding/json escapes is declined: the caller uses encoding/json
	_, ok = fastjson.Append(nil, &greeting{Message: "<b>"})
	fmt.Println(ok)
	// Output:
	// Hello alice 2 true {"message":"Hello alice","count":2}
	// false
}

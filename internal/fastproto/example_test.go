package fastproto_test

import (
	"fmt"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/seed-b3892490/micro/internal/fastproto"
)

func Example() {
	b, ok := fastproto.Append(nil, wrapperspb.String("alice"))
	fmt.Printf("%x %v\n", b, ok)
	var got wrapperspb.StringValue
	fmt.Println(fastproto.Decode(b, &got), got.GetValue())
	// Output:
	// 0a05616c696365 true
	// true alice
}

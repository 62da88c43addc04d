package auth_test

import (
	"context"
	"fmt"

	"github.com/seed-b3892490/micro/auth"
	"github.com/seed-b3892490/micro/auth/noop"
	"github.com/seed-b3892490/micro/metadata"
	"github.com/seed-b3892490/micro/server"
	authwrapper "github.com/seed-b3892490/micro/wrapper/auth"
)

// The handler wrapper refuses calls without a token with 401, before the handler runs.
func ExampleAuthHandler() {
	h := authwrapper.AuthHandler(authwrapper.AuthRequired(noop.NewAuth(), nil))(
		func(ctx context.Context, req server.Request, rsp interface{}) error {
			_, ok := auth.AccountFromContext(ctx)
			fmt.Println("handler ran, account:", ok)
			return nil
		})
	err := h(context.Background(), request{"greeter", "Greeter.Hello"}, nil)
	fmt.Println(err)
	ctx := metadata.NewContext(context.Background(), authwrapper.TokenToMetadata(nil, "a-token"))
	_ = h(ctx, request{"greeter", "Greeter.Hello"}, nil)
	// Output:
	// {"id":"greeter","code":401,"detail":"authentication required for Greeter.Hello","status":"Unauthorized"}
	// handler ran, account: true
}

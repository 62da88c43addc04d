module github.com/seed-b3892490/micro/bench/micro

go 1.26.0

require (
	github.com/seed-b3892490/micro/bench/harness v0.0.0
	go-micro.dev/v5 v5.12.0
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/google/uuid v1.6.0 // indirect
	github.com/miekg/dns v1.1.73 // indirect
	golang.org/x/net v0.61.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace (
	github.com/seed-b3892490/micro/bench/harness => ../harness
	// .gomicro is micro under the module path go-micro.dev/v5, written by
	// cmd/gomicro-compat; the runner (re)generates it before every build.
	go-micro.dev/v5 => ./.gomicro
)

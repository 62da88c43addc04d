// Package testproto holds protocol buffer messages for micro's tests.
//
// Regenerate the .pb.go files with protoc and protoc-gen-go:
//
//	protoc --go_out=. --go_opt=paths=source_relative helloworld.proto scalars.proto
package testproto

//go:generate protoc --go_out=. --go_opt=paths=source_relative helloworld.proto scalars.proto

// Package pb holds the generated protobuf and gRPC code of the CloudEvents
// service (cloudevent.proto), wire-compatible with Open Cluster Management's
// sdk-go grpc/protobuf/v1 package.
//
// The proto package is io.cloudevents.v1, as the wire requires. A binary that
// also links sdk-go's generated package registers the same message names
// twice; protobuf-go then panics at init unless
// GOLANG_PROTOBUF_REGISTRATION_CONFLICT=warn is set.
package pb

//go:generate protoc -I . -I /usr/include --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative cloudevent.proto

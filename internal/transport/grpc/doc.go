// Package grpc carries baton's CloudEvents over gRPC with Open Cluster
// Management's CloudEventService (package io.cloudevents.v1, see pb), so
// sdk-go based source clients (Maestro's) and baton agents use one service.
//
// Server listens twice, serving the same service with different roles:
//
//   - Sources (default :8090). Subscribe{source} opens a status stream: the
//     server answers with the subscription-id header at once, then streams
//     the status of the source's bundles as status.update_request events as
//     they change (from the injected ChangeFeed), and a Deleted=True status
//     when a bundle is purged. Publish takes spec create/update/delete
//     requests, handed to the one bundle writer REST uses too
//     (bundlewrite: same defaults, validation and errors), which stores them
//     in the injected BundleStore and calls Notify(consumer); and status.resync_request, answered on the
//     source's streams with every status whose hash differs.
//   - Agents (default :8091). Subscribe{cluster_name} opens a session: a
//     protocol.Conn handed to the injected AgentHandler. Its Send writes to
//     the stream; its Recv yields what the agent Publishes with that
//     clustername. A newer Subscribe for the same consumer replaces the
//     older session.
//
// Every Subscribe stream gets a heartbeat event every HeartbeatInterval.
// Each stream has one sending goroutine; producers queue (bounded, blocking
// with their context) and get protocol.ErrDisconnected once the stream is
// gone. Publish returns after the event reached the session's Recv queue,
// so an agent's sequential Sends arrive in order.
//
// Dial is the agent side: a protocol.Conn that subscribes with the consumer
// as cluster_name, publishes with unary calls, and reconnects with
// jittered exponential backoff until its context ends.
//
// Several replicas: an agent's Publish calls must reach the replica that
// holds its Subscribe stream. Dial keeps both on one HTTP/2 connection, so
// balance the agent endpoint per connection (L4), not per call. Source
// streams follow the store's change feed and work behind any balancer.
// Config.SequenceID must mint from the same snowflake node as status ingest.
//
// Security (TLSConfig): server TLS on both listeners; on the agent listener
// an optional client CA, in which case a certificate's common name must
// equal the consumer it acts for; an optional bearer token on every call.
package grpc

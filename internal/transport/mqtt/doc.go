// Package mqtt carries the server–agent protocol over an MQTT 5 broker
// (Mosquitto, EMQX, Azure Event Grid), for fleets that already run one.
//
// Topics (REFERENCE.md, "MQTT"): the server publishes a consumer's messages
// on sources/{source}/consumers/{consumer}/sourceevents and subscribes to
// sources/{source}/consumers/+/agentevents; an agent subscribes to its
// sourceevents topic and publishes on its agentevents topic. Every publish
// is QoS 1. A payload is one CloudEvent (package cloudevents maps the
// protocol messages onto events) in the CloudEvents JSON structured format,
// content type application/cloudevents+json, at most limits.MQTTMessageBytes.
//
// Sessions. MQTT has no connection between server and agent, only between
// each of them and the broker, so the server derives sessions from traffic:
//   - A Hello from a consumer without a session opens one: the server makes
//     a protocol.Conn for the consumer and hands it to the AgentHandler
//     (hub.Attach) until the session ends. Later Hellos go to the same
//     session (the hub resynchronises on each).
//   - A session ends when the consumer sent nothing for SessionTimeout, or
//     when Attach returns.
//   - Any other message from a consumer without a session, or a heartbeat
//     or status under another epoch than the session's Hello, makes the
//     server ask the agent for a new Hello (at most once per HelloInterval):
//     it publishes a transport keepalive (a heartbeat event without
//     batonepoch, cloudevents.IsKeepalive) on the consumer's sourceevents
//     topic. The agent's Conn answers every such keepalive with Up, so the
//     agent sends Hello. This heals a restarted server, an expired session
//     and a lost Hello without a broker-level connection between the two.
//
// The agent's Conn (Dial) signals Up on every (re)connection to the broker
// once its subscription is in place, and returns protocol.ErrDisconnected
// from Send while the broker is unreachable. Both sides reconnect forever
// (autopaho), with exponential backoff.
//
// Authorisation is the broker's: the server trusts the topic, not the
// event, for the consumer (an event whose clustername differs from its
// topic is dropped). Let each agent read only its sourceevents topic and
// write only its agentevents topic, e.g. in a Mosquitto ACL file with the
// consumer name as user name:
//
//	pattern read  sources/baton/consumers/%u/sourceevents
//	pattern write sources/baton/consumers/%u/agentevents
//
// The protocol is MQTT 5 (paho.golang); MQTT 3.1.1-only brokers are not
// supported.
//
// Latency: Mosquitto leaves Nagle's algorithm on by default, which adds
// about 40 ms to every message it forwards (BenchmarkStatusRoundTrip: 44 ms
// against 0.8 ms); set set_tcp_nodelay true in mosquitto.conf.
//
// Several server replicas on one broker (ServerConfig.Ownership): every
// replica subscribes to every consumer's agentevents topic, and only the
// replica that owns the consumer handles its events; the others drop them.
// The owner is the replica whose session holds the consumer's session
// lease, or, while nobody live holds it, the one rendezvous hashing picks
// among the live replicas (replica.Ownership). A Hello from a consumer
// without a session here is first checked against the rule; every
// OwnerInterval a replica asks the agents of consumers it now owns but has
// no session for (their replica died) for a Hello, so a dead replica's
// consumers move within its lease TTL and that interval. MQTT 5 shared
// subscriptions ($share/group/...) are not used: brokers such as Mosquitto
// hand each message to any member of the group, so one agent's Hello,
// status and heartbeats would land on different replicas, out of order,
// none of them holding its session.
package mqtt

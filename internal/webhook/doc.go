// Package webhook delivers bundle changes to HTTP receivers as signed
// CloudEvents (docs/webhooks.md).
//
// Two parts, both started by a Manager:
//
//   - The generator tails the durable change log (through the watch
//     broker, resuming from its own stored cursor). For every change it
//     reads the bundle, compares it with the bundle's last snapshot and,
//     for each subscription whose search and event kinds match, queues an
//     event carrying old and new values. Cursor, snapshots and events are
//     written in one transaction, so a restart resumes exactly where the
//     last committed batch ended (at-least-once, nothing skipped).
//   - One worker per subscription sends that subscription's queued events
//     in order, one at a time, and removes each once the receiver answered
//     2xx. A failure or timeout is retried with exponential backoff; the
//     worker never skips an event, so order per bundle (and per
//     subscription) holds.
//
// Isolation and backpressure: workers share nothing, so a slow or dead
// receiver delays only its own subscription. The generator never waits for
// a receiver, and the broker drops (never blocks on) a subscriber that falls
// behind: status ingest is never slowed by webhooks; the generator then
// resubscribes from its cursor. A subscription's queue is bounded
// (MaxBacklog): beyond it the oldest events are dropped and counted, which
// the receiver sees as a gap in the per-subscription sequence.
package webhook

package store

import "time"

// Subscription is a stored webhook subscription (package webhook delivers
// it). Secret signs every delivery and is never returned by the REST API.
type Subscription struct {
	ID        string
	Name      string
	URL       string
	Secret    string
	Search    string            // the list search language over bundles; empty matches all
	Events    []string          // event kinds; empty means every kind
	Headers   map[string]string // extra request headers
	CreatedAt time.Time
	Delivery  DeliveryState
}

// DeliveryState is a subscription's delivery record.
type DeliveryState struct {
	LastSuccess *time.Time
	LastError   string
	LastErrorAt *time.Time
	// Failures counts consecutive failed attempts (0 after a success).
	Failures  int64
	Delivered int64 // events acknowledged by the receiver
	Dropped   int64 // events dropped to bound the backlog
	// Backlog is the number of undelivered events; OldestUndelivered the
	// creation time of the oldest (nil when none).
	Backlog           int64
	OldestUndelivered *time.Time
}

// SubscriptionEvent is one undelivered event of a subscription. Seq numbers
// a subscription's events from 1, without gaps except where the backlog
// bound dropped some.
type SubscriptionEvent struct {
	SubscriptionID string
	Seq            int64
	BundleID       string
	Type           string
	Data           []byte // the CloudEvent data (JSON)
	CreatedAt      time.Time
}

// WebhookBatch is what the webhook generator records for a run of changes,
// in one transaction: the change sequence processed up to, the bundles'
// new snapshots ("" deletes one) and the events to queue.
type WebhookBatch struct {
	Cursor    int64
	Snapshots map[string]string
	Events    []SubscriptionEvent // Seq is assigned by the store
	// MaxBacklog bounds each subscription's undelivered events; the oldest
	// beyond it are dropped and counted. 0 means no bound.
	MaxBacklog int
}

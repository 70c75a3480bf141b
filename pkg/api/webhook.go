package api

import (
	"encoding/json"
	"time"

	workv1 "open-cluster-management.io/api/work/v1"
)

// Webhook subscriptions: REST shapes (/api/maestro/v1/subscriptions) and
// the data of the CloudEvents baton delivers (docs/webhooks.md).
const (
	KindSubscription     = "Subscription"
	KindSubscriptionList = "SubscriptionList"
)

// Event kinds a subscription can ask for.
const (
	EventFeedback   = "feedback"   // a feedback value of an object changed (or appeared, or went away)
	EventFreshness  = "freshness"  // the bundle's freshness state or reason changed
	EventConditions = "conditions" // an Applied or Available condition (bundle or object) changed
	EventDeleted    = "deleted"    // the bundle was deleted (purged)
)

// EventKinds lists every event kind.
var EventKinds = []string{EventFeedback, EventFreshness, EventConditions, EventDeleted}

// CloudEvent types of webhook deliveries.
const (
	CloudEventBundleChanged = "io.baton.resourcebundle.changed"
	CloudEventBundleDeleted = "io.baton.resourcebundle.deleted"
)

// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">".
const SignatureHeader = "X-Baton-Signature"

// Subscription is a webhook subscription as REST serves it. POST takes
// name, url, secret, search, events and headers; the secret is never
// returned.
type Subscription struct {
	ID        string             `json:"id"`
	Kind      string             `json:"kind"`
	Href      string             `json:"href"`
	Name      string             `json:"name"`
	URL       string             `json:"url"`
	Secret    string             `json:"secret,omitempty"`
	Search    string             `json:"search,omitempty"`
	Events    []string           `json:"events"`
	Headers   map[string]string  `json:"headers,omitempty"`
	CreatedAt time.Time          `json:"created_at"`
	Status    *SubscriptionState `json:"status,omitempty"`
}

// Subscription states.
const (
	SubscriptionActive  = "Active"
	SubscriptionFailing = "Failing"
)

// SubscriptionState is a subscription's delivery status.
type SubscriptionState struct {
	// State is Active, or Failing after FailingAfter consecutive failed attempts.
	State       string     `json:"state"`
	LastSuccess *time.Time `json:"lastSuccess,omitempty"`
	LastError   string     `json:"lastError,omitempty"`
	LastErrorAt *time.Time `json:"lastErrorAt,omitempty"`
	Failures    int64      `json:"consecutiveFailures"`
	Delivered   int64      `json:"delivered"`
	// Backlog counts undelivered events; Dropped those removed to bound it.
	Backlog           int64      `json:"backlog"`
	OldestUndelivered *time.Time `json:"oldestUndelivered,omitempty"`
	Dropped           int64      `json:"dropped"`
}

// WebhookEvent is the data of a delivered CloudEvent.
type WebhookEvent struct {
	// Kinds lists what changed (EventFeedback, …).
	Kinds []string `json:"kinds"`
	// ChangeSeq is the change log sequence the new state was read at.
	ChangeSeq int64       `json:"changeSeq"`
	Bundle    EventBundle `json:"bundle"`
	Freshness struct {
		Old *Freshness `json:"old"`
		New *Freshness `json:"new"`
	} `json:"freshness"`
	// Conditions are the bundle's condition statuses by type, before and after.
	Conditions OldNew[map[string]string] `json:"conditions"`
	Objects    []EventObject             `json:"objects,omitempty"`
}

// OldNew is a value before and after the change.
type OldNew[T any] struct {
	Old T `json:"old"`
	New T `json:"new"`
}

// EventBundle identifies the bundle of an event.
type EventBundle struct {
	ID           string `json:"id"`
	Name         string `json:"name,omitempty"`
	ConsumerName string `json:"consumer_name"`
	Source       string `json:"source,omitempty"`
	Version      int64  `json:"version,omitempty"`
	Revision     int64  `json:"revision,omitempty"`
	Deleted      bool   `json:"deleted,omitempty"`
}

// EventObject is one object of the bundle: its identity now, and its
// feedback values and condition statuses before and after.
type EventObject struct {
	ResourceMeta workv1.ManifestResourceMeta        `json:"resourceMeta"`
	Observed     Observed                           `json:"observed"`
	Feedback     OldNew[map[string]json.RawMessage] `json:"feedback"`
	Conditions   OldNew[map[string]string]          `json:"conditions"`
}

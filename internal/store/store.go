// Package store owns baton's durable state: consumers, resource bundles with
// their spec generations and reported status, the transactional spec outbox,
// and agent liveness. Two implementations share one schema and one test
// suite: SQLite (embedded default) and PostgreSQL.
//
// Guarantees every implementation keeps:
//   - Generations come from a per-bundle-id high-water mark that survives
//     delete and recreate of the same id, so they never go back (I4).
//   - Every spec change (create, update, delete request) writes its outbox
//     event in the same transaction as the bundle change (I5).
//   - Status writes are ordered per (consumer, agent epoch, revision); an
//     older or duplicate report is a no-op, never an error (I4, I5).
//   - Every change to a bundle (spec or status) takes a new value from one
//     global, strictly increasing change sequence, so watchers can resume.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/baton-dev/baton/pkg/api"
)

// Errors callers branch on. Implementations wrap them with detail
// (fmt.Errorf("consumer %q: %w", name, ErrNotFound)).
var (
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique name is taken, a version does not match, or a
	// consumer still has bundles.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: a filter or order names an unknown field, or a value is malformed.
	ErrInvalid = errors.New("invalid")
)

// Consumer is a stored consumer.
type Consumer struct {
	ID        string
	Name      string
	Labels    map[string]string
	CreatedAt time.Time
	UpdatedAt time.Time
	Agent     AgentState
}

// AgentState is the durable liveness record of a consumer's agent.
type AgentState struct {
	Connected     bool
	Epoch         string    // current agent epoch; reports from other epochs are refused
	LastHeartbeat time.Time // zero if never
	ServerID      string    // replica that holds the agent's connection
	// Lease is the consumer's session lease (read only: the hub keeps it
	// through Leases): which agent serves the consumer, and the last other
	// agent told to stand down.
	Lease AgentLease
}

// AgentLease is the part of a consumer's session lease its readers show.
type AgentLease struct {
	Holder      string // identity of the agent whose session is active
	ExpiresAt   time.Time
	Contender   string // the last agent refused while Holder held it
	ContendedAt time.Time
}

// Bundle is a stored resource bundle.
type Bundle struct {
	ID           string
	Name         string
	ConsumerName string
	Source       string
	Meta         api.ObjectMeta
	Spec         api.BundleSpec
	// Generation is the spec generation: it never restarts for an id, not
	// even when the bundle is deleted and created again (DESIGN I4).
	Generation int64
	// FirstGeneration is the generation this bundle was created at (0 for
	// bundles stored before it was recorded). See Version.
	FirstGeneration int64
	CreatedAt       time.Time
	UpdatedAt       time.Time
	// DeletedAt is set once deletion was requested; the row goes away when
	// the agent confirms removal (PurgeBundle).
	DeletedAt *time.Time
	// ChangeSeq is the global change sequence value of the last change.
	ChangeSeq int64
	Status    Status
}

// Status is the stored status of a bundle.
type Status struct {
	Reported api.ReportedStatus
	// ObservedGeneration is the spec generation the agent computed it from.
	ObservedGeneration int64
	// Revision counts accepted status changes of this bundle (server side).
	Revision int64
	// SequenceID is the snowflake id minted when the status was accepted.
	SequenceID string
	// AgentEpoch and AgentRevision order reports (I4).
	AgentEpoch    string
	AgentRevision int64
	// Hash is the SHA-256 hex digest of the reported status JSON.
	Hash string
	// ReportedAt is when the server accepted the last change; ConfirmedAt is
	// the last time the agent proved the status current (report or matching
	// digest).
	ReportedAt  time.Time
	ConfirmedAt time.Time
	// DigestMismatch is set when a heartbeat digest disagreed with Hash and
	// cleared by the next accepted report or matching digest.
	DigestMismatch bool
}

// StatusUpdate is one report from an agent.
type StatusUpdate struct {
	ConsumerName       string
	BundleID           string
	AgentEpoch         string
	AgentRevision      int64
	ObservedGeneration int64
	Reported           api.ReportedStatus
	Hash               string
	// SequenceID is minted by the caller (ingest) for the accepted status.
	SequenceID string
	// Deleted reports that the agent finished removing the bundle; the store
	// purges the bundle if it is marked deleting and the generation matches.
	Deleted bool
	At      time.Time
}

// StatusResult tells what ApplyStatus did.
type StatusResult int

const (
	StatusAccepted  StatusResult = iota // stored as a new revision
	StatusConfirmed                     // same content: only ConfirmedAt moved
	StatusStale                         // older revision or foreign epoch: ignored
	StatusPurged                        // bundle deletion completed and the row removed
	StatusUnknown                       // no such bundle (or it belongs to another consumer)
)

// OutboxOp is what an outbox event asks the agent to do.
type OutboxOp string

const (
	OpUpsert OutboxOp = "upsert"
	OpDelete OutboxOp = "delete"
	// OpOrphan tells the agent to drop a bundle that was finalized without
	// it (OrphanBundle): its records go, its objects stay.
	OpOrphan OutboxOp = "orphan"
)

// OutboxQuery selects pending events of one consumer: with Op set only
// events of that operation, with AfterSeq only those after it, at most
// Limit (<= 0: all), in sequence order.
type OutboxQuery struct {
	Consumer string
	Op       OutboxOp
	AfterSeq int64
	Limit    int
}

// Orphan is a bundle finalized without its agent (DELETE …?orphan=true,
// or its consumer decommissioned). Until its agent confirms, the store
// remembers it so that the agent, when it returns holding the bundle, is
// told to drop it and leave its objects in place instead of deleting them.
type Orphan struct {
	BundleID     string
	ConsumerName string
	// Generation is the one the agent is told to drop the bundle at: above
	// every generation the bundle had.
	Generation int64
	At         time.Time
}

// Decommission records a consumer removed with DecommissionConsumer: its
// agent, should it connect again, is refused with an error that says when.
type Decommission struct {
	Name       string
	ConsumerID string
	Bundles    int // bundles finalized with it
	At         time.Time
}

// OutboxEvent is one pending spec delivery.
type OutboxEvent struct {
	Seq          int64
	ConsumerName string
	BundleID     string
	Generation   int64
	Op           OutboxOp
	CreatedAt    time.Time
	// Attempts and LastSentAt are bookkeeping for redelivery.
	Attempts   int
	LastSentAt *time.Time
}

// Change is one entry of the global change log, for watchers.
type Change struct {
	Seq      int64
	BundleID string
	Consumer string
	Source   string
	Type     ChangeType
	// At is when the change was logged; only set by history reads
	// (sqlstore's BundleHistory), zero from ChangesSince.
	At time.Time
}

// ChangeType classifies a change.
type ChangeType string

const (
	ChangeCreated ChangeType = "ADDED"
	ChangeUpdated ChangeType = "MODIFIED" // spec or status
	ChangeDeleted ChangeType = "DELETED"  // purged
)

// ListOptions select, order and page a list. Page counts from 1.
type ListOptions struct {
	Page    int
	Size    int
	Filter  Filter // nil: everything
	OrderBy []Order
}

// Order is one ORDER BY term; Field is a filterable field name.
type Order struct {
	Field string
	Desc  bool
}

// Filter is a parsed search expression. Fields are the names the REST
// search language uses: id, name, consumer_name, source, created_at,
// updated_at, and labels.<key> (bundle metadata labels, or consumer labels).
// Implementations map them through a whitelist and bind every value as a
// query parameter; an unknown field is ErrInvalid.
type Filter interface{ isFilter() }

// Cmp compares a field with values. Op is one of "=", "!=", "like",
// "not like", "in", "not in"; only in/not in take more than one value.
// OpExists (labels.<key> only, no values) tests that the label is present;
// otherwise a missing label reads as the empty string.
type Cmp struct {
	Field  string
	Op     string
	Values []string
}

// OpExists is the operator of a label presence test.
const OpExists = "exists"

// And and Or combine filters.
type And []Filter
type Or []Filter

// Not negates a filter.
type Not struct{ F Filter }

func (Cmp) isFilter() {}
func (And) isFilter() {}
func (Or) isFilter()  {}
func (Not) isFilter() {}

// Lease is a named, expiring claim in the store: a replica's liveness, the
// one agent session serving a consumer, a duty run by one replica of the
// cluster. Holder names who claims it (a replica id, an agent's identity);
// Session names the claim's current incarnation (a replica's session, the
// replica serving an agent's connection). Contender is the last holder that
// was refused while the lease was held, and ContendedAt when.
type Lease struct {
	Name        string
	Holder      string
	Session     string
	AcquiredAt  time.Time
	ExpiresAt   time.Time
	Contender   string
	ContendedAt time.Time
}

// LeaseRequest asks for lease Name for (Holder, Session) until TTL from now.
type LeaseRequest struct {
	Name, Holder, Session string
	TTL                   time.Duration
	// Renew only extends a lease held by exactly (Holder, Session) (or
	// takes it if nobody holds it); without Renew the lease is also taken
	// when it expired, and moves to Session when Holder already holds it.
	Renew bool
}

// Leases is the one lease mechanism every rule of "who does this" uses.
// Times are the store's clock.
type Leases interface {
	// AcquireLease takes or renews a lease under LeaseRequest's rule. When
	// it is refused, the request's Holder is recorded as the lease's
	// contender and the current lease is returned with ok false. A lease
	// taken by its contender forgets the contender.
	AcquireLease(ctx context.Context, r LeaseRequest) (l Lease, ok bool, err error)
	// ReleaseLease gives up a lease held by (holder, session); otherwise it
	// does nothing.
	ReleaseLease(ctx context.Context, name, holder, session string) error
	// ListLeases returns the unexpired leases whose name starts with prefix, by name.
	ListLeases(ctx context.Context, prefix string) ([]Lease, error)
}

// Page is one page of a list and the total number of matches.
type Page[T any] struct {
	Items []T
	Total int
}

// Store is the durable state of a baton server. All methods are safe for
// concurrent use. Errors wrap ErrNotFound, ErrConflict or ErrInvalid where a
// caller may branch; anything else is an internal failure.
type Store interface {
	// CreateConsumer stores c (ID is generated when empty). A taken name is ErrConflict.
	CreateConsumer(ctx context.Context, c Consumer) (Consumer, error)
	// GetConsumer finds a consumer by id or by name.
	GetConsumer(ctx context.Context, idOrName string) (Consumer, error)
	ListConsumers(ctx context.Context, opts ListOptions) (Page[Consumer], error)
	// StreamConsumers is StreamBundles for consumers.
	StreamConsumers(ctx context.Context, opts ListOptions, start func(total, n int) error, each func(*Consumer) error) error
	// UpdateConsumerLabels replaces the labels.
	UpdateConsumerLabels(ctx context.Context, id string, labels map[string]string) (Consumer, error)
	// DeleteConsumer removes a consumer; ErrConflict while it has bundles.
	DeleteConsumer(ctx context.Context, id string) error

	// CreateBundle stores a new bundle at the next generation of its id and
	// writes an OpUpsert outbox event in the same transaction. An existing
	// (not purged) id is ErrConflict; an unknown consumer is ErrNotFound.
	CreateBundle(ctx context.Context, b Bundle) (Bundle, error)
	// UpdateBundle replaces meta and spec, bumps the generation and writes an
	// outbox event. expectedGeneration 0 means "whatever is current";
	// otherwise a mismatch is ErrConflict. A bundle marked deleting is ErrConflict.
	UpdateBundle(ctx context.Context, b Bundle, expectedGeneration int64) (Bundle, error)
	GetBundle(ctx context.Context, id string) (Bundle, error)
	ListBundles(ctx context.Context, opts ListOptions) (Page[Bundle], error)
	// StreamBundles reads the page ListBundles would return without
	// holding it: start gets the total matches and the number n of bundles
	// that follow, then each gets them one by one, in order (each bundle
	// is the callee's to keep). Count and rows come from one snapshot, so
	// exactly n follow. The memory used does not grow with the page size;
	// while each blocks no further rows are read, and a read transaction
	// stays open until the last one. An error from start or each stops the
	// read and is returned as it is.
	StreamBundles(ctx context.Context, opts ListOptions, start func(total, n int) error, each func(*Bundle) error) error
	// ListBundlesByConsumer returns every bundle of a consumer, deleting ones included.
	ListBundlesByConsumer(ctx context.Context, consumer string) ([]Bundle, error)
	// DeleteBundle marks the bundle deleting, bumps its generation and writes
	// an OpDelete outbox event. Deleting twice is a no-op.
	DeleteBundle(ctx context.Context, id string) (Bundle, error)
	// PurgeBundle removes a bundle marked deleting once the agent confirmed
	// removal at generation >= the delete's generation.
	PurgeBundle(ctx context.Context, id string, generation int64) error

	// ApplyStatus stores an agent report under the ordering rules above.
	ApplyStatus(ctx context.Context, u StatusUpdate) (StatusResult, Bundle, error)
	// ConfirmStatus records that the agent's digest for a bundle matched (or
	// did not match) the stored hash at time at.
	ConfirmStatus(ctx context.Context, consumer, bundleID, hash string, at time.Time) (match bool, err error)
	// ConfirmStatuses is ConfirmStatus for a whole digest (bundle id ->
	// hash) of one consumer, in one transaction (or a few, for a very large
	// digest): every bundle of the consumer whose stored hash equals its
	// digest entry is confirmed at at, every other one is marked
	// DigestMismatch, exactly as ConfirmStatus would. It returns the ids
	// whose hash differs. Ids the store does not hold for this consumer are
	// neither confirmed nor returned (the caller handles them separately).
	ConfirmStatuses(ctx context.Context, consumer string, digest map[string]string, at time.Time) (mismatched []string, err error)

	// PendingOutbox returns up to limit unacknowledged events of a consumer
	// in sequence order.
	PendingOutbox(ctx context.Context, consumer string, limit int) ([]OutboxEvent, error)
	// MarkSent records a delivery attempt.
	MarkSent(ctx context.Context, seqs []int64, at time.Time) error
	// AckOutbox acknowledges every event of the bundle with generation <= generation.
	AckOutbox(ctx context.Context, consumer, bundleID string, generation int64) error
	// PendingOutboxQuery is PendingOutbox selected by q (one operation,
	// after a sequence), so a reader can visit creates and deletes fairly.
	PendingOutboxQuery(ctx context.Context, q OutboxQuery) ([]OutboxEvent, error)
	// ConsumersWithPending lists consumers that have unacknowledged events.
	ConsumersWithPending(ctx context.Context) ([]string, error)

	// OrphanBundle finalizes a bundle in any state without its agent: the
	// bundle is removed (a ChangeDeleted is logged, as for a confirmed
	// delete), an Orphan is recorded at a new generation and an OpOrphan
	// event queued for the agent. It returns the bundle as it was, with
	// the Orphan's generation. An unknown id is ErrNotFound.
	OrphanBundle(ctx context.Context, id string) (Bundle, error)
	// DecommissionConsumer removes a consumer with every bundle it has
	// (pending, applied, deleting): each is finalized as by OrphanBundle
	// (no events are queued: the agent is refused from now on), and a
	// Decommission is recorded. Creating a consumer of the same name
	// clears the Decommission; the Orphans stay, so a returning agent
	// keeps the objects.
	DecommissionConsumer(ctx context.Context, idOrName string) (Decommission, error)
	// Decommissioned returns the Decommission of a consumer name;
	// ErrNotFound when it has none.
	Decommissioned(ctx context.Context, name string) (Decommission, error)
	// Orphans lists the Orphans of a consumer, by bundle id.
	Orphans(ctx context.Context, consumer string) ([]Orphan, error)
	// ForgetOrphan removes the Orphan of a bundle at generation <= gen and
	// its outbox events: the agent dropped it or does not hold it.
	ForgetOrphan(ctx context.Context, consumer, bundleID string, gen int64) error

	// SetAgentState records connection, epoch and heartbeat of a consumer's
	// agent. A disconnect (Connected false) with a ServerID applies only
	// while the stored ServerID is the same: a replica disconnects only
	// agents still recorded with it (or with the dead replica it names).
	SetAgentState(ctx context.Context, consumer string, s AgentState) error

	// ChangesSince returns up to limit changes with Seq > seq, in order.
	ChangesSince(ctx context.Context, seq int64, limit int) ([]Change, error)
	// LatestChange returns the highest change sequence value.
	LatestChange(ctx context.Context) (int64, error)

	// Ping checks the database is reachable.
	Ping(ctx context.Context) error
	Close() error
}

// Version is what sources and REST clients see as the bundle's version
// (Maestro's "version", the CloudEvents resourceversion): generations
// counted from 1 within this life of the bundle, so that a work deleted and
// created again under the same id starts at 1 as it does in Maestro, while
// the generation an agent sees goes on (DESIGN I4).
func (b *Bundle) Version() int64 { return b.VersionOf(b.Generation) }

// VersionOf is the version generation g of this bundle shows as; a
// generation of an earlier life of the bundle shows as 0.
func (b *Bundle) VersionOf(g int64) int64 {
	if b.FirstGeneration <= 1 {
		return g
	}
	if g < b.FirstGeneration {
		return 0
	}
	return g - b.FirstGeneration + 1
}

// GenerationOf is the generation version v of this bundle stands for (0
// stays 0: "whatever is current").
func (b *Bundle) GenerationOf(v int64) int64 {
	if v <= 0 || b.FirstGeneration <= 1 {
		return v
	}
	return v + b.FirstGeneration - 1
}

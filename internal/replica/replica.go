// Package replica gives a baton server process its place among the
// replicas that share one database: a unique id, a liveness lease renewed
// in the store, and the cluster-wide duties (freshness metrics, change-log
// pruning) that exactly one live replica runs at a time.
//
// Every rule is a store lease (store.Leases), so the database decides and
// replicas need no other coordination:
//
//	replica/<id>   held by each live replica; a replica that stops renewing
//	               it for TTL is gone (its agents are disconnected by the
//	               others, and reconnect elsewhere).
//	duty/cluster   held by one live replica, which runs the cluster duties.
//
// The single SQLite replica holds both at once, so it behaves as before.
package replica

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/baton-dev/baton/internal/store"
)

// Lease names.
const (
	replicaPrefix = "replica/"
	dutyLease     = "duty/cluster"
)

// DefaultTTL is how long a replica's lease lasts without renewal; it is
// renewed every TTL/3.
const DefaultTTL = 6 * time.Second

// DefaultID is the host name (the pod name in Kubernetes) and a random
// suffix, so that replicas on one host and a restarted replica never share
// an id.
func DefaultID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "baton"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// ValidateID checks an id given with --server-id.
func ValidateID(id string) error {
	if id == "" || len(id) > 128 || strings.ContainsAny(id, "/ \t\n") {
		return fmt.Errorf("server id %q: want 1-128 characters without '/' or spaces", id)
	}
	return nil
}

// Replica is this process's membership. Start keeps its leases.
type Replica struct {
	id string
	// session tells this process from another one given the same id.
	session string
	ls      store.Leases
	ttl     time.Duration
	clock   clock.WithTicker
	log     *slog.Logger

	mu        sync.Mutex
	heldUntil time.Time // replica lease, as last renewed
	leadUntil time.Time // duty lease
	lastErr   error
	started   bool
}

// Option configures a Replica.
type Option func(*Replica)

// WithTTL sets the lease TTL (default DefaultTTL).
func WithTTL(d time.Duration) Option { return func(r *Replica) { r.ttl = d } }

// WithClock sets the clock.
func WithClock(c clock.WithTicker) Option { return func(r *Replica) { r.clock = c } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(r *Replica) { r.log = l } }

// New returns the membership of replica id (see DefaultID) in ls.
func New(ls store.Leases, id string, opts ...Option) *Replica {
	var b [8]byte
	_, _ = rand.Read(b[:])
	r := &Replica{id: id, session: hex.EncodeToString(b[:]), ls: ls, ttl: DefaultTTL, clock: clock.RealClock{}, log: slog.Default()}
	for _, o := range opts {
		o(r)
	}
	return r
}

// ID is this replica's id.
func (r *Replica) ID() string { return r.id }

// TTL is the lease TTL.
func (r *Replica) TTL() time.Duration { return r.ttl }

// Start takes the leases and renews them every TTL/3 until ctx ends, then
// releases them so that the others take over at once.
func (r *Replica) Start(ctx context.Context) error {
	t := r.clock.NewTicker(max(r.ttl/3, 10*time.Millisecond))
	defer t.Stop()
	r.log.Info("replica: starting", "id", r.id, "ttl", r.ttl)
	for {
		r.renew(ctx)
		select {
		case <-ctx.Done():
			r.release()
			return nil
		case <-t.C():
		}
	}
}

// Renew takes or renews the leases once; Start calls it, tests may too.
func (r *Replica) renew(ctx context.Context) {
	now := r.clock.Now()
	r.mu.Lock()
	renew := r.started // the first call takes the lease over from an earlier process of this id
	r.mu.Unlock()
	_, ok, err := r.ls.AcquireLease(ctx, store.LeaseRequest{Name: replicaPrefix + r.id, Holder: r.id, Session: r.session, TTL: r.ttl, Renew: renew})
	var lead bool
	var duty store.Lease
	if err == nil && ok {
		duty, lead, err = r.ls.AcquireLease(ctx, store.LeaseRequest{Name: dutyLease, Holder: r.id, Session: r.session, TTL: r.ttl})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil && (r.lastErr == nil || r.lastErr.Error() != err.Error()) {
			r.log.Warn("replica: renew lease", "id", r.id, "err", err)
		}
		r.lastErr = err
		return
	}
	r.lastErr = nil
	if !ok {
		// Only a second process given the same --server-id gets here.
		r.heldUntil, r.leadUntil = time.Time{}, time.Time{}
		r.lastErr = fmt.Errorf("replica lease %s%s is held by another process", replicaPrefix, r.id)
		return
	}
	was := r.leadUntil.After(now)
	r.heldUntil = now.Add(r.ttl)
	if lead {
		r.leadUntil = now.Add(r.ttl)
	} else {
		r.leadUntil = time.Time{}
	}
	if lead != was || !r.started {
		r.log.Info("replica: cluster duties", "id", r.id, "leading", lead, "leader", duty.Holder)
	}
	r.started = true
}

func (r *Replica) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := errors.Join(r.ls.ReleaseLease(ctx, dutyLease, r.id, r.session),
		r.ls.ReleaseLease(ctx, replicaPrefix+r.id, r.id, r.session))
	if err != nil {
		r.log.Warn("replica: release leases", "id", r.id, "err", err)
	}
	r.mu.Lock()
	r.heldUntil, r.leadUntil = time.Time{}, time.Time{}
	r.mu.Unlock()
	r.log.Info("replica: left the cluster", "id", r.id)
}

// Ready returns nil while the replica lease is held.
func (r *Replica) Ready() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.clock.Now().Before(r.heldUntil) {
		return nil
	}
	if r.lastErr != nil {
		return fmt.Errorf("replica lease not held: %w", r.lastErr)
	}
	return errors.New("replica lease not held yet")
}

// Leading reports whether this replica runs the cluster duties now.
func (r *Replica) Leading() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.clock.Now().Before(r.leadUntil)
}

// Live returns the ids of the replicas whose lease is unexpired.
func (r *Replica) Live(ctx context.Context) (map[string]bool, error) {
	ls, err := r.ls.ListLeases(ctx, replicaPrefix)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(ls))
	for _, l := range ls {
		out[strings.TrimPrefix(l.Name, replicaPrefix)] = true
	}
	return out, nil
}

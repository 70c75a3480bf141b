package report

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/baton-dev/baton/internal/evaluate"
	"github.com/baton-dev/baton/internal/protocol"
)

// Start runs the reporter until ctx ends, then returns nil. It sends the
// reports that are due, re-sends unacked ones, and emits heartbeats. Only
// one Start may run at a time.
func (r *Reporter) Start(ctx context.Context) error {
	r.mu.Lock()
	if r.nextHeartbeat.IsZero() {
		r.nextHeartbeat = r.clock.Now().Add(r.heartbeat)
	}
	r.mu.Unlock()
	for {
		next := r.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		d := next.Sub(r.clock.Now())
		if d <= 0 {
			continue
		}
		t := r.clock.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-r.wake:
			t.Stop()
		case <-t.C():
		}
	}
}

// runOnce does all work due now and returns when it must run next.
func (r *Reporter) runOnce(ctx context.Context) time.Time {
	statuses, beats := r.due()
	for _, s := range statuses {
		if !r.sendStatus(ctx, s) {
			break
		}
	}
	for _, hb := range beats {
		if err := r.sender.Send(ctx, hb); err != nil {
			r.stats.sendErrors.Add(1)
			r.log.Debug("heartbeat not sent", "err", err)
			break
		}
		r.stats.heartbeats.Add(1)
	}
	return r.nextDue()
}

// due turns ripe changes into reports and collects what must be sent now:
// unacked reports (in revision order) and, when it is time, heartbeats.
func (r *Reporter) due() ([]protocol.Status, []protocol.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	// A heartbeat's digest carries every bundle's latest state; changes
	// still in their coalescing window are reported first, in the same
	// ordered stream, so the server never sees a digest ahead of the
	// statuses it describes (that would flag a false DigestMismatch).
	beat := !now.Before(r.nextHeartbeat)
	for id := range r.dirty {
		if e := r.bundles[id]; beat || !now.Before(e.dirtySince.Add(r.coalesce)) {
			delete(r.dirty, id)
			r.report(id, e, now)
		}
	}
	var out []protocol.Status
	if !now.Before(r.pausedUntil) {
		for id := range r.unacked {
			if e := r.bundles[id]; e.sentAt.IsZero() || !now.Before(e.sentAt.Add(r.resend)) {
				out = append(out, *e.pending)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Revision < out[j].Revision })
	var beats []protocol.Message
	if beat {
		r.nextHeartbeat = now.Add(r.heartbeat)
		beats = r.heartbeats(now)
		for id, ts := range r.tombstones {
			if now.Sub(ts.at) > tombstoneTTL {
				delete(r.tombstones, id)
			}
		}
	}
	return out, beats
}

// sendStatus sends one report and records the outcome; false means the
// link failed and sending pauses for the resend timeout. A report the
// transport refuses as too large concerns its bundle only (tooLarge).
func (r *Reporter) sendStatus(ctx context.Context, s protocol.Status) bool {
	err := r.sender.Send(ctx, protocol.Message{Type: protocol.TypeStatus, Consumer: r.consumer, Status: &s})
	now := r.clock.Now()
	if errors.Is(err, protocol.ErrTooLarge) {
		r.tooLarge(s, err, now)
		return true
	}
	r.mu.Lock()
	e := r.bundles[s.BundleID]
	current := e != nil && e.pending != nil && e.pending.Revision == s.Revision
	resend := current && e.sends > 0
	if current {
		e.sentAt = now
		if err == nil {
			e.sends++
		}
	}
	if err != nil {
		r.pausedUntil = now.Add(r.resend)
	}
	r.mu.Unlock()
	if err != nil {
		r.stats.sendErrors.Add(1)
		r.log.Debug("status not sent", "bundle", s.BundleID, "revision", s.Revision, "err", err)
		return false
	}
	if resend {
		r.stats.resent.Add(1)
	} else {
		r.stats.sent.Add(1)
	}
	if r.onSent != nil {
		r.onSent(SentEvent{BundleID: s.BundleID, Revision: s.Revision, Hash: s.Hash, Deleted: s.Deleted, Resend: resend, At: now})
	}
	return true
}

// nextDue is the earliest time runOnce has work.
func (r *Reporter) nextDue() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := r.nextHeartbeat
	earlier := func(t time.Time) {
		if t.Before(next) {
			next = t
		}
	}
	for id := range r.dirty {
		earlier(r.bundles[id].dirtySince.Add(r.coalesce))
	}
	for id := range r.unacked {
		e := r.bundles[id]
		t := e.sentAt.Add(r.resend)
		if e.sentAt.IsZero() {
			t = e.pending.At
		}
		if t.Before(r.pausedUntil) {
			t = r.pausedUntil
		}
		earlier(t)
	}
	return next
}

// tooLarge handles a report the transport cannot carry: the bundle's state
// is replaced by its fallback (evaluate.Fallback: conditions that say so,
// per-object feedback left out; then conditions only) and reported as a
// new revision at once. Every other bundle keeps flowing (DESIGN fact 9).
// A fallback still too large waits the resend timeout, for this bundle only.
func (r *Reporter) tooLarge(s protocol.Status, err error, now time.Time) {
	r.stats.sendErrors.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.bundles[s.BundleID]
	if e == nil || e.pending == nil || e.pending.Revision != s.Revision {
		return
	}
	if e.deleted || e.level >= 2 {
		e.sentAt = now
		r.log.Error("status too large for the transport even without per-object status; retrying", "bundle", s.BundleID, "err", err)
		return
	}
	if e.tooLarge == "" {
		e.tooLarge = e.hash
	}
	e.level++
	r.log.Warn("status too large for the transport; reporting its conditions only", "bundle", s.BundleID, "level", e.level, "err", err)
	e.st = evaluate.Fallback(e.st, e.level, err.Error())
	e.hash = protocol.HashStatus(e.st)
	r.report(s.BundleID, e, now)
	r.signal()
}

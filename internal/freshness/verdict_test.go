package freshness

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/pkg/api"
)

func TestVerdict(t *testing.T) {
	now := time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	const hb = 30 * time.Second
	live := store.Consumer{Name: "c1", Agent: store.AgentState{Connected: true, Epoch: "e", LastHeartbeat: ago(5 * time.Second)}}
	// reported is a bundle at generation 2 whose status for generation 2
	// was confirmed 3 s ago.
	reported := store.Bundle{ID: "b1", Generation: 2, CreatedAt: ago(time.Hour), UpdatedAt: ago(time.Minute),
		Status: store.Status{ObservedGeneration: 2, Revision: 4, ConfirmedAt: ago(3 * time.Second)}}
	with := func(f func(*store.Bundle)) store.Bundle { b := reported; f(&b); return b }
	ptr := func(t time.Time) *time.Time { return &t }

	tests := map[string]struct {
		c       store.Consumer
		b       store.Bundle
		pending *time.Time
		reason  string // "" means Fresh
		age     float64
	}{
		"fresh": {c: live, b: reported, age: 3},
		"agent not connected": {
			c: store.Consumer{Agent: store.AgentState{Connected: false, LastHeartbeat: ago(time.Second)}},
			b: reported, reason: api.ReasonAgentDisconnected, age: 3,
		},
		"heartbeat too old": {
			c: store.Consumer{Agent: store.AgentState{Connected: true, LastHeartbeat: ago(31 * time.Second)}},
			b: reported, reason: api.ReasonAgentDisconnected, age: 3,
		},
		"never heartbeated": {
			c: store.Consumer{Agent: store.AgentState{Connected: true}}, b: reported, reason: api.ReasonAgentDisconnected, age: 3,
		},
		"never reported": {
			c:      live,
			b:      store.Bundle{Generation: 1, CreatedAt: ago(2 * time.Second), UpdatedAt: ago(2 * time.Second)},
			reason: api.ReasonNotDelivered, age: 2,
		},
		"new generation within grace": {
			c: live, b: with(func(b *store.Bundle) { b.Generation = 3 }), pending: ptr(ago(5 * time.Second)), age: 3,
		},
		"new generation past grace": {
			c: live, b: with(func(b *store.Bundle) { b.Generation = 3 }), pending: ptr(ago(11 * time.Second)),
			reason: api.ReasonNotDelivered, age: 3,
		},
		"new generation past grace by UpdatedAt": {
			c: live, b: with(func(b *store.Bundle) { b.Generation = 3 }), reason: api.ReasonNotDelivered, age: 3,
		},
		"digest mismatch": {
			c: live, b: with(func(b *store.Bundle) { b.Status.DigestMismatch = true }), reason: api.ReasonDigestMismatch, age: 3,
		},
		"no confirmation within the heartbeat timeout": {
			c: live, b: with(func(b *store.Bundle) { b.Status.ConfirmedAt = ago(45 * time.Second) }),
			reason: api.ReasonNoReportSince, age: 45,
		},
		"entries unconfirmed": {
			c: live, b: with(func(b *store.Bundle) { b.Status.Reported = unconfirmedReport(api.ReasonForbidden) }),
			reason: api.ReasonObservationFailed, age: 3,
		},
		"unconfirmed wins over digest mismatch and no report": {
			c: live, b: with(func(b *store.Bundle) {
				b.Status.Reported = unconfirmedReport(api.ReasonClusterUnreachable)
				b.Status.DigestMismatch, b.Status.ConfirmedAt = true, ago(45*time.Second)
			}),
			reason: api.ReasonObservationFailed, age: 45,
		},
		"feedback unknown for another reason is not an observation failure": {
			c: live, b: with(func(b *store.Bundle) { b.Status.Reported = unconfirmedReport("NoValue") }), age: 3,
		},
		"disconnected wins over unconfirmed": {
			c: store.Consumer{}, b: with(func(b *store.Bundle) { b.Status.Reported = unconfirmedReport(api.ReasonForbidden) }),
			reason: api.ReasonAgentDisconnected, age: 3,
		},
		"disconnected wins over digest mismatch": {
			c: store.Consumer{}, b: with(func(b *store.Bundle) { b.Status.DigestMismatch = true }),
			reason: api.ReasonAgentDisconnected, age: 3,
		},
		"status too large for the transport": {
			c: live, b: with(func(b *store.Bundle) { b.Status.Reported = tooLargeReport(api.ReasonStatusTooLarge) }),
			reason: api.ReasonStatusTooLarge, age: 3,
		},
		"feedback truncated is Fresh": {
			c: live, b: with(func(b *store.Bundle) { b.Status.Reported = tooLargeReport("FeedbackTruncated") }), age: 3,
		},
		"no report wins over too large": {
			c: live, b: with(func(b *store.Bundle) {
				b.Status.Reported = tooLargeReport(api.ReasonStatusTooLarge)
				b.Status.ConfirmedAt = ago(45 * time.Second)
			}),
			reason: api.ReasonNoReportSince, age: 45,
		},
		"not delivered wins over digest mismatch": {
			c: live, b: with(func(b *store.Bundle) { b.Generation = 3; b.Status.DigestMismatch = true }),
			reason: api.ReasonNotDelivered, age: 3,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := Verdict(now, tc.c, tc.b, tc.pending, hb)
			wantState := api.FreshnessFresh
			if tc.reason != "" {
				wantState = api.FreshnessStale
			}
			if f.State != wantState || f.Reason != tc.reason {
				t.Errorf("got %s/%s; want %s/%s", f.State, f.Reason, wantState, tc.reason)
			}
			if f.AgeSeconds != tc.age {
				t.Errorf("age: got %v; want %v", f.AgeSeconds, tc.age)
			}
			if tc.b.Status.ConfirmedAt.IsZero() != (f.ConfirmedAt == nil) ||
				(f.ConfirmedAt != nil && !f.ConfirmedAt.Equal(tc.b.Status.ConfirmedAt)) {
				t.Errorf("confirmedAt: got %v; want %v", f.ConfirmedAt, tc.b.Status.ConfirmedAt)
			}
		})
	}
}

// unconfirmedReport is a status with one confirmed entry and one whose
// StatusFeedbackSynced is Unknown with reason.
func unconfirmedReport(reason string) api.ReportedStatus {
	ok := api.ResourceStatus{Conditions: []metav1.Condition{{Type: api.ConditionStatusFeedbackSynced, Status: metav1.ConditionTrue, Reason: "StatusFeedbackSynced"}}}
	cut := api.ResourceStatus{Conditions: []metav1.Condition{{Type: api.ConditionStatusFeedbackSynced, Status: metav1.ConditionUnknown, Reason: reason}}}
	return api.ReportedStatus{ResourceStatus: []api.ResourceStatus{ok, cut}}
}

// tooLargeReport is a status whose bundle condition StatusFeedbackSynced is
// False with reason.
func tooLargeReport(reason string) api.ReportedStatus {
	return api.ReportedStatus{Conditions: []metav1.Condition{{Type: api.ConditionStatusFeedbackSynced,
		Status: metav1.ConditionFalse, Reason: reason}}}
}

package evaluate

import (
	"encoding/json"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/pkg/api"
)

// Reasons of cut statuses.
const (
	// ReasonFeedbackTruncated: feedback values were left out to keep the
	// status within its size limits (Bound).
	ReasonFeedbackTruncated = "FeedbackTruncated"
	// ReasonStatusTooLarge: the transport refused the status even so; the
	// agent reported only conditions (the reporter's fallback).
	// The verdict of such a bundle is Stale with the same reason.
	ReasonStatusTooLarge = api.ReasonStatusTooLarge
)

// Message lengths kept when a status is cut.
const (
	cutBundleMessage = 4 << 10
	cutEntryMessage  = 1 << 10
)

// Bound keeps a reported status within limits.StatusEntryBytes per
// object and limits.StatusBytes per bundle (as JSON), so that it fits any
// transport. What it cuts it says: an entry over its limit loses feedback
// values from the last one on, and its StatusFeedbackSynced condition
// turns False with reason FeedbackTruncated naming how many values and
// the limit. A bundle over its limit has long condition messages
// shortened, then the entries with the most feedback lose all their
// values the same way, and the bundle gains a StatusFeedbackSynced=False
// condition (FeedbackTruncated) naming the entries cut. It reports
// whether anything was cut. The result depends only on st.
func Bound(st api.ReportedStatus) (api.ReportedStatus, bool) {
	return bound(st, limits.StatusEntryBytes, limits.StatusBytes)
}

func bound(st api.ReportedStatus, entryMax, totalMax int) (api.ReportedStatus, bool) {
	cut := false
	var out []api.ResourceStatus
	sizes := make([]int, len(st.ResourceStatus))
	for i := range st.ResourceStatus {
		e := st.ResourceStatus[i]
		if n := jsonSize(e); n > entryMax {
			if out == nil {
				out = append([]api.ResourceStatus(nil), st.ResourceStatus...)
			}
			e = cutEntry(e, entryMax, fmt.Sprintf("the object's status is %d bytes; the limit is %s per object", n, limits.Human(entryMax)))
			out[i], cut = e, true
		}
		sizes[i] = jsonSize(e)
	}
	if out != nil {
		st.ResourceStatus = out
	}
	total := jsonSize(st)
	if total <= totalMax {
		return withTruncated(st, cut, nil, totalMax), cut
	}
	// Over the bundle's limit: shorten messages, then drop the values of
	// the largest entries until it fits.
	st.ResourceStatus = append([]api.ResourceStatus(nil), st.ResourceStatus...)
	st.Conditions = shorten(st.Conditions, cutBundleMessage)
	for i := range st.ResourceStatus {
		st.ResourceStatus[i].Conditions = shorten(st.ResourceStatus[i].Conditions, cutEntryMessage)
	}
	var names []string
	for total = jsonSize(st); total > totalMax; total = jsonSize(st) {
		i := largestWithValues(st.ResourceStatus)
		if i < 0 {
			break // conditions alone are too large: the reporter's fallback handles it
		}
		e := st.ResourceStatus[i]
		st.ResourceStatus[i] = cutEntry(e, 0, fmt.Sprintf("the bundle's status was over its limit of %s", limits.Human(totalMax)))
		names = append(names, describeMeta(e.ResourceMeta))
	}
	return withTruncated(st, true, names, totalMax), true
}

// cutEntry drops feedback values from the last one on until the entry's
// JSON is at most max bytes (max 0: all of them) and marks the entry.
func cutEntry(e api.ResourceStatus, max int, why string) api.ResourceStatus {
	e.Conditions = shorten(e.Conditions, cutEntryMessage)
	all := e.StatusFeedbacks.Values
	// Keep values from the first on while they fit, with room for the
	// condition that says what was cut.
	used := jsonSize(api.ResourceStatus{ResourceMeta: e.ResourceMeta, Conditions: e.Conditions, Observed: e.Observed}) + 512
	n := 0
	for max > 0 && n < len(all) {
		v := jsonSize(all[n]) + 1
		if used+v > max {
			break
		}
		used += v
		n++
	}
	dropped := len(all) - n
	if n == 0 {
		all = nil
	}
	e.StatusFeedbacks.Values = all[:n:n]
	msg := fmt.Sprintf("%d feedback values left out: %s", dropped, why)
	setCondition(&e.Conditions, metav1.Condition{Type: api.ConditionStatusFeedbackSynced, Status: metav1.ConditionFalse,
		Reason: ReasonFeedbackTruncated, Message: msg})
	return e
}

// withTruncated adds the bundle condition saying values were cut.
func withTruncated(st api.ReportedStatus, cut bool, names []string, totalMax int) api.ReportedStatus {
	if !cut {
		return st
	}
	msg := "feedback values of some objects were left out to keep the status within its size limits; see their StatusFeedbackSynced conditions"
	if len(names) > 0 {
		msg = fmt.Sprintf("the bundle's status was over its limit of %s; feedback values left out for %d objects (first: %s)",
			limits.Human(totalMax), len(names), names[0])
	}
	conds := append([]metav1.Condition(nil), st.Conditions...)
	setCondition(&conds, metav1.Condition{Type: api.ConditionStatusFeedbackSynced, Status: metav1.ConditionFalse,
		Reason: ReasonFeedbackTruncated, Message: msg, LastTransitionTime: metav1.NewTime(latest(conds))})
	st.Conditions = conds
	return st
}

// setCondition replaces the condition of c's type (keeping its
// lastTransitionTime when the status is unchanged) or appends c.
func setCondition(conds *[]metav1.Condition, c metav1.Condition) {
	out := append([]metav1.Condition(nil), *conds...)
	for i := range out {
		if out[i].Type == c.Type {
			c.ObservedGeneration = out[i].ObservedGeneration
			if c.LastTransitionTime.IsZero() || out[i].Status == c.Status {
				c.LastTransitionTime = out[i].LastTransitionTime
			}
			out[i] = c
			*conds = out
			return
		}
	}
	if c.LastTransitionTime.IsZero() {
		c.LastTransitionTime = metav1.NewTime(latest(out))
	}
	*conds = append(out, c)
}

func shorten(conds []metav1.Condition, n int) []metav1.Condition {
	var out []metav1.Condition
	for i, c := range conds {
		if len(c.Message) > n {
			if out == nil {
				out = append([]metav1.Condition(nil), conds...)
			}
			out[i].Message = c.Message[:n] + " …(cut)"
		}
	}
	if out == nil {
		return conds
	}
	return out
}

func largestWithValues(es []api.ResourceStatus) int {
	best, size := -1, 0
	for i, e := range es {
		if len(e.StatusFeedbacks.Values) == 0 {
			continue
		}
		if n := jsonSize(e.StatusFeedbacks); n > size {
			best, size = i, n
		}
	}
	return best
}

func latest(conds []metav1.Condition) time.Time {
	var t time.Time
	for _, c := range conds {
		if c.LastTransitionTime.After(t) {
			t = c.LastTransitionTime.Time
		}
	}
	return t
}

func describeMeta(m workv1.ManifestResourceMeta) string {
	if m.Namespace != "" {
		return m.Kind + " " + m.Namespace + "/" + m.Name
	}
	return m.Kind + " " + m.Name
}

func jsonSize(v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return 0
	}
	return len(b)
}

// Fallback is what the agent reports when the transport refused a status
// as too large (why says how): at level 1 the bundle's conditions and each
// object's identity and conditions, without feedback values; at level 2
// the bundle's conditions only. Either way a StatusFeedbackSynced=False
// condition with reason StatusTooLarge says so.
func Fallback(st api.ReportedStatus, level int, why string) api.ReportedStatus {
	out := api.ReportedStatus{Conditions: shorten(st.Conditions, cutEntryMessage)}
	msg := "the status is too large for the transport (" + why + "); per-object feedback values are left out"
	if level <= 1 {
		for _, e := range st.ResourceStatus {
			out.ResourceStatus = append(out.ResourceStatus, api.ResourceStatus{ResourceMeta: e.ResourceMeta,
				Conditions: shorten(e.Conditions, 256), Observed: e.Observed})
		}
	} else {
		msg = "the status is too large for the transport (" + why + "); per-object status is left out"
	}
	setCondition(&out.Conditions, metav1.Condition{Type: api.ConditionStatusFeedbackSynced, Status: metav1.ConditionFalse,
		Reason: ReasonStatusTooLarge, Message: msg})
	return out
}

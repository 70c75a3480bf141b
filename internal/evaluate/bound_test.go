package evaluate

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/pkg/api"
)

func entryWith(name string, values, valueBytes int) api.ResourceStatus {
	e := api.ResourceStatus{
		ResourceMeta: workv1.ManifestResourceMeta{Kind: "ConfigMap", Resource: "configmaps", Namespace: "ns", Name: name},
		Conditions: []metav1.Condition{{Type: api.ConditionStatusFeedbackSynced, Status: metav1.ConditionTrue,
			Reason: ReasonFeedbackSynced, LastTransitionTime: metav1.NewTime(time.Unix(1700000000, 0))}},
		Observed: api.Observed{UID: "u-" + name, Exists: true},
	}
	for i := range values {
		s := strings.Repeat("v", valueBytes)
		e.StatusFeedbacks.Values = append(e.StatusFeedbacks.Values, workv1.FeedbackValue{Name: fmt.Sprintf("k%d", i),
			Value: workv1.FieldValue{Type: workv1.String, String: &s}})
	}
	return e
}

func feedbackCondition(t *testing.T, conds []metav1.Condition) metav1.Condition {
	t.Helper()
	for _, c := range conds {
		if c.Type == api.ConditionStatusFeedbackSynced {
			return c
		}
	}
	t.Fatalf("no %s condition in %+v", api.ConditionStatusFeedbackSynced, conds)
	return metav1.Condition{}
}

func TestBoundSmallUnchanged(t *testing.T) {
	st := api.ReportedStatus{ResourceStatus: []api.ResourceStatus{entryWith("a", 3, 100)}}
	got, cut := Bound(st)
	if cut || !reflect.DeepEqual(got, st) {
		t.Fatalf("small status changed: cut=%v", cut)
	}
}

func TestBoundEntry(t *testing.T) {
	st := api.ReportedStatus{ResourceStatus: []api.ResourceStatus{entryWith("small", 2, 10), entryWith("big", 100, 1024)}}
	got, cut := Bound(st)
	if !cut {
		t.Fatal("an entry over its limit was not cut")
	}
	big := got.ResourceStatus[1]
	if n := jsonSize(big); n > limits.StatusEntryBytes {
		t.Errorf("cut entry is %d bytes; limit %d", n, limits.StatusEntryBytes)
	}
	if n := len(big.StatusFeedbacks.Values); n == 0 || n >= 100 || big.StatusFeedbacks.Values[0].Name != "k0" {
		t.Errorf("cut entry keeps %d values; want the first ones, some cut", n)
	}
	c := feedbackCondition(t, big.Conditions)
	if c.Status != metav1.ConditionFalse || c.Reason != ReasonFeedbackTruncated || !strings.Contains(c.Message, "65536 bytes (64 KiB) per object") {
		t.Errorf("cut entry condition = %+v", c)
	}
	if len(got.ResourceStatus[0].StatusFeedbacks.Values) != 2 {
		t.Error("the small entry lost values")
	}
	if c := feedbackCondition(t, got.Conditions); c.Reason != ReasonFeedbackTruncated {
		t.Errorf("bundle condition = %+v", c)
	}
	again, _ := Bound(st)
	if !reflect.DeepEqual(got, again) {
		t.Error("Bound is not deterministic")
	}
}

func TestBoundBundle(t *testing.T) {
	var st api.ReportedStatus
	for i := range 20 {
		st.ResourceStatus = append(st.ResourceStatus, entryWith(fmt.Sprintf("o%02d", i), 50, 1200)) // ~60 KiB each
	}
	st.Conditions = []metav1.Condition{{Type: api.ConditionApplied, Status: metav1.ConditionFalse, Reason: "x",
		Message: strings.Repeat("m", 100<<10), LastTransitionTime: metav1.NewTime(time.Unix(1700000000, 0))}}
	got, cut := Bound(st)
	if n := jsonSize(got); !cut || n > limits.StatusBytes {
		t.Fatalf("bundle status %d bytes after Bound (cut=%v); limit %d", n, cut, limits.StatusBytes)
	}
	c := feedbackCondition(t, got.Conditions)
	if c.Status != metav1.ConditionFalse || c.Reason != ReasonFeedbackTruncated || !strings.Contains(c.Message, "458752 bytes (448 KiB)") {
		t.Errorf("bundle condition = %+v", c)
	}
	kept := 0
	for _, e := range got.ResourceStatus {
		if len(e.StatusFeedbacks.Values) > 0 {
			kept++
			continue
		}
		if c := feedbackCondition(t, e.Conditions); c.Reason != ReasonFeedbackTruncated {
			t.Errorf("entry %s without values has condition %+v", e.ResourceMeta.Name, c)
		}
	}
	if kept == 0 || kept == 20 {
		t.Errorf("%d of 20 entries keep their values; want some", kept)
	}
}

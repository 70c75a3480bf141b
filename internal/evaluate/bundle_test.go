package evaluate

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/pkg/api"
)

// rs builds a per-object status with Applied and Available set as given
// ("" leaves the condition out).
func rs(name, applied, available string, at time.Time) api.ResourceStatus {
	s := api.ResourceStatus{ResourceMeta: workv1.ManifestResourceMeta{Kind: "ConfigMap", Name: name, Namespace: "ns"}}
	for typ, st := range map[string]string{api.ConditionApplied: applied, api.ConditionAvailable: available} {
		if st != "" {
			s.Conditions = append(s.Conditions, metav1.Condition{Type: typ, Status: metav1.ConditionStatus(st),
				Reason: "R" + st, LastTransitionTime: metav1.NewTime(at)})
		}
	}
	return s
}

func TestBundle(t *testing.T) {
	a, b := t0.Truncate(time.Second), t0.Add(time.Minute).Truncate(time.Second)
	cases := map[string]struct {
		objs               []api.ResourceStatus
		applied, available string // Status/Reason
		msg                string // Available message
	}{
		"all good": {objs: []api.ResourceStatus{rs("a", "True", "True", a), rs("b", "True", "True", b)},
			applied: "True/AppliedManifestWorkComplete", available: "True/ResourcesAvailable"},
		"no objects": {applied: "True/AppliedManifestWorkComplete", available: "True/ResourcesAvailable"},
		"one not applied": {objs: []api.ResourceStatus{rs("a", "True", "True", a), rs("b", "False", "True", b)},
			applied: "False/AppliedManifestWorkFailed", available: "True/ResourcesAvailable"},
		"one pending": {objs: []api.ResourceStatus{rs("a", "Unknown", "True", a), rs("b", "True", "True", b)},
			applied: "Unknown/Progressing", available: "True/ResourcesAvailable"},
		"false beats unknown": {objs: []api.ResourceStatus{rs("a", "Unknown", "", a), rs("b", "False", "False", b)},
			applied: "False/AppliedManifestWorkFailed", available: "False/ResourcesNotAvailable",
			msg: "Not available: ConfigMap ns/b (RFalse)"},
		"missing condition is unknown": {objs: []api.ResourceStatus{rs("a", "True", "", a)},
			applied: "True/AppliedManifestWorkComplete", available: "Unknown/ResourcesNotAvailable",
			msg: "Availability unknown: ConfigMap ns/a (no condition)"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := Bundle(tc.objs, 7, nil)
			if len(got) != 2 || got[0].Type != api.ConditionApplied || got[1].Type != api.ConditionAvailable {
				t.Fatalf("conditions = %+v; want Applied, Available", got)
			}
			for i, want := range []string{tc.applied, tc.available} {
				if s := string(got[i].Status) + "/" + got[i].Reason; s != want {
					t.Errorf("%s = %s; want %s", got[i].Type, s, want)
				}
				if got[i].ObservedGeneration != 7 {
					t.Errorf("%s observedGeneration = %d; want 7", got[i].Type, got[i].ObservedGeneration)
				}
			}
			if tc.msg != "" && got[1].Message != tc.msg {
				t.Errorf("Available message = %q; want %q", got[1].Message, tc.msg)
			}
		})
	}
}

func TestBundleTransitionTimes(t *testing.T) {
	a, b, c := t0.Truncate(time.Second), t0.Add(time.Minute).Truncate(time.Second), t0.Add(time.Hour).Truncate(time.Second)
	first := Bundle([]api.ResourceStatus{rs("a", "True", "True", a), rs("b", "True", "True", b)}, 1, nil)
	if !first[0].LastTransitionTime.Time.Equal(b) {
		t.Errorf("transition time = %v; want the latest object transition %v", first[0].LastTransitionTime, b)
	}
	// Same statuses later keep the time, even if objects moved theirs.
	again := Bundle([]api.ResourceStatus{rs("a", "True", "True", c)}, 2, first)
	if !again[1].LastTransitionTime.Time.Equal(b) {
		t.Errorf("unchanged Available moved to %v", again[1].LastTransitionTime)
	}
	flipped := Bundle([]api.ResourceStatus{rs("a", "True", "False", c)}, 2, first)
	if !flipped[1].LastTransitionTime.Time.Equal(c) || !flipped[0].LastTransitionTime.Time.Equal(b) {
		t.Errorf("times after flip = %v, %v; want %v, %v", flipped[0].LastTransitionTime, flipped[1].LastTransitionTime, b, c)
	}
}

func TestDeleted(t *testing.T) {
	c := Deleted()
	if c.Type != api.ConditionDeleted || c.Status != metav1.ConditionTrue || c.Reason == "" {
		t.Errorf("Deleted() = %+v", c)
	}
}

func TestFeedbackRulesFor(t *testing.T) {
	ip := []workv1.FeedbackRule{{Type: workv1.JSONPathsType, JsonPaths: []workv1.JsonPath{{Name: "ip", Path: ".x"}}}}
	wk := []workv1.FeedbackRule{{Type: workv1.WellKnownStatusType}}
	configs := []workv1.ManifestConfigOption{
		{ResourceIdentifier: workv1.ResourceIdentifier{Resource: "services", Namespace: "ns", Name: "router"}, FeedbackRules: ip},
		{ResourceIdentifier: workv1.ResourceIdentifier{Group: "apps", Resource: "deployments", Namespace: "*", Name: "web-*"}, FeedbackRules: wk},
	}
	cases := map[string]struct {
		meta workv1.ManifestResourceMeta
		want []workv1.FeedbackRule
	}{
		"exact":              {workv1.ManifestResourceMeta{Resource: "services", Namespace: "ns", Name: "router"}, ip},
		"other name":         {workv1.ManifestResourceMeta{Resource: "services", Namespace: "ns", Name: "other"}, nil},
		"other group":        {workv1.ManifestResourceMeta{Group: "x", Resource: "services", Namespace: "ns", Name: "router"}, nil},
		"wildcards":          {workv1.ManifestResourceMeta{Group: "apps", Resource: "deployments", Namespace: "a", Name: "web-1"}, wk},
		"wildcard no prefix": {workv1.ManifestResourceMeta{Group: "apps", Resource: "deployments", Namespace: "a", Name: "api"}, nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := FeedbackRulesFor(configs, tc.meta); mustJSON(t, got) != mustJSON(t, tc.want) {
				t.Errorf("rules = %s; want %s", mustJSON(t, got), mustJSON(t, tc.want))
			}
		})
	}
}

// TestSeedScenario replays the stale-bundle runbook: a read-only Service
// with a load balancer IP is deleted, then recreated with a new uid and IP.
// Each step must change the reported hash, the deleted step must carry no
// value, and re-evaluating an unchanged step must not.
func TestSeedScenario(t *testing.T) {
	r := rules(t, ipRule)
	apply := ApplyResult{State: ApplyReadOnly}
	report := func(s api.ResourceStatus) api.ReportedStatus {
		return api.ReportedStatus{Conditions: Bundle([]api.ResourceStatus{s}, 1, nil), ResourceStatus: []api.ResourceStatus{s}}
	}
	ip := func(s api.ResourceStatus) string {
		for _, v := range s.StatusFeedbacks.Values {
			if v.Name == "ip" && v.Value.String != nil {
				return *v.Value.String
			}
		}
		return ""
	}

	live := Object(Input{Meta: serviceMeta, Object: obj(t, serviceYAML), FeedbackRules: r, Apply: apply, ObservedAt: t0})
	if ip(live) != "20.1.2.3" || live.Observed.UID != "uid-1" {
		t.Fatalf("live: ip %q uid %q", ip(live), live.Observed.UID)
	}
	same := Object(Input{Meta: serviceMeta, Object: obj(t, serviceYAML), FeedbackRules: r, Apply: apply,
		ObservedAt: t0.Add(30 * time.Second), Previous: &live})
	if protocol.HashStatus(report(same)) != protocol.HashStatus(report(live)) {
		t.Fatal("re-evaluating the unchanged Service changed the hash")
	}

	deleted := Object(Input{Meta: serviceMeta, FeedbackRules: r, Apply: apply, ObservedAt: t0.Add(time.Minute), Previous: &same})
	if len(deleted.StatusFeedbacks.Values) != 0 || deleted.Observed.Exists || deleted.Observed.UID != "" {
		t.Fatalf("deleted: values %v observed %+v", deleted.StatusFeedbacks.Values, deleted.Observed)
	}
	if c := cond(deleted, api.ConditionAvailable); c.Reason != api.ReasonNotFound || c.Status != metav1.ConditionFalse {
		t.Fatalf("deleted Available = %s/%s", c.Status, c.Reason)
	}
	if c := cond(deleted, api.ConditionStatusFeedbackSynced); c.Reason != api.ReasonNotFound || c.Status != metav1.ConditionFalse {
		t.Fatalf("deleted StatusFeedbackSynced = %s/%s", c.Status, c.Reason)
	}
	if rep := report(deleted); rep.Conditions[1].Status != metav1.ConditionFalse {
		t.Fatalf("bundle Available with a missing object = %s", rep.Conditions[1].Status)
	}
	if protocol.HashStatus(report(deleted)) == protocol.HashStatus(report(same)) {
		t.Fatal("deletion did not change the hash")
	}

	recreated := obj(t, serviceYAML)
	recreated.SetUID("uid-2")
	recreated.SetResourceVersion("20")
	if err := unstructured.SetNestedSlice(recreated.Object, []any{map[string]any{"ip": "20.9.9.9"}}, "status", "loadBalancer", "ingress"); err != nil {
		t.Fatal(err)
	}
	back := Object(Input{Meta: serviceMeta, Object: recreated, FeedbackRules: r, Apply: apply, ObservedAt: t0.Add(2 * time.Minute), Previous: &deleted})
	if ip(back) != "20.9.9.9" || back.Observed.UID != "uid-2" || !back.Observed.Exists {
		t.Fatalf("recreated: ip %q observed %+v", ip(back), back.Observed)
	}
	if protocol.HashStatus(report(back)) == protocol.HashStatus(report(live)) {
		t.Fatal("recreated Service hashes like the original")
	}

	// A new uid alone (same IP, same resourceVersion) is a change too (I2).
	twin := obj(t, serviceYAML)
	twin.SetUID("uid-3")
	twinSt := Object(Input{Meta: serviceMeta, Object: twin, FeedbackRules: r, Apply: apply, ObservedAt: t0, Previous: &live})
	if protocol.HashStatus(report(twinSt)) == protocol.HashStatus(report(live)) {
		t.Fatal("a new uid did not change the hash")
	}
}

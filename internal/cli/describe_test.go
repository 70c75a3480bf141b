package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/pkg/api"
)

// TestReportedBundle shows a bundle whose agent reported status: get's
// condition columns and wide columns, and describe's per-object section.
func TestReportedBundle(t *testing.T) {
	srv, st := startServerStore(t)
	must(t, srv, "apply", "-f", "../../examples/consumer-dev.yaml")
	must(t, srv, "apply", "-f", "../../examples/shared-ingress.yaml")
	var b api.ResourceBundle
	if err := json.Unmarshal([]byte(must(t, srv, "get", "bundle", "shared-ingress", "-o", "json")), &b); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-3 * time.Minute).UTC().Truncate(time.Millisecond)
	ip := "20.1.2.3"
	cond := func(typ string, s metav1.ConditionStatus, reason string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: s, Reason: reason, Message: typ + " message", LastTransitionTime: metav1.NewTime(at.Truncate(time.Second))}
	}
	rs := api.ResourceStatus{
		ResourceMeta:    workv1.ManifestResourceMeta{Version: "v1", Kind: "Service", Resource: "services", Name: "router", Namespace: "hypershift-sharedingress"},
		StatusFeedbacks: workv1.StatusFeedbackResult{Values: []workv1.FeedbackValue{{Name: "ip", Value: workv1.FieldValue{Type: workv1.String, String: &ip}}}},
		Conditions:      []metav1.Condition{cond(api.ConditionAvailable, metav1.ConditionTrue, "ResourceAvailable")},
		Observed:        api.Observed{UID: "u-1", ResourceVersion: "42", Generation: 1, Exists: true, ObservedAt: at},
	}
	res, _, err := st.ApplyStatus(context.Background(), store.StatusUpdate{ConsumerName: "dev", BundleID: b.ID, AgentEpoch: "e1",
		AgentRevision: 1, ObservedGeneration: b.Version, Hash: "h1", SequenceID: "7", At: time.Now(),
		Reported: api.ReportedStatus{ResourceStatus: []api.ResourceStatus{rs}, Conditions: []metav1.Condition{
			cond(api.ConditionApplied, metav1.ConditionTrue, "AppliedManifestWorkComplete"),
			cond(api.ConditionAvailable, metav1.ConditionFalse, "ResourcesNotAvailable")}}})
	if err != nil || res != store.StatusAccepted {
		t.Fatalf("apply status: %v %v", res, err)
	}

	f := strings.Fields(strings.Split(must(t, srv, "get", "bundles"), "\n")[1])
	if f[3] != "True" || f[4] != "False" {
		t.Errorf("APPLIED/AVAILABLE %v; want True False", f)
	}
	f = strings.Fields(strings.Split(must(t, srv, "get", "bundles", "-o", "wide"), "\n")[1])
	if f[len(f)-3] != "1" || f[len(f)-2] != "1" {
		t.Errorf("REVISION/OBJECTS %v; want 1 1", f)
	}

	out := must(t, srv, "describe", "bundle", "shared-ingress", "--consumer", "dev")
	for _, want := range []string{
		"Revision:", "Sequence ID:", "Conditions:", "TYPE", "Applied", "AppliedManifestWorkComplete", "ResourcesNotAvailable",
		"Resources:", "Service hypershift-sharedingress/router (v1, ordinal 0)",
		"uid=u-1 resourceVersion=42 generation=1 at " + at.Format(time.RFC3339), "(3m ago)",
		"ResourceAvailable", "ip = 20.1.2.3 (String)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("describe lacks %q:\n%s", want, out)
		}
	}
}

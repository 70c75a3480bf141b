package doctor_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/client"
	"github.com/baton-dev/baton/internal/evaluate"
	"github.com/baton-dev/baton/internal/server"
	"github.com/baton-dev/baton/internal/server/servertest"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/pkg/api"
)

// startBaton runs a baton server over SQLite and returns its URL and store.
func startBaton(t *testing.T) (string, store.Store) {
	t.Helper()
	st := storetest.NewSQLite(t)
	return servertest.Start(t, server.Options{Store: st}), st
}

// TestDoctorAgainstBaton checks a baton report, which carries the observed
// uid and resourceVersion, against the cluster: the report is what the
// agent computes (internal/evaluate) from the live Service.
func TestDoctorAgainstBaton(t *testing.T) {
	if cfg == nil {
		t.Skip("needs a kube-apiserver (not started under -short)")
	}
	ctx := context.Background()
	kc := kubernetes.NewForConfigOrDie(cfg)
	ns := "baton-doctor"
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createService := func(ip string) {
		t.Helper()
		svc, err := kc.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "router"},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 443}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		if _, err := kc.CoreV1().Services(ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	createService(oldIP)

	url, st := startBaton(t)
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateConsumer(ctx, api.Consumer{Name: "mgmt-1"}); err != nil {
		t.Fatal(err)
	}
	rules := []workv1.FeedbackRule{{Type: workv1.JSONPathsType, JsonPaths: []workv1.JsonPath{{Name: "ip", Path: ".status.loadBalancer.ingress[0].ip"}}}}
	b, err := c.CreateBundle(ctx, &api.ResourceBundle{Name: "shared-ingress", ConsumerName: "mgmt-1",
		Manifests: []json.RawMessage{json.RawMessage(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"router","namespace":"` + ns + `"}}`)},
		ManifestConfigs: []workv1.ManifestConfigOption{{
			ResourceIdentifier: workv1.ResourceIdentifier{Resource: "services", Name: "router", Namespace: ns},
			UpdateStrategy:     &workv1.UpdateStrategy{Type: workv1.UpdateStrategyTypeReadOnly},
			FeedbackRules:      rules,
		}}})
	if err != nil {
		t.Fatal(err)
	}

	// report stores what an agent would report from the Service as it is now.
	meta := workv1.ManifestResourceMeta{Version: "v1", Kind: "Service", Resource: "services", Name: "router", Namespace: ns}
	dyn := dynamic.NewForConfigOrDie(cfg)
	svcs := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "services"}).Namespace(ns)
	rev := int64(0)
	report := func() {
		t.Helper()
		live, err := svcs.Get(ctx, "router", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rs := evaluate.Object(evaluate.Input{Meta: meta, Object: live, FeedbackRules: rules,
			Apply: evaluate.ApplyResult{State: evaluate.ApplyReadOnly}, ObservedAt: time.Now()})
		rev++
		res, _, err := st.ApplyStatus(ctx, store.StatusUpdate{ConsumerName: "mgmt-1", BundleID: b.ID, AgentEpoch: "e1",
			AgentRevision: rev, ObservedGeneration: b.Version, Reported: api.ReportedStatus{ResourceStatus: []api.ResourceStatus{rs}},
			Hash: "h" + live.GetResourceVersion(), SequenceID: "1", At: time.Now()})
		if err != nil || res != store.StatusAccepted {
			t.Fatalf("apply status: %v, %v", res, err)
		}
	}
	report()
	kubeconfig := writeKubeconfig(t, cfg)
	args := []string{"doctor", "--kubeconfig", kubeconfig, "--server", url, "--consumer", "mgmt-1"}
	if out, _, err := run(args...); err != nil || !strings.Contains(out, "checked 1 object in 1 bundle: all agree with the cluster") {
		t.Fatalf("fresh report: %v\n%s", err, out)
	}

	// The Service is recreated with a new IP and the report is not updated.
	if err := kc.CoreV1().Services(ns).Delete(ctx, "router", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	createService(newIP)
	out, _, err := run(append(args, "-o", "json")...)
	if exitCode(err) != 1 {
		t.Fatalf("exit code %d (%v); want 1\n%s", exitCode(err), err, out)
	}
	var res struct {
		Mismatches []struct{ Field, Reported, Live string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	fields := map[string][2]string{}
	for _, m := range res.Mismatches {
		fields[m.Field] = [2]string{m.Reported, m.Live}
	}
	if len(fields) != 3 || fields["feedback.ip"] != [2]string{oldIP, newIP} ||
		fields["uid"][0] == fields["uid"][1] || fields["resourceVersion"][0] == fields["resourceVersion"][1] {
		t.Errorf("mismatches %v; want uid, resourceVersion and feedback.ip", fields)
	}

	// A new report agrees again; then the Service disappears.
	report()
	if _, _, err := run(args...); err != nil {
		t.Fatalf("after a new report: %v", err)
	}
	if err := kc.CoreV1().Services(ns).Delete(ctx, "router", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	out, _, err = run(args...)
	if exitCode(err) != 1 || !strings.Contains(out, "exists") || !strings.Contains(out, "<not found>") {
		t.Errorf("deleted object: %v\n%s", err, out)
	}
}

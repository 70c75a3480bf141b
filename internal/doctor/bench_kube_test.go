package doctor_test

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/doctor"
	"github.com/baton-dev/baton/pkg/api"
)

// BenchmarkCheck600 checks 600 bundles of one ConfigMap each (JSONPath
// feedback, Maestro-shaped reports) against a real kube-apiserver, as
// `baton doctor` does for a consumer with 600 bundles.
func BenchmarkCheck600(b *testing.B) {
	if cfg == nil {
		b.Skip("needs a kube-apiserver")
	}
	const n = 600
	ctx := context.Background()
	rc := *cfg
	rc.QPS, rc.Burst = 100, 200 // what the doctor command uses
	kc := kubernetes.NewForConfigOrDie(cfg)
	ns := "bench-doctor"
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	bundles := make([]api.ResourceBundle, n)
	for i := range bundles {
		name := fmt.Sprintf("cm-%03d", i)
		if _, err := kc.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name},
			Data: map[string]string{"zone": name + ".example.net"}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		zone := name + ".example.net"
		bundles[i] = api.ResourceBundle{ID: name, Name: name, ConsumerName: "bench",
			ManifestConfigs: []workv1.ManifestConfigOption{{
				ResourceIdentifier: workv1.ResourceIdentifier{Resource: "configmaps", Namespace: ns, Name: name},
				FeedbackRules: []workv1.FeedbackRule{{Type: workv1.JSONPathsType,
					JsonPaths: []workv1.JsonPath{{Name: "zone", Path: ".data.zone"}}}}}},
			Status: &api.BundleStatus{ResourceStatus: []api.ResourceStatus{{
				ResourceMeta:    workv1.ManifestResourceMeta{Version: "v1", Kind: "ConfigMap", Resource: "configmaps", Namespace: ns, Name: name},
				StatusFeedbacks: workv1.StatusFeedbackResult{Values: []workv1.FeedbackValue{{Name: "zone", Value: workv1.FieldValue{Type: workv1.String, String: &zone}}}},
			}}}}
	}
	g, err := doctor.NewClusterGetter(&rc)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		res := doctor.Check(ctx, g, bundles)
		if !res.OK() || res.Objects != n {
			b.Fatalf("got %d objects, %d mismatches, errors %v", res.Objects, len(res.Mismatches), res.Errors)
		}
	}
	b.ReportMetric(float64(n), "objects/op")
}

package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/pkg/api"
)

// RealisticBundle returns bundle number i of consumer: a Deployment and a
// Service with feedback rules, about 2 KB of spec; with RealisticStatus it
// makes the ~3 KB bundle that listing targets are measured with.
func RealisticBundle(consumer string, i int) store.Bundle {
	name := fmt.Sprintf("app-%05d", i)
	deploy := fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":%[1]q,"namespace":"workloads",
"labels":{"app":%[1]q,"team":"platform"}},"spec":{"replicas":3,"selector":{"matchLabels":{"app":%[1]q}},
"template":{"metadata":{"labels":{"app":%[1]q}},"spec":{"containers":[{"name":"main","image":"registry.example.com/platform/%[1]s:v1.2.3",
"ports":[{"containerPort":8080,"name":"http"}],"env":[{"name":"MODE","value":"production"},{"name":"LOG_LEVEL","value":"info"}],
"resources":{"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"cpu":"500m","memory":"512Mi"}},
"readinessProbe":{"httpGet":{"path":"/healthz","port":8080},"periodSeconds":10}}]}}}}`, name)
	svc := fmt.Sprintf(`{"apiVersion":"v1","kind":"Service","metadata":{"name":%[1]q,"namespace":"workloads"},
"spec":{"type":"LoadBalancer","selector":{"app":%[1]q},"ports":[{"port":80,"targetPort":8080,"name":"http"}]}}`, name)
	return store.Bundle{
		ConsumerName: consumer,
		Name:         name,
		Source:       "bench",
		Meta:         api.ObjectMeta{Labels: map[string]string{"app": name, "shard": fmt.Sprint(i % 10)}},
		Spec: api.BundleSpec{
			Manifests: []json.RawMessage{compact(deploy), compact(svc)},
			ManifestConfigs: []workv1.ManifestConfigOption{{
				ResourceIdentifier: workv1.ResourceIdentifier{Resource: "services", Name: name, Namespace: "workloads"},
				FeedbackRules: []workv1.FeedbackRule{{Type: workv1.JSONPathsType, JsonPaths: []workv1.JsonPath{
					{Name: "ip", Path: ".status.loadBalancer.ingress[0].ip"}}}},
				UpdateStrategy: &workv1.UpdateStrategy{Type: workv1.UpdateStrategyTypeServerSideApply},
			}},
		},
	}
}

// RealisticStatus returns a reported status for a RealisticBundle, about 1 KB.
func RealisticStatus(i int) api.ReportedStatus {
	at := time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)
	cond := func(t string) metav1.Condition {
		return metav1.Condition{Type: t, Status: metav1.ConditionTrue, Reason: t + "Succeeded",
			Message: t + " completed", LastTransitionTime: metav1.NewTime(at)}
	}
	ip := fmt.Sprintf("10.%d.%d.%d", i/65536%256, i/256%256, i%256)
	return api.ReportedStatus{
		Conditions: []metav1.Condition{cond(api.ConditionApplied), cond(api.ConditionAvailable)},
		ResourceStatus: []api.ResourceStatus{
			{
				ResourceMeta: workv1.ManifestResourceMeta{Group: "apps", Version: "v1", Kind: "Deployment",
					Resource: "deployments", Name: fmt.Sprintf("app-%05d", i), Namespace: "workloads"},
				Conditions: []metav1.Condition{cond(api.ConditionApplied), cond(api.ConditionAvailable)},
				Observed:   api.Observed{UID: fmt.Sprintf("uid-d-%d", i), ResourceVersion: "1234", Generation: 1, Exists: true, ObservedAt: at},
			},
			{
				ResourceMeta: workv1.ManifestResourceMeta{Version: "v1", Kind: "Service",
					Resource: "services", Name: fmt.Sprintf("app-%05d", i), Namespace: "workloads"},
				StatusFeedbacks: workv1.StatusFeedbackResult{Values: []workv1.FeedbackValue{{Name: "ip",
					Value: workv1.FieldValue{Type: workv1.String, String: &ip}}}},
				Conditions: []metav1.Condition{cond(api.ConditionApplied), cond(api.ConditionStatusFeedbackSynced)},
				Observed:   api.Observed{UID: fmt.Sprintf("uid-s-%d", i), ResourceVersion: "5678", Exists: true, ObservedAt: at},
			},
		},
	}
}

// Populate creates consumer (if missing) and n RealisticBundles with an
// accepted RealisticStatus each, writing from 8 goroutines. It returns the
// bundle ids in creation order of i.
func Populate(t testing.TB, s store.Store, consumer string, n int) []string {
	t.Helper()
	ctx := context.Background()
	if _, err := s.GetConsumer(ctx, consumer); err != nil {
		if _, err := s.CreateConsumer(ctx, store.Consumer{Name: consumer}); err != nil {
			t.Fatalf("create consumer %s: %v", consumer, err)
		}
	}
	ids := make([]string, n)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				b, err := s.CreateBundle(ctx, RealisticBundle(consumer, i))
				if err != nil {
					errs[w] = err
					return
				}
				ids[i] = b.ID
				st := RealisticStatus(i)
				_, _, err = s.ApplyStatus(ctx, store.StatusUpdate{ConsumerName: consumer, BundleID: b.ID,
					AgentEpoch: "bench", AgentRevision: int64(i + 1), ObservedGeneration: b.Generation,
					Reported: st, Hash: fmt.Sprintf("hash-%d", i), SequenceID: fmt.Sprint(i + 1)})
				if err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("populate: %v", err)
		}
	}
	return ids
}

func compact(s string) json.RawMessage {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		panic("storetest: bad fixture JSON: " + err.Error())
	}
	b, _ := json.Marshal(v)
	return b
}

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/baton-dev/baton/internal/evaluate"
	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/pkg/api"
)

// Sizes of the oversized-status scenario. Each of the big bundle's
// ConfigMaps has a status entry of about 0.7 KiB (its identity, uid,
// resourceVersion, observedAt and three conditions) against about 0.1 KiB
// of spec, so 1,000 of them make a spec the API accepts (well within
// limits.BundleSpecBytes) and a status no MQTT message carries, even
// without feedback values: evaluate.Bound cannot cut it, the agent's
// reporter must fall back.
const (
	oversizedSmall   = 100
	oversizedObjects = 1000
	// oversizedBound is how long the small bundles may take to show a
	// change of their objects Fresh in REST: healBound, the bound of one
	// change on an idle agent, with room for 100 of them on 2 loaded cores.
	oversizedBound = 2 * healBound
)

// TestOversizedStatusIsolated: one consumer, one agent on MQTT; one bundle
// whose status (1,000 applied ConfigMaps) is larger than an MQTT message,
// and 100 bundles observing one ConfigMap each. The big bundle is shown
// with StatusFeedbackSynced=False/StatusTooLarge naming the 512 KiB limit,
// never Fresh; its objects keep changing, and every change of the 100
// others' objects is in REST, Fresh, within oversizedBound: nothing waits
// behind the message the transport refuses (DESIGN fact 9, I9).
func TestOversizedStatusIsolated(t *testing.T) {
	broker := mqttBroker(t)
	mq := []string{"--mqtt-broker", broker, "--mqtt-source", fmt.Sprintf("e2e-%d", time.Now().UnixNano())}
	c := newClusterWith(t, sqliteStore, mq...)
	const consumer = "oversized"
	c.createConsumer(consumer)
	// The client's rate limit (50/s) would make each apply of the big
	// bundle take about 45 s; the subject here is the status, not the rate.
	c.startAgentWith(consumer, append([]string{"--kube-api-qps", "1000", "--kube-api-burst", "2000"}, mq...))
	ns := c.namespace("oversized")
	ctx := context.Background()

	// The 100 small bundles: ReadOnly on a ConfigMap each, .data.v as feedback.
	small := func(i int) string { return fmt.Sprintf("s%03d", i) }
	c.createConfigMaps(oversizedSmall, 8, func(int) string { return ns }, small)
	ids := map[string]string{} // bundle id → ConfigMap name
	for i := range oversizedSmall {
		b := c.createBundle(configMapBundle(consumer, "small-"+small(i), ns, small(i), "0", "ReadOnly"))
		ids[b.ID] = small(i)
	}
	big := c.createBundle(bigBundle(consumer, ns))
	t.Logf("big bundle: %d ConfigMaps", oversizedObjects)

	// Before the change: every small bundle Fresh with "0", the big one
	// marked StatusTooLarge once the agent has applied all its objects.
	var seen string // what the last look found, for a timeout
	defer func() {
		if t.Failed() && seen != "" {
			t.Logf("last look before the failure: %s", seen)
		}
	}()
	took := eventually(t, 120*time.Second, "the big bundle StatusTooLarge and the small ones Fresh with v=0", func() bool {
		bs := c.listBundles(t)
		_, marked := tooLarge(bs[big.ID])
		n := countAt(bs, ids, "0")
		seen = fmt.Sprintf("big bundle StatusTooLarge %v; %d of %d small bundles Fresh with v=0", marked, n, oversizedSmall)
		return marked && n == oversizedSmall
	})
	t.Logf("created → big bundle StatusTooLarge, the others Fresh: %v", took.Round(time.Millisecond))
	got := c.listBundles(t)[big.ID]
	cond, _ := tooLarge(got)
	if cond.Status != metav1.ConditionFalse || !strings.Contains(cond.Message, limits.Human(limits.MQTTMessageBytes)) {
		t.Fatalf("big bundle StatusFeedbackSynced = %+v; want False/StatusTooLarge naming %s", cond, limits.Human(limits.MQTTMessageBytes))
	}
	if state, reason := freshness(got); state != api.FreshnessStale || reason != api.ReasonStatusTooLarge {
		t.Fatalf("big bundle freshness %s/%s; want Stale/StatusTooLarge", state, reason)
	}
	t.Logf("big bundle Stale/StatusTooLarge: %s", cond.Message)

	// The change: every small bundle's object gets v=1 while the big
	// bundle's objects drift (every tenth change; the agent repairs them,
	// computes the big status again and the transport refuses it again).
	stop := c.watchTooLarge(t, big.ID, 50*time.Millisecond)
	var mu sync.Mutex
	patchedAt := make(map[string]time.Time, oversizedSmall) // ConfigMap → when its patch was sent
	var drifted []string
	for i := range oversizedSmall / 10 {
		drifted = append(drifted, fmt.Sprintf("b%04d", i*oversizedObjects/(oversizedSmall/10)))
	}
	start := time.Now()
	patched := make(chan error, 1)
	go func() {
		for i := range oversizedSmall {
			if i%10 == 0 {
				if err := patchV(c, ns, drifted[i/10], "drift"); err != nil {
					patched <- err
					return
				}
			}
			mu.Lock()
			patchedAt[small(i)] = time.Now()
			mu.Unlock()
			if err := patchV(c, ns, small(i), "1"); err != nil {
				patched <- err
				return
			}
		}
		patched <- nil
	}()
	var patchedIn time.Duration
	lag := make(map[string]time.Duration, oversizedSmall) // bundle → from its object's change to Fresh in REST
	all := eventually(t, oversizedBound, fmt.Sprintf("all %d small bundles Fresh with v=1", oversizedSmall), func() bool {
		select {
		case err := <-patched:
			if err != nil {
				t.Fatal(err)
			}
			patchedIn = time.Since(start)
		default:
		}
		bs := c.listBundles(t)
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		for id, name := range ids {
			if _, ok := lag[id]; !ok && freshWith(bs[id], "1") {
				lag[id] = now.Sub(patchedAt[name])
			}
		}
		seen = fmt.Sprintf("%d of %d small bundles Fresh with v=1", len(lag), oversizedSmall)
		return len(lag) == oversizedSmall
	})
	var lags []time.Duration
	for _, d := range lag {
		lags = append(lags, d)
	}
	slices.Sort(lags)
	t.Logf("%d objects changed (and %d of the big bundle's) in %v; all %d bundles Fresh with the change %v after the first change; "+
		"from an object's change to Fresh in REST: median %v, max %v",
		oversizedSmall, len(drifted), patchedIn.Round(time.Millisecond), oversizedSmall, all.Round(time.Millisecond),
		lags[len(lags)/2].Round(time.Millisecond), lags[len(lags)-1].Round(time.Millisecond))

	// The drifted objects were repaired: the agent kept working on the big
	// bundle too (a repair applies all its objects again).
	repaired := eventually(t, 60*time.Second, "the big bundle's drifted ConfigMaps repaired", func() bool {
		for _, name := range drifted {
			cm, err := c.kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil || cm.Data["v"] != "0" {
				return false
			}
		}
		return true
	})
	t.Logf("big bundle's %d drifted objects repaired %v after the first change", len(drifted), (all + repaired).Round(time.Millisecond))
	samples := stop()
	if len(samples) == 0 {
		t.Fatal("no sample of the big bundle")
	}
	reasons := map[string]int{}
	for _, s := range samples {
		if s.problem != "" {
			t.Fatalf("big bundle while the others changed: %s", s.problem)
		}
		reasons[s.reason]++
	}
	t.Logf("big bundle: %d samples, every one StatusTooLarge, Stale, without values; Stale reasons %v", len(samples), reasons)
}

// bigBundle applies ConfigMaps b0000… (data v=0) in ns: oversizedObjects
// of them, a status larger than an MQTT message.
func bigBundle(consumer, ns string) map[string]any {
	manifests := make([]any, oversizedObjects)
	for i := range manifests {
		manifests[i] = map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": fmt.Sprintf("b%04d", i), "namespace": ns}, "data": map[string]any{"v": "0"}}
	}
	return map[string]any{"consumer_name": consumer, "name": "big", "manifests": manifests}
}

// listBundles returns every bundle of the cluster by id.
func (c *cluster) listBundles(t *testing.T) map[string]api.ResourceBundle {
	t.Helper()
	var l api.List[api.ResourceBundle]
	c.mustDo(http.MethodGet, "/resource-bundles?size=-1", nil, &l)
	out := make(map[string]api.ResourceBundle, len(l.Items))
	for _, b := range l.Items {
		out[b.ID] = b
	}
	return out
}

// tooLarge returns the bundle's StatusFeedbackSynced condition if its
// reason is StatusTooLarge.
func tooLarge(b api.ResourceBundle) (metav1.Condition, bool) {
	if b.Status == nil {
		return metav1.Condition{}, false
	}
	cond, ok := condition(b.Status.Conditions, api.ConditionStatusFeedbackSynced)
	return cond, ok && cond.Reason == evaluate.ReasonStatusTooLarge
}

// freshWith reports whether b is Fresh with feedback v = value.
func freshWith(b api.ResourceBundle, value string) bool {
	v, ok := feedback(b, "v")
	state, _ := freshness(b)
	return ok && v == value && state == api.FreshnessFresh
}

// countAt counts the bundles of ids that are Fresh with v = value.
func countAt(bs map[string]api.ResourceBundle, ids map[string]string, value string) int {
	n := 0
	for id := range ids {
		if freshWith(bs[id], value) {
			n++
		}
	}
	return n
}

// patchV sets data.v of ConfigMap ns/name.
func patchV(c *cluster, ns, name, value string) error {
	_, err := c.kube.CoreV1().ConfigMaps(ns).Patch(context.Background(), name, types.MergePatchType,
		fmt.Appendf(nil, `{"data":{"v":%q}}`, value), metav1.PatchOptions{})
	return err
}

// tooLargeSample is one look at the oversized bundle: problem is empty
// when it is shown as it must be (StatusTooLarge, Stale, no feedback
// values), else it says what is wrong.
type tooLargeSample struct{ problem, reason string }

// watchTooLarge polls bundle id every interval until stop is called.
func (c *cluster) watchTooLarge(t *testing.T, id string, every time.Duration) (stop func() []tooLargeSample) {
	return poll(every, func() (tooLargeSample, bool) {
		b, _, err := c.getBundle(id)
		if err != nil {
			return tooLargeSample{}, false
		}
		_, reason := freshness(b)
		return tooLargeSample{problem: oversizedProblem(b), reason: reason}, true
	})
}

func oversizedProblem(b api.ResourceBundle) string {
	at := time.Now().Format("15:04:05.000")
	if _, ok := tooLarge(b); !ok {
		return at + " no StatusFeedbackSynced/StatusTooLarge: " + dump(b.Status)
	}
	if state, reason := freshness(b); state != api.FreshnessStale {
		return at + " freshness " + state + "/" + reason
	}
	for _, e := range b.Status.ResourceStatus {
		if len(e.StatusFeedbacks.Values) > 0 {
			return at + " feedback values shown: " + dump(e)
		}
	}
	return ""
}

package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/client"
	"github.com/baton-dev/baton/internal/freshness"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/internal/watch"
	"github.com/baton-dev/baton/internal/webhook"
	"github.com/baton-dev/baton/pkg/api"
)

const secret = "0123456789abcdef-test-secret"

// backend is what the tests need of the store.
type backend interface {
	store.Store
	webhook.Store
	webhook.SubscriptionStore
}

// receiver is a webhook endpoint that verifies signatures and records
// events; fail makes it answer 503, hang makes it never answer.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu     sync.Mutex
	fail   bool
	events []received
	bad    []string
}

type received struct {
	at   time.Time
	seq  int64
	data api.WebhookEvent
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if err := client.VerifySignature(secret, req.Header.Get(api.SignatureHeader), body, time.Now(), 0); err != nil {
		r.bad = append(r.bad, err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ce struct {
		SpecVersion string           `json:"specversion"`
		Type        string           `json:"type"`
		Sequence    string           `json:"sequence"`
		Data        api.WebhookEvent `json:"data"`
	}
	if err := json.Unmarshal(body, &ce); err != nil || ce.SpecVersion != "1.0" || req.Header.Get("Content-Type") != "application/cloudevents+json; charset=utf-8" {
		r.bad = append(r.bad, "not a structured CloudEvent: "+string(body))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	seq, _ := strconv.ParseInt(ce.Sequence, 10, 64)
	r.events = append(r.events, received{at: time.Now(), seq: seq, data: ce.Data})
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) setFail(f bool) { r.mu.Lock(); r.fail = f; r.mu.Unlock() }

func (r *receiver) got() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bad) > 0 {
		r.t.Fatalf("receiver rejected deliveries: %v", r.bad)
	}
	return append([]received(nil), r.events...)
}

// env is a store, broker, tracker and manager, with one consumer and bundle.
type env struct {
	t      *testing.T
	st     backend
	bundle string
	rev    int64
}

func start(t *testing.T, st store.Store) *env {
	t.Helper()
	b := st.(backend)
	ctx, cancel := context.WithCancel(context.Background())
	broker := watch.New(st, watch.WithPollInterval(20*time.Millisecond))
	tracker, err := freshness.NewTracker(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := webhook.New(b, broker, tracker, webhook.Options{MinBackoff: 50 * time.Millisecond, MaxBackoff: 300 * time.Millisecond,
		Timeout: 500 * time.Millisecond, Resync: 200 * time.Millisecond})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = broker.Start(ctx) }()
	go func() { defer wg.Done(); _ = m.Start(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	if _, err := st.CreateConsumer(ctx, store.Consumer{Name: "mgmt-1"}); err != nil {
		t.Fatal(err)
	}
	bundle, err := st.CreateBundle(ctx, store.Bundle{Name: "shared-ingress", ConsumerName: "mgmt-1",
		Spec: api.BundleSpec{Manifests: []json.RawMessage{json.RawMessage(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"router","namespace":"ns"}}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: b, bundle: bundle.ID}
	// Wait until the generator runs (its cursor is stored), so that the
	// subscriptions created next see every later change.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := b.WebhookCursor(ctx); err == nil && c >= 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("webhook generator did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return e
}

func (e *env) subscribe(name, url string, events ...string) store.Subscription {
	e.t.Helper()
	s, err := e.st.CreateSubscription(context.Background(), store.Subscription{Name: name, URL: url, Secret: secret, Events: events})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// report stores an agent status with feedback ip.
func (e *env) report(ip string) time.Time {
	e.t.Helper()
	e.rev++
	v := ip
	st := api.ReportedStatus{ResourceStatus: []api.ResourceStatus{{
		ResourceMeta:    workv1.ManifestResourceMeta{Version: "v1", Kind: "Service", Resource: "services", Name: "router", Namespace: "ns"},
		StatusFeedbacks: workv1.StatusFeedbackResult{Values: []workv1.FeedbackValue{{Name: "ip", Value: workv1.FieldValue{Type: workv1.String, String: &v}}}},
		Conditions:      []metav1.Condition{{Type: api.ConditionAvailable, Status: metav1.ConditionTrue, Reason: "Found"}},
		Observed:        api.Observed{UID: "uid-" + ip, ResourceVersion: strconv.FormatInt(e.rev, 10), Exists: true, ObservedAt: time.Now()},
	}}}
	at := time.Now()
	res, _, err := e.st.ApplyStatus(context.Background(), store.StatusUpdate{ConsumerName: "mgmt-1", BundleID: e.bundle,
		AgentEpoch: "e1", AgentRevision: e.rev, ObservedGeneration: 1, Reported: st, Hash: "h" + ip, At: at})
	if err != nil || res != store.StatusAccepted {
		e.t.Fatalf("apply status %s: %v %v", ip, res, err)
	}
	return at
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ips(evs []received) []string {
	var out []string
	for _, e := range evs {
		if len(e.data.Objects) == 1 {
			var ip string
			_ = json.Unmarshal(e.data.Objects[0].Feedback.New["ip"], &ip)
			out = append(out, ip)
		}
	}
	return out
}

// outage is how long the receiver of TestReceiverDown is down:
// BATON_TEST_WEBHOOK_OUTAGE (e.g. 30s), default 3s.
func outage(t *testing.T) time.Duration {
	if s := os.Getenv("BATON_TEST_WEBHOOK_OUTAGE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("BATON_TEST_WEBHOOK_OUTAGE: %v", err)
		}
		return d
	}
	return 3 * time.Second
}

// A signed event with the old and new value arrives within a second of
// the status change.
func TestSignedEventWithinASecond(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		e := start(t, st)
		r := newReceiver(t)
		e.subscribe("dns", r.srv.URL, api.EventFeedback)
		e.report("20.1.2.3")
		waitFor(t, 5*time.Second, "first event", func() bool { return len(r.got()) == 1 })
		at := e.report("20.9.8.7")
		waitFor(t, 5*time.Second, "second event", func() bool { return len(r.got()) == 2 })
		ev := r.got()[1]
		if d := ev.at.Sub(at); d > time.Second {
			t.Errorf("event arrived %v after the change, want < 1s", d)
		}
		o := ev.data.Objects[0]
		if string(o.Feedback.Old["ip"]) != `"20.1.2.3"` || string(o.Feedback.New["ip"]) != `"20.9.8.7"` ||
			o.Observed.UID != "uid-20.9.8.7" || ev.data.Bundle.ConsumerName != "mgmt-1" || ev.data.ChangeSeq == 0 ||
			ev.data.Freshness.New == nil || ev.seq != 2 {
			t.Errorf("event %+v", ev)
		}
		t.Logf("change → signed event at the receiver: %v", ev.at.Sub(at))
	})
}

// A receiver that is down gets every event afterwards, in order, with no
// gap; one failing subscription does not delay another.
func TestReceiverDownGetsEverythingInOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		e := start(t, st)
		down, up := newReceiver(t), newReceiver(t)
		down.setFail(true)
		release := make(chan struct{})
		hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		t.Cleanup(hang.Close)
		t.Cleanup(func() { close(release) })
		sDown := e.subscribe("down", down.srv.URL, api.EventFeedback)
		e.subscribe("hangs", hang.URL, api.EventFeedback)
		e.subscribe("up", up.srv.URL, api.EventFeedback)

		var want []string
		end := time.Now().Add(outage(t))
		for i := 0; time.Now().Before(end) || i < 5; i++ {
			ip := "10.0.0." + strconv.Itoa(i%250)
			want = append(want, ip)
			at := e.report(ip)
			waitFor(t, 5*time.Second, "healthy subscription's event "+ip, func() bool { return len(up.got()) == i+1 })
			if d := up.got()[i].at.Sub(at); d > time.Second {
				t.Errorf("healthy subscription got event %d %v after the change, want < 1s", i, d)
			}
			time.Sleep(outage(t) / 20)
		}
		got, err := st.(backend).GetSubscription(context.Background(), sDown.ID)
		if err != nil || got.Delivery.Failures < 3 || got.Delivery.Backlog != int64(len(want)) || got.Delivery.OldestUndelivered == nil || got.Delivery.LastError == "" {
			t.Errorf("down subscription's status %+v (%v), want failures >= 3 and backlog %d", got.Delivery, err, len(want))
		}
		down.setFail(false)
		waitFor(t, 5*time.Second, "the backlog after the receiver came back", func() bool { return len(down.got()) >= len(want) })
		evs := down.got()
		for i, ev := range evs {
			if ev.seq != int64(i+1) {
				t.Fatalf("event %d has sequence %d: gap or duplicate", i, ev.seq)
			}
		}
		if g := ips(evs); len(g) != len(want) || g[0] != want[0] || g[len(g)-1] != want[len(want)-1] {
			t.Fatalf("delivered %v, want %v", g, want)
		}
		t.Logf("outage %v: %d events queued and delivered in order after recovery", outage(t), len(want))
	})
}

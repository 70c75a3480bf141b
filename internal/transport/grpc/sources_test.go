package grpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-dev/baton/internal/bundlewrite"
	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/internal/snowflake"
	"github.com/baton-dev/baton/internal/store"
	ce "github.com/baton-dev/baton/internal/transport/cloudevents"
	"github.com/baton-dev/baton/internal/transport/grpc/pb"
	"github.com/baton-dev/baton/internal/validate"
	"github.com/baton-dev/baton/pkg/api"
)

// sourceEnv is a server with fake store and feed, and a source client
// subscribed the way sdk-go's source work client does.
type sourceEnv struct {
	reg      *prometheus.Registry
	st       *fakeStore
	feed     *fakeFeed
	rpc      pb.CloudEventServiceClient
	stream   *eventStream
	header   []string
	seq      *snowflake.Generator
	mu       sync.Mutex
	notified []string
}

func newSourceEnv(t *testing.T, transport limits.Transport) *sourceEnv {
	t.Helper()
	env := &sourceEnv{feed: newFakeFeed(), seq: mustSnowflake(), reg: prometheus.NewRegistry()}
	env.st = newFakeStore(env.feed, "c1", "c2")
	srv, _ := startServer(t, Config{Agents: newFakeHub(), Bundles: env.st, Changes: env.feed, Transport: func() limits.Transport { return transport }, Registerer: env.reg,
		Notify: func(c string) { env.mu.Lock(); env.notified = append(env.notified, c); env.mu.Unlock() }})
	env.rpc = rawClient(t, srv.SourceAddr())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := env.rpc.Subscribe(ctx, &pb.SubscriptionRequest{Source: "cs", DataType: ce.DataType})
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := stream.Header()
	if err != nil {
		t.Fatal(err)
	}
	env.header = hdr.Get(SubscriptionIDHeader)
	env.stream = readStream(stream)
	// The stream is registered once the server follows the feed.
	for deadline := time.Now().Add(wait); env.feed.count() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("source stream never followed the change feed")
		}
	}
	return env
}

func (env *sourceEnv) publish(t *testing.T, e ce.Event) error {
	t.Helper()
	ev, err := ToPB(e)
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.rpc.Publish(context.Background(), &pb.PublishRequest{Event: ev})
	return err
}

func (env *sourceEnv) write(t *testing.T, r ce.SpecRequest) error {
	t.Helper()
	r.Source = "cs"
	e, err := ce.EncodeSpecRequest(r, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return env.publish(t, e)
}

func (env *sourceEnv) status(t *testing.T) ce.SourceStatus {
	t.Helper()
	ev := env.stream.next(t)
	e, err := FromPB(ev)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ce.DecodeSourceStatus(e)
	if err != nil {
		t.Fatalf("event %s: %v", ev.GetType(), err)
	}
	if ev.GetAttributes()["ce-sequenceid"] == nil || ev.GetSpecVersion() != "1.0" {
		t.Fatalf("status event lacks sdk-go's attributes: %v", ev)
	}
	return s
}

func manifests() api.BundleSpec {
	return api.BundleSpec{Manifests: []json.RawMessage{json.RawMessage(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"n"}}`)}}
}

func applied(reason string) api.ReportedStatus {
	return api.ReportedStatus{Conditions: []metav1.Condition{{Type: api.ConditionApplied, Status: metav1.ConditionTrue,
		Reason: reason, LastTransitionTime: metav1.NewTime(time.Unix(1700000000, 0))}}}
}

func k8sReason(t *testing.T, err error) metav1.StatusReason {
	t.Helper()
	var se apierrors.StatusError
	if jerr := json.Unmarshal([]byte(status.Convert(err).Message()), &se); jerr != nil {
		t.Fatalf("error %v: message is not a StatusError: %v", err, jerr)
	}
	return se.ErrStatus.Reason
}

func TestSourceWritesAndStatus(t *testing.T) {
	env := newSourceEnv(t, "")
	if len(env.header) != 1 || env.header[0] == "" {
		t.Fatalf("subscription-id header = %v", env.header)
	}
	meta := api.ObjectMeta{Name: "work", Namespace: "c1"}
	if err := env.write(t, ce.SpecRequest{Action: ce.ActionCreate, BundleID: "b-1", Consumer: "c1", Meta: meta, Spec: manifests()}); err != nil {
		t.Fatal(err)
	}
	b, err := env.st.GetBundle(context.Background(), "b-1")
	if err != nil || b.ConsumerName != "c1" || b.Source != "cs" || b.Meta.Name != "work" || b.Generation != 1 || len(b.Spec.Manifests) != 1 {
		t.Fatalf("stored %+v, %v", b, err)
	}
	// Update with version 0 means "current": no conflict, generation moves.
	upd := manifests()
	upd.Manifests = append(upd.Manifests, json.RawMessage(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"y","namespace":"n"}}`))
	if err := env.write(t, ce.SpecRequest{Action: ce.ActionUpdate, BundleID: "b-1", Consumer: "c1", Meta: meta, Spec: upd}); err != nil {
		t.Fatal(err)
	}
	b, _ = env.st.GetBundle(context.Background(), "b-1")
	if b.Generation != 2 || len(b.Spec.Manifests) != 2 || len(env.st.expected) != 1 || env.st.expected[0] != 0 {
		t.Fatalf("after update: generation %d, %d manifests, expected generations %v", b.Generation, len(b.Spec.Manifests), env.st.expected)
	}
	env.mu.Lock()
	if len(env.notified) != 2 || env.notified[0] != "c1" {
		t.Errorf("notified %v; want c1 twice", env.notified)
	}
	env.mu.Unlock()

	// Errors reach the client as Kubernetes status errors.
	err = env.write(t, ce.SpecRequest{Action: ce.ActionCreate, BundleID: "b-1", Consumer: "c1", Meta: meta, Spec: manifests()})
	if status.Code(err) != codes.AlreadyExists || k8sReason(t, err) != metav1.StatusReasonAlreadyExists {
		t.Errorf("duplicate create = %v", err)
	}
	err = env.write(t, ce.SpecRequest{Action: ce.ActionCreate, BundleID: "b-2", Consumer: "c1", Meta: meta})
	if status.Code(err) != codes.InvalidArgument || k8sReason(t, err) != metav1.StatusReasonBadRequest {
		t.Errorf("invalid create = %v", err)
	}
	err = env.write(t, ce.SpecRequest{Action: ce.ActionCreate, BundleID: "b-3", Consumer: "ghost", Meta: meta, Spec: manifests()})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("create for an unknown consumer = %v", err)
	}
	err = env.write(t, ce.SpecRequest{Action: ce.ActionUpdate, BundleID: "nope", Consumer: "c1", Meta: meta, Spec: manifests()})
	if status.Code(err) != codes.NotFound || k8sReason(t, err) != metav1.StatusReasonNotFound {
		t.Errorf("update of an unknown bundle = %v", err)
	}

	// Live status with strictly increasing sequence ids.
	var last int64
	for i, reason := range []string{"A", "B", "C"} {
		env.st.setStatus("b-1", applied(reason), env.seq.NextString())
		s := env.status(t)
		n, err := strconv.ParseInt(s.SequenceID, 10, 64)
		if err != nil || n <= last {
			t.Fatalf("status %d: sequenceid %q not above %d", i, s.SequenceID, last)
		}
		last = n
		if s.BundleID != "b-1" || s.Generation != 2 || s.Consumer != "c1" || s.Reported.Conditions[0].Reason != reason {
			t.Fatalf("status %d = %+v", i, s)
		}
	}

	// Delete: marked deleting, then purged → Deleted=True completes it.
	if err := env.write(t, ce.SpecRequest{Action: ce.ActionDelete, BundleID: "b-1", Consumer: "c1", Meta: meta}); err != nil {
		t.Fatal(err)
	}
	if b, _ := env.st.GetBundle(context.Background(), "b-1"); b.DeletedAt == nil {
		t.Fatal("delete did not mark the bundle deleting")
	}
	// A create while the old bundle is being deleted says so and names the way out.
	err = env.write(t, ce.SpecRequest{Action: ce.ActionCreate, BundleID: "b-1", Consumer: "c1", Meta: meta, Spec: manifests()})
	if status.Code(err) != codes.Aborted || k8sReason(t, err) != metav1.StatusReasonConflict ||
		!strings.Contains(err.Error(), "still being deleted since") || !strings.Contains(err.Error(), "b-1?orphan=true") {
		t.Errorf("create while deleting = %v; want a Conflict naming DELETE …?orphan=true", err)
	}
	env.st.purge("b-1")
	s := env.status(t)
	for s.BundleID == "b-1" && !ce.IsDeleted(s.Reported) { // the deletion's own change may come first
		s = env.status(t)
	}
	if s.BundleID != "b-1" || !ce.IsDeleted(s.Reported) || s.SequenceID == "" {
		t.Fatalf("after purge got %+v; want Deleted=True for b-1", s)
	}
	// Deleting what is already gone answers Deleted at once.
	if err := env.write(t, ce.SpecRequest{Action: ce.ActionDelete, BundleID: "gone", Consumer: "c1"}); err != nil {
		t.Fatal(err)
	}
	if s := env.status(t); s.BundleID != "gone" || !ce.IsDeleted(s.Reported) {
		t.Fatalf("delete of a missing bundle: got %+v", s)
	}
}

func TestSourceStatusResync(t *testing.T) {
	env := newSourceEnv(t, "")
	for _, id := range []string{"b-1", "b-2", "b-3"} {
		if err := env.write(t, ce.SpecRequest{Action: ce.ActionCreate, BundleID: id, Consumer: "c1", Spec: manifests()}); err != nil {
			t.Fatal(err)
		}
	}
	env.st.setStatus("b-1", applied("one"), env.seq.NextString())
	env.st.setStatus("b-2", applied("two"), env.seq.NextString())
	for i := 0; i < 2; i++ { // live updates
		env.status(t)
	}
	// b-3 has no status yet: nothing to send for it.
	resync := func(hashes map[string]string) {
		t.Helper()
		if err := env.publish(t, ce.EncodeStatusResync(ce.StatusResync{Source: "cs", Hashes: hashes}, time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	resync(nil)
	got := map[string]ce.SourceStatus{}
	for i := 0; i < 2; i++ {
		s := env.status(t)
		got[s.BundleID] = s
	}
	if got["b-1"].Reported.Conditions[0].Reason != "one" || got["b-2"].Reported.Conditions[0].Reason != "two" {
		t.Fatalf("resync sent %+v", got)
	}
	env.stream.none(t, 100*time.Millisecond)

	// The client holds b-1 current and b-2 stale, and a bundle that is gone.
	h1, _ := ce.SourceStatusHash(applied("one"))
	resync(map[string]string{"b-1": h1, "b-2": "stale", "old": "x"})
	seen := map[string]bool{}
	for i := 0; i < 2; i++ {
		s := env.status(t)
		seen[s.BundleID] = true
		switch s.BundleID {
		case "b-2":
			if s.Reported.Conditions[0].Reason != "two" {
				t.Errorf("b-2 resent as %+v", s)
			}
		case "old":
			if !ce.IsDeleted(s.Reported) {
				t.Errorf("missing bundle sent without Deleted=True: %+v", s)
			}
		default:
			t.Errorf("resync sent %s, whose hash matched", s.BundleID)
		}
	}
	if !seen["b-2"] || !seen["old"] {
		t.Errorf("resync sent %v; want b-2 and old", seen)
	}
	env.stream.none(t, 100*time.Millisecond)
}

// Statuses of another source's bundles never reach this source.
func TestSourceStatusIsolation(t *testing.T) {
	env := newSourceEnv(t, "")
	other := env.st
	if _, err := other.CreateBundle(context.Background(), bundleOf("x-1", "other")); err != nil {
		t.Fatal(err)
	}
	other.setStatus("x-1", applied("x"), env.seq.NextString())
	if err := env.write(t, ce.SpecRequest{Action: ce.ActionCreate, BundleID: "b-1", Consumer: "c1", Spec: manifests()}); err != nil {
		t.Fatal(err)
	}
	env.st.setStatus("b-1", applied("mine"), env.seq.NextString())
	if s := env.status(t); s.BundleID != "b-1" {
		t.Fatalf("got status of %s", s.BundleID)
	}
	err := env.write(t, ce.SpecRequest{Action: ce.ActionUpdate, BundleID: "x-1", Consumer: "c1", Spec: manifests()})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("update of another source's bundle = %v; want PermissionDenied", err)
	}
}

func TestSourceHeartbeat(t *testing.T) {
	feed := newFakeFeed()
	srv, _ := startServer(t, Config{Agents: newFakeHub(), Bundles: newFakeStore(feed), Changes: feed,
		HeartbeatInterval: 30 * time.Millisecond})
	stream, err := rawClient(t, srv.SourceAddr()).Subscribe(context.Background(),
		&pb.SubscriptionRequest{Source: "cs", DataType: ce.DataType})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-readStream(stream).events:
		if ev.GetType() != ce.TypeHeartbeat {
			t.Fatalf("first event %s; want a heartbeat", ev.GetType())
		}
	case <-time.After(wait):
		t.Fatal("no heartbeat")
	}
}

// A subscriber the feed drops resubscribes from the last change it saw and
// keeps streaming.
func TestSourceFeedDropResumes(t *testing.T) {
	env := newSourceEnv(t, "")
	if err := env.write(t, ce.SpecRequest{Action: ce.ActionCreate, BundleID: "b-1", Consumer: "c1", Spec: manifests()}); err != nil {
		t.Fatal(err)
	}
	env.st.setStatus("b-1", applied("one"), env.seq.NextString())
	env.status(t)
	env.feed.dropAll()
	for deadline := time.Now().Add(wait); env.feed.count() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("never resubscribed")
		}
	}
	if s := env.feed.sinces(); len(s) != 2 || s[0] != FromNow || s[1] != env.st.seq {
		t.Fatalf("Subscribe since values %v; want [%d %d]", s, FromNow, env.st.seq)
	}
	env.st.setStatus("b-1", applied("two"), env.seq.NextString())
	if s := env.status(t); s.Reported.Conditions[0].Reason != "two" {
		t.Fatalf("after resubscribe got %+v", s)
	}
}

func TestToStatus(t *testing.T) {
	tests := map[string]struct {
		err    error
		code   codes.Code
		reason metav1.StatusReason // "" when the message is plain text
	}{
		"invalid":     {&invalidError{errors.New("bad")}, codes.InvalidArgument, metav1.StatusReasonBadRequest},
		"exists":      {&bundlewrite.ExistsError{}, codes.AlreadyExists, metav1.StatusReasonAlreadyExists},
		"deleting":    {&bundlewrite.DeletingError{Current: store.Bundle{DeletedAt: new(time.Time)}}, codes.Aborted, metav1.StatusReasonConflict},
		"no consumer": {fmt.Errorf("x: %w", bundlewrite.ErrNoConsumer), codes.InvalidArgument, metav1.StatusReasonBadRequest},
		"field":       {validate.Errors{&validate.FieldError{Field: "manifests", Msg: "required"}}, codes.InvalidArgument, metav1.StatusReasonBadRequest},
		"forbidden":   {&forbiddenError{errors.New("no")}, codes.PermissionDenied, metav1.StatusReasonForbidden},
		"not found":   {fmt.Errorf("x: %w", store.ErrNotFound), codes.NotFound, metav1.StatusReasonNotFound},
		"conflict":    {fmt.Errorf("x: %w", store.ErrConflict), codes.Aborted, metav1.StatusReasonConflict},
		"internal":    {errors.New("disk on fire"), codes.Internal, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := toStatus(tc.err, "w")
			if status.Code(err) != tc.code {
				t.Fatalf("code = %v; want %v", status.Code(err), tc.code)
			}
			if tc.reason != "" && k8sReason(t, err) != tc.reason {
				t.Errorf("reason = %v; want %v", k8sReason(t, err), tc.reason)
			}
		})
	}
}

func TestSourceUpdateVersionAndScope(t *testing.T) {
	env := newSourceEnv(t, "")
	if err := env.write(t, ce.SpecRequest{Action: ce.ActionCreate, BundleID: "b-1", Consumer: "c1", Spec: manifests()}); err != nil {
		t.Fatal(err)
	}
	// A non-zero version must match the current generation.
	err := env.write(t, ce.SpecRequest{Action: ce.ActionUpdate, BundleID: "b-1", Consumer: "c1", Version: 5, Spec: manifests()})
	if status.Code(err) != codes.Aborted {
		t.Errorf("stale version = %v; want Aborted", err)
	}
	if err := env.write(t, ce.SpecRequest{Action: ce.ActionUpdate, BundleID: "b-1", Consumer: "c1", Version: 1, Spec: manifests()}); err != nil {
		t.Errorf("matching version: %v", err)
	}
	err = env.write(t, ce.SpecRequest{Action: ce.ActionUpdate, BundleID: "b-1", Consumer: "c2", Spec: manifests()})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("moving a bundle to another consumer = %v; want InvalidArgument", err)
	}
	env.st.setStatus("b-1", applied("one"), env.seq.NextString())
	env.status(t)
	// A resync scoped to another consumer sends nothing for c1's bundles.
	if err := env.publish(t, ce.EncodeStatusResync(ce.StatusResync{Source: "cs", Consumer: "c2"}, time.Now())); err != nil {
		t.Fatal(err)
	}
	env.stream.none(t, 100*time.Millisecond)
	if err := env.publish(t, ce.EncodeStatusResync(ce.StatusResync{Source: "cs", Consumer: "c1"}, time.Now())); err != nil {
		t.Fatal(err)
	}
	if s := env.status(t); s.BundleID != "b-1" {
		t.Errorf("resync for c1 sent %+v", s)
	}
}

func mustSnowflake() *snowflake.Generator {
	g, err := snowflake.New(1)
	if err != nil {
		panic(err)
	}
	return g
}

// TestSourceMetricsMaestroNames: the source port exports Maestro's metric
// names with the values of what happened.
func TestSourceMetricsMaestroNames(t *testing.T) {
	env := newSourceEnv(t, "")
	if err := env.write(t, ce.SpecRequest{Action: ce.ActionCreate, BundleID: "b-1", Consumer: "c1",
		Meta: api.ObjectMeta{Name: "work"}, Spec: manifests()}); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP grpc_server_registered_source_clients Subscribe streams of source clients open now, by source.
# TYPE grpc_server_registered_source_clients gauge
grpc_server_registered_source_clients{source="cs"} 1
# HELP cloudevents_received_total CloudEvents received from source clients, by source and event type.
# TYPE cloudevents_received_total counter
cloudevents_received_total{source="cs",type="` + ce.TypeSpecCreate + `"} 1
`
	if err := testutil.GatherAndCompare(env.reg, strings.NewReader(want),
		"grpc_server_registered_source_clients", "cloudevents_received_total"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(env.reg, "grpc_server_processed_total", "grpc_server_processed_duration_seconds"); err != nil || n < 2 {
		t.Fatalf("grpc_server_processed_*: %d series, %v", n, err)
	}
}

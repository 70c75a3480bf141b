package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/client"
	"github.com/baton-dev/baton/internal/transport/cloudevents"
	batongrpc "github.com/baton-dev/baton/internal/transport/grpc"
	"github.com/baton-dev/baton/internal/transport/grpc/pb"
	"github.com/baton-dev/baton/pkg/api"
)

// grpcSource is the source id of the workload's gRPC source client.
const grpcSource = "chaos-source"

// slot states in the model of what REST acknowledged.
const (
	absent  = iota // no bundle of this name, or only ones whose delete was acknowledged
	present        // the bundle id at version with value, as the last acknowledged write left it
	unknown        // the last write's outcome is not known (no answer): resolved by a read
)

// slot is one bundle name of a consumer and the model of its state. A
// gRPC slot is written as a Maestro source client would, through the
// server's CloudEvents port: its bundles are named by their ids (uuids),
// and a recreate reuses the last id half of the time.
type slot struct {
	name     string
	object   string // ConfigMap name in the agent's namespace
	readOnly bool   // ReadOnly bundle observing an object the runner owns; else ServerSideApply
	grpc     bool
	state    int
	id       string
	version  int64
	value    string // SSA: data.v; ReadOnly: label gen of the manifest
	// before is the state before the write whose outcome is unknown, pending
	// that write ("create", "update", "delete"); must is the value an
	// acknowledged write whose new version is not known yet left (gRPC
	// acknowledgements carry no version).
	before  int
	pending string
	must    string
	deleted map[string]bool // ids whose delete was acknowledged (or resolved)
	ids     map[string]bool // every id a gRPC slot used
}

// history is every acknowledged operation's effect, shared by workers and checker.
type history struct {
	mu    sync.Mutex
	slots map[string][]*slot // consumer → slots
	live  map[string]*liveObject
	// lost collects anomalies seen when resolving an unknown outcome (a
	// version that went backwards, an acknowledged bundle gone).
	lost []string
	ops  atomic.Int64
	// rejected and indeterminate count writes REST refused or did not answer.
	rejected, indeterminate atomic.Int64
}

// liveObject is the history of one incarnation (uid) of an object the
// runner created in the cluster: its values, and when it was deleted.
type liveObject struct {
	key     string // namespace/name
	deleted time.Time
	values  []liveValue
}

// liveValue is one value the object held; end is when the call that
// replaced it returned (zero while current).
type liveValue struct {
	value string
	end   time.Time
}

// worker runs one consumer's workload: REST writes of its bundles and live
// changes of its ReadOnly objects, one at a time, from its own seeded RNG.
type worker struct {
	w       *world
	a       *agent
	h       *history
	rng     *rand.Rand
	slots   []*slot
	liveUID map[string]string // object → uid of the live ReadOnly object ("" if none)
	n       int
}

func (k *worker) run(ctx context.Context, every time.Duration) {
	for ctx.Err() == nil {
		k.step(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(every):
		}
	}
}

func (k *worker) step(ctx context.Context) {
	s := k.slots[k.rng.Intn(len(k.slots))]
	k.n++
	if s.readOnly && k.rng.Intn(3) == 0 {
		k.liveChange(ctx, s)
		return
	}
	switch s.state {
	case unknown:
		k.resolve(ctx, s)
	case absent:
		k.create(ctx, s)
	case present:
		if k.rng.Intn(4) == 0 {
			k.delete(ctx, s)
		} else {
			k.update(ctx, s)
		}
	}
}

// outcome sorts a REST or gRPC error: nil is acknowledged; a refusal
// (4xx but 409; gRPC InvalidArgument, NotFound, AlreadyExists,
// PermissionDenied) changed nothing; anything else leaves the outcome of
// the write (pending) unknown.
func (k *worker) outcome(s *slot, pending string, err error) (acked bool) {
	if err == nil {
		k.h.ops.Add(1)
		return true
	}
	var e *client.Error
	refused := errors.As(err, &e) && e.StatusCode >= 400 && e.StatusCode < 500 && e.StatusCode != 409
	switch status.Code(err) {
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.PermissionDenied:
		refused = true
	}
	if refused {
		k.h.rejected.Add(1)
		return false
	}
	k.h.indeterminate.Add(1)
	k.h.mu.Lock()
	s.before, s.state, s.pending = s.state, unknown, pending
	k.h.mu.Unlock()
	return false
}

// acked records a gRPC write's acknowledgement: the new version is read
// back later, and must then show value.
func (k *worker) acked(s *slot, pending, value string) {
	k.h.mu.Lock()
	s.before, s.state, s.pending, s.must = s.state, unknown, pending, value
	k.h.mu.Unlock()
}

func (k *worker) bundle(s *slot, value string) *api.ResourceBundle {
	manifest := map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": s.object, "namespace": k.a.ns}}
	strategy := workv1.UpdateStrategyTypeServerSideApply
	var del *workv1.DeleteOption
	if s.readOnly {
		strategy = workv1.UpdateStrategyTypeReadOnly
		manifest["metadata"].(map[string]any)["labels"] = map[string]any{"gen": value}
		del = &workv1.DeleteOption{PropagationPolicy: workv1.DeletePropagationPolicyTypeOrphan}
	} else {
		manifest["data"] = map[string]any{"v": value}
	}
	raw, _ := json.Marshal(manifest)
	return &api.ResourceBundle{Name: s.name, ConsumerName: k.a.consumer, Version: s.version,
		Manifests: []json.RawMessage{raw}, DeleteOption: del,
		ManifestConfigs: []workv1.ManifestConfigOption{{
			ResourceIdentifier: workv1.ResourceIdentifier{Resource: "configmaps", Name: s.object, Namespace: k.a.ns},
			UpdateStrategy:     &workv1.UpdateStrategy{Type: strategy},
			FeedbackRules: []workv1.FeedbackRule{{Type: workv1.JSONPathsType,
				JsonPaths: []workv1.JsonPath{{Name: "v", Path: ".data.v"}}}},
		}}}
}

func (k *worker) nextValue() string { return fmt.Sprintf("%s-%d", k.a.consumer, k.n) }

// publish sends a spec request through a replica's gRPC source port.
func (k *worker) publish(ctx context.Context, action string, s *slot, value string) error {
	r := cloudevents.SpecRequest{Action: action, BundleID: s.id, Consumer: k.a.consumer, Source: grpcSource,
		Meta: api.ObjectMeta{Name: s.name, Namespace: k.a.consumer}}
	switch action {
	case cloudevents.ActionUpdate:
		r.Version = s.version
	case cloudevents.ActionDelete:
		r.DeletionTimestamp = time.Now()
	}
	if action != cloudevents.ActionDelete {
		b := k.bundle(s, value)
		r.Spec = api.BundleSpec{Manifests: b.Manifests, ManifestConfigs: b.ManifestConfigs, DeleteOption: b.DeleteOption}
	}
	ev, err := cloudevents.EncodeSpecRequest(r, time.Now())
	if err != nil {
		return err
	}
	pev, err := batongrpc.ToPB(ev)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	srv := k.w.servers[k.rng.Intn(len(k.w.servers))]
	_, err = srv.source.Publish(ctx, &pb.PublishRequest{Event: pev})
	return err
}

func (k *worker) create(ctx context.Context, s *slot) {
	v := k.nextValue()
	if s.grpc {
		if s.id == "" || k.rng.Intn(2) == 0 {
			s.id = uuid.NewString()
		}
		k.h.mu.Lock()
		s.ids[s.id] = true
		k.h.mu.Unlock()
		if err := k.publish(ctx, cloudevents.ActionCreate, s, v); k.outcome(s, "create", err) {
			k.acked(s, "create", v)
		}
		return
	}
	s.version = 0
	b, err := k.w.cli().CreateBundle(ctx, k.bundle(s, v))
	if k.outcome(s, "create", err) {
		k.h.mu.Lock()
		// Ids are derived from consumer and name: a recreate reuses the id.
		s.state, s.id, s.version, s.value = present, b.ID, b.Version, v
		delete(s.deleted, b.ID)
		k.h.mu.Unlock()
	}
}

func (k *worker) update(ctx context.Context, s *slot) {
	v := k.nextValue()
	if s.grpc {
		if err := k.publish(ctx, cloudevents.ActionUpdate, s, v); k.outcome(s, "update", err) {
			k.acked(s, "update", v)
		}
		return
	}
	b, err := k.w.cli().UpdateBundle(ctx, s.id, k.bundle(s, v))
	if k.outcome(s, "update", err) {
		k.h.mu.Lock()
		s.version, s.value = b.Version, v
		k.h.mu.Unlock()
	}
}

func (k *worker) delete(ctx context.Context, s *slot) {
	var err error
	if s.grpc {
		err = k.publish(ctx, cloudevents.ActionDelete, s, "")
	} else {
		err = k.w.cli().DeleteBundle(ctx, s.id)
	}
	if k.outcome(s, "delete", err) {
		k.h.mu.Lock()
		s.state = absent
		s.deleted[s.id] = true
		k.h.mu.Unlock()
	}
}

// resolve reads a slot whose last write got no answer (or a gRPC
// acknowledgement without a version) and adopts what REST shows, checking
// that it is a possible outcome of that write.
func (k *worker) resolve(ctx context.Context, s *slot) {
	all, err := k.w.cli().AllBundles(ctx, client.ListOptions{Search: "consumer_name=" + client.Quote(k.a.consumer)})
	if err != nil {
		return
	}
	var cur *api.ResourceBundle
	for i := range all {
		if (!s.grpc && all[i].Name == s.name) || (s.grpc && all[i].ID == s.id) {
			cur = &all[i]
		}
	}
	k.h.mu.Lock()
	defer k.h.mu.Unlock()
	key := k.a.consumer + "/" + s.name
	gone := cur == nil || cur.DeletedAt != nil
	switch {
	case s.must != "" && (gone || manifestValue(cur, s.readOnly) != s.must || (s.pending == "update" && cur.Version <= s.version)):
		k.h.lost = append(k.h.lost, fmt.Sprintf("%s: acknowledged gRPC %s of %s to %q; REST shows %s", key, s.pending, s.id, s.must, describe(cur, s.readOnly)))
	case s.pending == "update" && (gone || cur.ID != s.id || cur.Version < s.version):
		k.h.lost = append(k.h.lost, fmt.Sprintf("%s: acknowledged id %s version %d; after an unanswered update REST shows %s",
			key, s.id, s.version, describe(cur, s.readOnly)))
	case s.pending == "delete" && !gone && (cur.ID != s.id || cur.Version != s.version):
		k.h.lost = append(k.h.lost, fmt.Sprintf("%s: acknowledged id %s version %d; after an unanswered delete REST shows %s",
			key, s.id, s.version, describe(cur, s.readOnly)))
	}
	s.must, s.pending = "", ""
	switch {
	case cur == nil:
		s.state = absent
	case cur.DeletedAt != nil:
		s.deleted[cur.ID] = true
		s.state = absent
	default:
		delete(s.deleted, cur.ID)
		s.state, s.id, s.version, s.value = present, cur.ID, cur.Version, manifestValue(cur, s.readOnly)
	}
}

func describe(b *api.ResourceBundle, readOnly bool) string {
	switch {
	case b == nil:
		return "no bundle"
	case b.DeletedAt != nil:
		return fmt.Sprintf("bundle %s version %d deleting", b.ID, b.Version)
	}
	return fmt.Sprintf("bundle %s version %d value %q", b.ID, b.Version, manifestValue(b, readOnly))
}

// manifestValue is the value a bundle's manifest carries (see slot.value).
func manifestValue(b *api.ResourceBundle, readOnly bool) string {
	if len(b.Manifests) == 0 {
		return ""
	}
	var m struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
		Data map[string]string `json:"data"`
	}
	_ = json.Unmarshal(b.Manifests[0], &m)
	if readOnly {
		return m.Metadata.Labels["gen"]
	}
	return m.Data["v"]
}

// liveChange changes a ReadOnly slot's object directly in the cluster:
// create it, change its value, or delete it (recreated later with a new uid).
func (k *worker) liveChange(ctx context.Context, s *slot) {
	cms := k.w.kube.CoreV1().ConfigMaps(k.a.ns)
	key := k.a.ns + "/" + s.object
	uid := k.liveUID[s.object]
	v := k.nextValue()
	switch {
	case uid == "":
		cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: s.object},
			Data: map[string]string{"v": v}}, metav1.CreateOptions{})
		if err != nil {
			return
		}
		k.liveUID[s.object] = string(cm.UID)
		k.h.mu.Lock()
		k.h.live[string(cm.UID)] = &liveObject{key: key, values: []liveValue{{value: v}}}
		k.h.mu.Unlock()
	case k.rng.Intn(3) == 0:
		err := cms.Delete(ctx, s.object, metav1.DeleteOptions{})
		if err != nil {
			return
		}
		now := time.Now()
		k.liveUID[s.object] = ""
		k.h.mu.Lock()
		o := k.h.live[uid]
		o.deleted = now
		o.values[len(o.values)-1].end = now
		k.h.mu.Unlock()
	default:
		cm, err := cms.Get(ctx, s.object, metav1.GetOptions{})
		if err != nil {
			return
		}
		cm.Data = map[string]string{"v": v}
		if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			return
		}
		now := time.Now()
		k.h.mu.Lock()
		o := k.h.live[uid]
		o.values[len(o.values)-1].end = now
		o.values = append(o.values, liveValue{value: v})
		k.h.mu.Unlock()
	}
	k.h.ops.Add(1)
}

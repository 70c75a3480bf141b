package agent

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/agent/apply"
	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/pkg/api"
)

// bundle is the agent's view of one bundle it holds. Fields are guarded by
// Agent.mu; a worker copies what it needs, works unlocked, and stores its
// results only if the desired generation did not move meanwhile.
type bundle struct {
	id string

	// Desired state, from the last accepted Spec (or the record at start).
	gen       int64
	inc       string // incarnation (generation space) of gen; "" unknown
	deleting  bool
	deleteOpt *workv1.DeleteOption
	meta      api.ObjectMeta
	spec      api.BundleSpec
	manifests []*unstructured.Unstructured // decoded spec.Manifests (nil entries: undecodable)

	// Progress.
	appliedGen int64 // generation of the last Apply that returned a Result
	ackedGen   int64 // highest generation acknowledged to the server
	needApply  bool  // apply (again) at the next sync
	dirty      bool  // an observed object changed: check for drift
	seeded     bool  // results come from the record: report, then apply
	revive     bool  // taken anew after its removal: the reporter must report it again
	reread     bool  // the server asked for its status: read the objects from the API server and report
	seedTries  int   // syncs spent waiting for caches while seeded
	results    []apply.ObjectResult
	prev       []api.ResourceStatus // last evaluation, per manifest
	prevConds  []metav1.Condition   // last bundle conditions
}

func newBundle(id string) *bundle { return &bundle{id: id} }

// bundleFromRecord rebuilds a held bundle from its in-cluster record. The
// recorded generation counts as acknowledged (it was, before the restart).
func bundleFromRecord(r apply.Record) *bundle {
	b := newBundle(r.BundleID)
	b.setDesired(r.Generation, r.Deleting, r.DeleteOption, r.Meta, r.Spec)
	b.inc = r.Incarnation
	b.ackedGen = r.Generation
	if res, ok := seedResults(r, b.manifests); ok && !r.Deleting {
		b.results, b.seeded = res, true
	}
	return b
}

// seedResults rebuilds apply results from a record, so the bundle can be
// observed and reported before it is applied again. It fails unless every
// manifest matches a recorded object (an absent or failed one is not
// recorded: such bundles wait for their apply).
func seedResults(r apply.Record, manifests []*unstructured.Unstructured) ([]apply.ObjectResult, bool) {
	if len(manifests) == 0 {
		return nil, false
	}
	out := make([]apply.ObjectResult, len(manifests))
	for i, m := range manifests {
		if m == nil {
			return nil, false
		}
		gvk := m.GroupVersionKind()
		j := slices.IndexFunc(r.Objects, func(o apply.RecordedObject) bool {
			return !o.Removing && o.Group == gvk.Group && o.Kind == gvk.Kind && o.Name == m.GetName() &&
				(o.Namespace == m.GetNamespace() || m.GetNamespace() == "")
		})
		if j < 0 {
			return nil, false
		}
		o := r.Objects[j]
		out[i] = apply.ObjectResult{Ordinal: i, GVK: gvk,
			GVR:       schema.GroupVersionResource{Group: o.Group, Version: o.Version, Resource: o.Resource},
			Namespace: o.Namespace, Name: o.Name, Strategy: o.Strategy, Outcome: apply.Unchanged,
			Owned: o.Owned, Exists: true, UID: o.UID}
	}
	return out, true
}

// setDesired takes a new desired generation.
func (b *bundle) setDesired(gen int64, deleting bool, opt *workv1.DeleteOption, meta api.ObjectMeta, spec api.BundleSpec) {
	b.gen, b.deleting, b.deleteOpt, b.meta, b.spec = gen, deleting, opt, meta, spec
	b.manifests = decodeManifests(spec)
	b.needApply = !deleting
	b.seeded = false
}

// accepts says whether s is news for b: a spec of another incarnation
// (whose generations do not compare with b's: the server's database was
// restored, or the consumer recreated), a newer generation, or the
// deletion of the generation b holds.
func (b *bundle) accepts(s *protocol.Spec) bool {
	if s.Incarnation != b.inc {
		return true
	}
	if s.Generation != b.gen {
		return s.Generation > b.gen
	}
	return s.Deleting && !b.deleting
}

// takeIncarnation moves b to incarnation inc: what it acknowledged and
// applied counts in another generation space, so nothing of inc is yet.
func (b *bundle) takeIncarnation(inc string) {
	if b.inc != inc {
		b.inc, b.ackedGen, b.appliedGen = inc, 0, 0
	}
}

func decodeManifests(spec api.BundleSpec) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, len(spec.Manifests))
	for i, raw := range spec.Manifests {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err == nil {
			out[i] = u
		}
	}
	return out
}

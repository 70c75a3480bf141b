package apply

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/fieldpath"
)

// AnnotationManifestHash records, on an object applied with OnSpokeChange
// ignoreFields, the hash of the manifest last applied to it: while the
// manifest keeps that hash, fields changed on the cluster are kept.
const AnnotationManifestHash = "baton.dev/manifest-hash"

// ReasonIgnoreFieldError: an ignoreFields expression cannot be resolved on
// the manifest (Open Cluster Management's reason).
const ReasonIgnoreFieldError = workv1.AppliedManifestSSAIgnoreFieldError

// ssaConfig returns the apply configuration for server-side apply: obj (the
// manifest as it is to be sent, maybe stamped) where every field an active
// ignoreFields entry names takes the live object's value, or is left out
// when the live object lacks it. Ownership of an ignored field is thus
// shared at its live value, never taken over or dropped, so server-side
// apply neither overwrites it nor removes it.
//
// Entries are active only while the object exists:
//   - OnSpokePresent (the default): always once the object exists; the
//     manifest's value is used only to create it;
//   - OnSpokeChange: while the manifest is the one last applied (its hash
//     equals the object's AnnotationManifestHash), so a field changed on
//     the cluster is kept until the manifest itself changes, which applies
//     the manifest's value again.
//
// Paths are resolved on manifest (the bundle's manifest, unstamped); an
// expression that cannot be resolved is an error, whatever the live state.
func ssaConfig(manifest, obj, live *unstructured.Unstructured, cfg *workv1.ServerSideApplyConfig) (*unstructured.Unstructured, error) {
	if cfg == nil || len(cfg.IgnoreFields) == 0 {
		return obj, nil
	}
	out := obj.DeepCopy()
	hash := ""
	for _, f := range cfg.IgnoreFields {
		if f.Condition == workv1.IgnoreFieldsConditionOnSpokeChange {
			hash = manifestHash(manifest, cfg)
			ann := out.GetAnnotations()
			if ann == nil {
				ann = map[string]string{}
			}
			ann[AnnotationManifestHash] = hash
			out.SetAnnotations(ann)
			break
		}
	}
	for _, f := range cfg.IgnoreFields {
		paths, err := fieldpath.Locate(manifest.Object, f)
		if err != nil {
			return nil, err
		}
		active := live != nil
		if f.Condition == workv1.IgnoreFieldsConditionOnSpokeChange {
			active = active && live.GetAnnotations()[AnnotationManifestHash] == hash
		}
		if !active {
			continue
		}
		for _, p := range paths {
			if v, ok := liveValue(manifest.Object, live.Object, p); ok {
				fieldpath.Set(out.Object, p, runtime.DeepCopyJSONValue(v))
			} else {
				fieldpath.Remove(out.Object, p)
			}
		}
	}
	return out, nil
}

// liveValue reads the value at p (a path in want) from live. Lists of
// named elements (containers, ports with names, …) are matched by name,
// so an ignored container field reads the same container's live value
// whatever the order; other lists by index.
func liveValue(want, live map[string]any, p fieldpath.Path) (any, bool) {
	var w, l any = want, live
	for _, e := range p {
		switch lc := l.(type) {
		case map[string]any:
			k, _ := e.(string)
			wm, _ := w.(map[string]any)
			var ok bool
			if l, ok = lc[k]; !ok {
				return nil, false
			}
			w = wm[k]
		case []any:
			wl, _ := w.([]any)
			i, err := fieldpath.Index(e)
			if err != nil || i < 0 || i >= len(wl) {
				return nil, false
			}
			w = wl[i]
			if j := byName(lc, w); j >= 0 {
				l = lc[j]
				continue
			}
			if i >= len(lc) {
				return nil, false
			}
			l = lc[i]
		default:
			return nil, false
		}
	}
	return l, true
}

// byName is the index in list of the element named like elem (a map with
// a string "name"), -1 when elem has no name or no element matches.
func byName(list []any, elem any) int {
	em, _ := elem.(map[string]any)
	name, ok := em["name"].(string)
	if !ok {
		return -1
	}
	for j, x := range list {
		if xm, _ := x.(map[string]any); xm["name"] == name {
			return j
		}
	}
	return -1
}

// manifestHash identifies a manifest and its ignore rules, independent of
// the namespace the applier defaults.
func manifestHash(manifest *unstructured.Unstructured, cfg *workv1.ServerSideApplyConfig) string {
	m := manifest.DeepCopy()
	m.SetNamespace("")
	body, _ := json.Marshal(struct {
		M map[string]any       `json:"m"`
		I []workv1.IgnoreField `json:"i"`
	}{m.Object, cfg.IgnoreFields})
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:16])
}

// DriftBaseline returns what the live object of a server-side applied
// manifest is expected to hold: the manifest with its active ignoreFields
// at their live values (ssaConfig). A field the bundle ignores therefore
// never counts as drift. Other strategies, and manifests whose ignore
// expressions fail, get the manifest unchanged.
func DriftBaseline(manifest, live *unstructured.Unstructured, configs []workv1.ManifestConfigOption, r ObjectResult) *unstructured.Unstructured {
	if manifest == nil || live == nil || r.Strategy != workv1.UpdateStrategyTypeServerSideApply {
		return manifest
	}
	st := strategyFor(configs, identity{Group: r.GVK.Group, Resource: r.GVR.Resource, Namespace: r.Namespace, Name: r.Name})
	out, err := ssaConfig(manifest, manifest, live, st.ServerSideApply)
	if err != nil {
		return manifest
	}
	return out
}

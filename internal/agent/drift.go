package agent

import (
	"strconv"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/agent/apply"
)

// drifted reports whether the live object (nil: absent) no longer matches
// what the agent applied, so the bundle must be applied again:
//   - ReadOnly objects never drift (they are only read);
//   - CreateOnly objects drift only when deleted (they are created again);
//   - Update and ServerSideApply objects drift when deleted, or when some
//     field the manifest sets has another value.
//
// A cache that has not caught up with the agent's own last write (its
// resourceVersion is older) is not drift. A false positive costs one
// extra apply, which writes nothing when the object already matches.
func drifted(r apply.ObjectResult, manifest, live *unstructured.Unstructured) bool {
	if r.Outcome == apply.Failed || manifest == nil {
		return false
	}
	switch r.Strategy {
	case workv1.UpdateStrategyTypeReadOnly:
		return false
	case workv1.UpdateStrategyTypeCreateOnly:
		return live == nil && r.Exists
	}
	if live == nil {
		return r.Exists
	}
	if older(live.GetResourceVersion(), r.ResourceVersion) {
		return false
	}
	return !containsObject(live.Object, manifest.Object)
}

// older compares resourceVersions numerically when both are numbers (as
// etcd-backed servers produce); otherwise it says false.
func older(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	return err1 == nil && err2 == nil && x < y
}

// containsObject says whether live has every field want (a manifest) sets,
// ignoring what the server owns: status and metadata other than labels
// and annotations. A Secret's stringData is compared through data by the
// server, so it is skipped.
func containsObject(live, want map[string]any) bool {
	for k, w := range want {
		switch k {
		case "status", "apiVersion", "kind", "stringData":
			continue
		case "metadata":
			wm, _ := w.(map[string]any)
			lm, _ := live[k].(map[string]any)
			for _, f := range []string{"labels", "annotations"} {
				if wf, ok := wm[f]; ok && !contains(lm[f], wf) {
					return false
				}
			}
			continue
		}
		if !contains(live[k], w) {
			return false
		}
	}
	return true
}

// contains says whether live holds want: maps by subset, lists element by
// element with equal length, numbers by value, the rest by equality. A
// null in want matches anything (it only removes a field on apply).
func contains(live, want any) bool {
	switch w := want.(type) {
	case nil:
		return true
	case map[string]any:
		l, ok := live.(map[string]any)
		if !ok {
			return len(w) == 0 && live == nil
		}
		for k, wv := range w {
			if !contains(l[k], wv) {
				return false
			}
		}
		return true
	case []any:
		l, ok := live.([]any)
		if !ok {
			return len(w) == 0 && live == nil
		}
		if len(l) != len(w) {
			return false
		}
		for i := range w {
			if !contains(l[i], w[i]) {
				return false
			}
		}
		return true
	case int64, float64, int, int32:
		lf, ok1 := number(live)
		wf, ok2 := number(want)
		return ok1 && ok2 && lf == wf
	default:
		return live == want
	}
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

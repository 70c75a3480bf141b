// Package doctor checks what resource bundles report about objects against
// the objects in a live cluster: existence, uid, resourceVersion and every
// feedback value (re-evaluated from the bundle's feedback rules on the live
// object with internal/evaluate, exactly as the agent evaluates them). It works on baton bundles and on Maestro bundles, which carry no
// "observed" identity; then existence is inferred from the conditions and
// values, and uid and resourceVersion are not compared.
//
// Compare is a pure function; Check reads live objects through a Getter.
package doctor

import (
	"context"
	"fmt"
	"sort"

	"golang.org/x/sync/errgroup"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/evaluate"
	"github.com/baton-dev/baton/pkg/api"
)

// Values printed in place of a value that is not there.
const (
	None           = "<none>"
	ObjectNotFound = "<not found>"
)

// Fields a Mismatch can name besides "feedback.<name>".
const (
	FieldExists          = "exists"
	FieldUID             = "uid"
	FieldResourceVersion = "resourceVersion"
	FeedbackPrefix       = "feedback."
)

// Mismatch is one field on which a bundle's report and the live object disagree.
type Mismatch struct {
	BundleID string `json:"bundleID"`
	Bundle   string `json:"bundle"`
	Consumer string `json:"consumer"`
	// Object is "Kind namespace/name" (or "Kind name" when cluster scoped).
	Object   string `json:"object"`
	Field    string `json:"field"`
	Reported string `json:"reported"`
	Live     string `json:"live"`
}

// Getter reads one live object. It returns (nil, nil) when the object does
// not exist and an error only when it cannot tell.
type Getter interface {
	Get(ctx context.Context, meta workv1.ManifestResourceMeta) (*unstructured.Unstructured, error)
}

// Result is the outcome of Check.
type Result struct {
	// Objects counts the resourceStatus entries checked.
	Objects int `json:"objects"`
	// Bundles counts the bundles checked.
	Bundles    int        `json:"bundles"`
	Mismatches []Mismatch `json:"mismatches"`
	// Errors lists objects that could not be read; they are not verified.
	Errors []ObjectError `json:"errors,omitempty"`
}

// ObjectError is an object Check could not read.
type ObjectError struct {
	BundleID string `json:"bundleID"`
	Bundle   string `json:"bundle"`
	Object   string `json:"object"`
	Error    string `json:"error"`
}

func (e ObjectError) String() string {
	return fmt.Sprintf("bundle %s: %s: %s", e.Bundle, e.Object, e.Error)
}

// OK reports whether every checked object agreed and none failed to read.
func (r Result) OK() bool { return len(r.Mismatches) == 0 && len(r.Errors) == 0 }

// BundleIDs returns the ids of the bundles with mismatches, in first-seen order.
func (r Result) BundleIDs() []string {
	seen := map[string]bool{}
	var ids []string
	for _, m := range r.Mismatches {
		if !seen[m.BundleID] {
			seen[m.BundleID] = true
			ids = append(ids, m.BundleID)
		}
	}
	return ids
}

// UnverifiedIDs returns the ids of bundles with mismatches or unread objects.
func (r Result) UnverifiedIDs() []string {
	ids := make([]string, 0, len(r.unverified()))
	for id := range r.unverified() {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// unverified returns the ids of bundles with mismatches or unread objects.
func (r Result) unverified() map[string]bool {
	ids := map[string]bool{}
	for _, m := range r.Mismatches {
		ids[m.BundleID] = true
	}
	for _, e := range r.Errors {
		ids[e.BundleID] = true
	}
	return ids
}

// CheckConcurrency bounds the live reads Check runs at once (after a
// Prefetcher's lists, most reads do not reach the cluster).
const CheckConcurrency = 8

// Check compares every resourceStatus entry of every bundle with the live
// object. Bundles without status are skipped. Objects are read with at most
// CheckConcurrency reads in flight; the result is in bundle and entry order.
func Check(ctx context.Context, g Getter, bundles []api.ResourceBundle) Result {
	type slot struct {
		mismatches []Mismatch
		err        *ObjectError
	}
	type job struct {
		b  *api.ResourceBundle
		rs *api.ResourceStatus
	}
	res := Result{Mismatches: []Mismatch{}}
	var jobs []job
	for i := range bundles {
		b := &bundles[i]
		if b.Status == nil {
			continue
		}
		res.Bundles++
		for j := range b.Status.ResourceStatus {
			jobs = append(jobs, job{b, &b.Status.ResourceStatus[j]})
		}
	}
	if p, ok := g.(Prefetcher); ok {
		metas := make([]workv1.ManifestResourceMeta, len(jobs))
		for i, jb := range jobs {
			metas[i] = jb.rs.ResourceMeta
		}
		p.Prefetch(ctx, metas)
	}
	slots := make([]slot, len(jobs))
	var eg errgroup.Group
	eg.SetLimit(CheckConcurrency)
	for i, jb := range jobs {
		eg.Go(func() error {
			live, err := g.Get(ctx, jb.rs.ResourceMeta)
			if err != nil {
				slots[i].err = &ObjectError{BundleID: jb.b.ID, Bundle: DisplayName(jb.b), Object: ObjectName(jb.rs.ResourceMeta), Error: err.Error()}
				return nil
			}
			slots[i].mismatches = Compare(jb.b, jb.rs, live)
			return nil
		})
	}
	_ = eg.Wait()
	res.Objects = len(jobs)
	for _, s := range slots {
		if s.err != nil {
			res.Errors = append(res.Errors, *s.err)
		}
		res.Mismatches = append(res.Mismatches, s.mismatches...)
	}
	return res
}

// Compare lists the fields on which rs (an entry of b's status) and live (nil
// when the object does not exist) disagree.
func Compare(b *api.ResourceBundle, rs *api.ResourceStatus, live *unstructured.Unstructured) []Mismatch {
	var out []Mismatch
	add := func(field, reported, liveValue string) {
		out = append(out, Mismatch{BundleID: b.ID, Bundle: DisplayName(b), Consumer: b.ConsumerName,
			Object: ObjectName(rs.ResourceMeta), Field: field, Reported: reported, Live: liveValue})
	}
	exists, known := reportedExists(rs)
	if live == nil {
		if known && exists {
			add(FieldExists, "true", "false")
		}
		for _, v := range rs.StatusFeedbacks.Values {
			add(FeedbackPrefix+v.Name, FormatValue(v.Value), ObjectNotFound)
		}
		return out
	}
	if known && !exists {
		add(FieldExists, "false", "true")
	}
	if uid := rs.Observed.UID; uid != "" && uid != string(live.GetUID()) {
		add(FieldUID, uid, string(live.GetUID()))
	}
	if rv := rs.Observed.ResourceVersion; rv != "" && rv != live.GetResourceVersion() {
		add(FieldResourceVersion, rv, live.GetResourceVersion())
	}
	liveValues, _ := evaluate.Feedback(live, evaluate.FeedbackRulesFor(b.ManifestConfigs, rs.ResourceMeta), nil)
	for _, d := range diffValues(rs.StatusFeedbacks.Values, liveValues) {
		add(FeedbackPrefix+d.name, d.reported, d.live)
	}
	return out
}

// reportedExists tells whether the report claims the object exists, and
// whether the report says so at all. baton reports it in observed (set once
// observedAt is); for Maestro reports it is inferred: Available=True or, when
// there is no Available condition, the presence of feedback values.
func reportedExists(rs *api.ResourceStatus) (exists, known bool) {
	if !rs.Observed.ObservedAt.IsZero() || rs.Observed.Exists {
		return rs.Observed.Exists, true
	}
	if c := findCondition(rs.Conditions, api.ConditionAvailable); c != nil {
		switch {
		case c.Status == metav1.ConditionTrue:
			return true, true
		case c.Reason == api.ReasonNotFound:
			return false, true
		}
		return false, false
	}
	if len(rs.StatusFeedbacks.Values) > 0 {
		return true, true
	}
	return false, false
}

func findCondition(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

type valueDiff struct{ name, reported, live string }

// diffValues compares feedback values by name: reported order first, then
// names only the live object has, sorted.
func diffValues(reported, live []workv1.FeedbackValue) []valueDiff {
	liveByName := map[string]string{}
	for _, v := range live {
		if _, dup := liveByName[v.Name]; !dup {
			liveByName[v.Name] = FormatValue(v.Value)
		}
	}
	seen := map[string]bool{}
	var out []valueDiff
	for _, v := range reported {
		if seen[v.Name] {
			continue
		}
		seen[v.Name] = true
		rep := FormatValue(v.Value)
		lv, ok := liveByName[v.Name]
		if !ok {
			lv = None
		}
		if rep != lv {
			out = append(out, valueDiff{v.Name, rep, lv})
		}
	}
	var extra []string
	for name := range liveByName {
		if !seen[name] {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		out = append(out, valueDiff{name, None, liveByName[name]})
	}
	return out
}

// DisplayName is the name to show for a bundle: its name, else the work
// name in metadata, else its id.
func DisplayName(b *api.ResourceBundle) string {
	switch {
	case b.Name != "" && b.Name != b.ID:
		return b.Name
	case b.Metadata.Name != "":
		return b.Metadata.Name
	case b.Name != "":
		return b.Name
	}
	return b.ID
}

// ObjectName is "Kind namespace/name", or "Kind name" when cluster scoped.
func ObjectName(m workv1.ManifestResourceMeta) string {
	kind := m.Kind
	if kind == "" {
		kind = m.Resource
		if m.Group != "" {
			kind += "." + m.Group
		}
	}
	if m.Namespace == "" {
		return kind + " " + m.Name
	}
	return kind + " " + m.Namespace + "/" + m.Name
}

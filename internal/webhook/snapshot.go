package webhook

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/pkg/api"
)

// snapshot is what the generator remembers of a bundle between changes:
// exactly the parts events report, so old and new values come from it.
type snapshot struct {
	Name       string            `json:"name,omitempty"`
	Consumer   string            `json:"consumer"`
	Source     string            `json:"source,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Freshness  *api.Freshness    `json:"freshness,omitempty"`
	Conditions map[string]string `json:"conditions,omitempty"`
	Objects    []objectSnap      `json:"objects,omitempty"`
}

type objectSnap struct {
	Key        string                     `json:"key"`
	Feedback   map[string]json.RawMessage `json:"feedback,omitempty"`
	Conditions map[string]string          `json:"conditions,omitempty"`
}

// takeSnapshot reduces b (with its verdict f) to a snapshot. Freshness
// keeps state and reason only: its age moves all the time.
func takeSnapshot(b *store.Bundle, f *api.Freshness) snapshot {
	s := snapshot{Name: b.Name, Consumer: b.ConsumerName, Source: b.Source, Labels: b.Meta.Labels,
		Conditions: conditionMap(b.Status.Reported.Conditions)}
	if f != nil {
		s.Freshness = &api.Freshness{State: f.State, Reason: f.Reason}
	}
	for _, rs := range b.Status.Reported.ResourceStatus {
		s.Objects = append(s.Objects, objectSnap{Key: objectKey(rs), Feedback: feedbackMap(rs),
			Conditions: conditionMap(rs.Conditions)})
	}
	return s
}

// tracked lists the condition types whose changes are events.
var tracked = []string{api.ConditionApplied, api.ConditionAvailable}

func conditionMap(cs []metav1.Condition) map[string]string {
	m := map[string]string{}
	for _, c := range cs {
		if slices.Contains(tracked, c.Type) {
			m[c.Type] = string(c.Status)
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

func objectKey(rs api.ResourceStatus) string {
	m := rs.ResourceMeta
	return m.Group + "/" + m.Resource + "/" + m.Namespace + "/" + m.Name + "#" + strconv.Itoa(int(m.Ordinal))
}

// feedbackMap returns an object's feedback values by name, each as the
// JSON of its scalar (or raw JSON) value; none for a missing object.
func feedbackMap(rs api.ResourceStatus) map[string]json.RawMessage {
	if len(rs.StatusFeedbacks.Values) == 0 {
		return nil
	}
	m := map[string]json.RawMessage{}
	for _, v := range rs.StatusFeedbacks.Values {
		var x any
		switch {
		case v.Value.String != nil:
			x = *v.Value.String
		case v.Value.Integer != nil:
			x = *v.Value.Integer
		case v.Value.Boolean != nil:
			x = *v.Value.Boolean
		case v.Value.JsonRaw != nil:
			m[v.Name] = json.RawMessage(*v.Value.JsonRaw)
			continue
		}
		b, _ := json.Marshal(x)
		m[v.Name] = b
	}
	return m
}

// kinds returns the event kinds that differ between old and new (old nil:
// the generator saw no earlier state).
func kinds(old *snapshot, new snapshot) []string {
	if old == nil {
		old = &snapshot{}
	}
	var out []string
	if !sameFreshness(old.Freshness, new.Freshness) {
		out = append(out, api.EventFreshness)
	}
	oldObj := map[string]objectSnap{}
	for _, o := range old.Objects {
		oldObj[o.Key] = o
	}
	feedback, conds := false, !maps.Equal(old.Conditions, new.Conditions)
	for _, o := range new.Objects {
		p := oldObj[o.Key]
		feedback = feedback || !maps.EqualFunc(p.Feedback, o.Feedback, rawEqual)
		conds = conds || !maps.Equal(p.Conditions, o.Conditions)
		delete(oldObj, o.Key)
	}
	for _, p := range oldObj { // objects gone from the status
		feedback = feedback || len(p.Feedback) > 0
		conds = conds || len(p.Conditions) > 0
	}
	if feedback {
		out = append(out, api.EventFeedback)
	}
	if conds {
		out = append(out, api.EventConditions)
	}
	return out
}

func rawEqual(a, b json.RawMessage) bool { return string(a) == string(b) }

func sameFreshness(a, b *api.Freshness) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.State == b.State && a.Reason == b.Reason
}

// eventData builds the CloudEvent data of a change of b from old to new.
func eventData(seq int64, ks []string, b *store.Bundle, f *api.Freshness, old *snapshot, new snapshot) api.WebhookEvent {
	if old == nil {
		old = &snapshot{}
	}
	ev := api.WebhookEvent{Kinds: ks, ChangeSeq: seq, Bundle: api.EventBundle{
		ID: b.ID, Name: b.Name, ConsumerName: b.ConsumerName, Source: b.Source,
		Version: b.Version(), Revision: b.Status.Revision,
	}}
	ev.Freshness.Old, ev.Freshness.New = old.Freshness, f
	ev.Conditions = api.OldNew[map[string]string]{Old: old.Conditions, New: new.Conditions}
	oldObj := map[string]objectSnap{}
	for _, o := range old.Objects {
		oldObj[o.Key] = o
	}
	for i, rs := range b.Status.Reported.ResourceStatus {
		p := oldObj[new.Objects[i].Key]
		ev.Objects = append(ev.Objects, api.EventObject{
			ResourceMeta: rs.ResourceMeta, Observed: rs.Observed,
			Feedback:   api.OldNew[map[string]json.RawMessage]{Old: p.Feedback, New: new.Objects[i].Feedback},
			Conditions: api.OldNew[map[string]string]{Old: p.Conditions, New: new.Objects[i].Conditions},
		})
	}
	return ev
}

// deletedData is the data of a deleted bundle's event, from its last snapshot.
func deletedData(seq int64, c store.Change, old *snapshot) api.WebhookEvent {
	ev := api.WebhookEvent{Kinds: []string{api.EventDeleted}, ChangeSeq: seq, Bundle: api.EventBundle{
		ID: c.BundleID, ConsumerName: c.Consumer, Source: c.Source, Deleted: true,
	}}
	if old != nil {
		ev.Bundle.Name = old.Name
		ev.Freshness.Old = old.Freshness
		ev.Conditions.Old = old.Conditions
	}
	return ev
}

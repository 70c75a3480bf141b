// Package redact removes Secret values from bundles shown to callers who
// may not see them (the reader role): the data and stringData of every
// Secret manifest, and the status feedback values reported for Secrets.
// Keys stay, so a reader still sees which keys a Secret has.
package redact

import (
	"encoding/json"

	"github.com/baton-dev/baton/internal/store"
)

// Placeholder replaces every redacted value.
const Placeholder = "REDACTED"

// Bundle returns b with Secret values replaced by Placeholder. b itself is
// not changed (its slices are copied where they change).
func Bundle(b store.Bundle) store.Bundle {
	ms := b.Spec.Manifests
	for i, m := range ms {
		out, changed := Manifest(m)
		if !changed {
			continue
		}
		if &ms[0] == &b.Spec.Manifests[0] {
			ms = append([]json.RawMessage(nil), b.Spec.Manifests...)
		}
		ms[i] = out
	}
	b.Spec.Manifests = ms
	rs := b.Status.Reported.ResourceStatus
	for i, r := range rs {
		if r.ResourceMeta.Kind != "Secret" || len(r.StatusFeedbacks.Values) == 0 {
			continue
		}
		if &rs[0] == &b.Status.Reported.ResourceStatus[0] {
			rs = append(rs[:0:0], rs...)
		}
		vals := append(r.StatusFeedbacks.Values[:0:0], r.StatusFeedbacks.Values...)
		for j := range vals {
			p := Placeholder
			vals[j].Value.Type, vals[j].Value.String = "String", &p
			vals[j].Value.Integer, vals[j].Value.Boolean, vals[j].Value.JsonRaw = nil, nil, nil
		}
		rs[i].StatusFeedbacks.Values = vals
	}
	b.Status.Reported.ResourceStatus = rs
	return b
}

// Manifest redacts one manifest if it is a Secret (kind Secret, core
// group); it reports whether it changed anything.
func Manifest(m json.RawMessage) (json.RawMessage, bool) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(m, &obj) != nil {
		return m, false
	}
	var kind, apiVersion string
	_ = json.Unmarshal(obj["kind"], &kind)
	_ = json.Unmarshal(obj["apiVersion"], &apiVersion)
	if kind != "Secret" || apiVersion != "v1" {
		return m, false
	}
	changed := false
	for _, f := range []string{"data", "stringData"} {
		var vals map[string]json.RawMessage
		if json.Unmarshal(obj[f], &vals) != nil || len(vals) == 0 {
			if _, ok := obj[f]; ok && string(obj[f]) != "null" && string(obj[f]) != "{}" {
				obj[f], changed = json.RawMessage(`"`+Placeholder+`"`), true
			}
			continue
		}
		for k := range vals {
			vals[k] = json.RawMessage(`"` + Placeholder + `"`)
		}
		obj[f], _ = json.Marshal(vals)
		changed = true
	}
	if !changed {
		return m, false
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return m, false
	}
	return out, true
}

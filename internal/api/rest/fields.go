package rest

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
)

// projection is the parsed `fields` parameter: a tree of JSON member
// names. A node without children keeps the whole member; a node with
// children keeps only those (applied to every element of an array).
type projection struct {
	children map[string]*projection
}

// parseProjection parses "id,name,status.resourceStatus.statusFeedback".
// The first segment of each path must be a member of the object (top);
// "id" is always kept.
func parseProjection(v string, top map[string]bool) (*projection, error) {
	root := &projection{children: map[string]*projection{}}
	for _, path := range strings.Split(v, ",") {
		path = strings.TrimSpace(path)
		if path == "" {
			continue
		}
		segs := strings.Split(path, ".")
		if !top[segs[0]] {
			return nil, badRequest("fields: unknown field %q (allowed: %s)", segs[0], joinKeys(top))
		}
		n := root
		for i, s := range segs {
			if s == "" {
				return nil, badRequest("fields: %q has an empty segment", path)
			}
			c, ok := n.children[s]
			if ok && c.children == nil {
				break // the whole member is already kept
			}
			if !ok {
				c = &projection{}
				n.children[s] = c
			}
			if i == len(segs)-1 {
				c.children = nil // the whole member wins over parts of it
				break
			}
			if c.children == nil {
				c.children = map[string]*projection{}
			}
			n = c
		}
	}
	root.children["id"] = &projection{}
	return root, nil
}

// apply returns raw (one encoded object) reduced to the projection.
func (p *projection) apply(raw []byte) ([]byte, error) {
	v, err := p.reduce(raw)
	if err != nil {
		return nil, err
	}
	return v, nil
}

func (p *projection) reduce(raw json.RawMessage) (json.RawMessage, error) {
	if p.children == nil {
		return raw, nil
	}
	t := bytes.TrimSpace(raw)
	switch {
	case len(t) > 0 && t[0] == '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(t, &m); err != nil {
			return nil, err
		}
		out := make(map[string]json.RawMessage, len(p.children))
		for k, c := range p.children {
			if v, ok := m[k]; ok {
				r, err := c.reduce(v)
				if err != nil {
					return nil, err
				}
				out[k] = r
			}
		}
		return json.Marshal(out)
	case len(t) > 0 && t[0] == '[':
		var items []json.RawMessage
		if err := json.Unmarshal(t, &items); err != nil {
			return nil, err
		}
		for i := range items {
			r, err := p.reduce(items[i])
			if err != nil {
				return nil, err
			}
			items[i] = r
		}
		return json.Marshal(items)
	}
	return raw, nil // a scalar has no members to select
}

func joinKeys(m map[string]bool) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// jsonNames makes a set of JSON member names.
func jsonNames(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

var (
	bundleMembers = jsonNames("id", "kind", "href", "name", "consumer_name", "source", "version",
		"created_at", "updated_at", "deleted_at", "metadata", "manifests", "manifest_configs",
		"delete_option", "status")
	consumerMembers = jsonNames("id", "kind", "href", "name", "labels", "created_at", "updated_at", "agent")
)

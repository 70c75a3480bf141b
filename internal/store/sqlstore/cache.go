package sqlstore

import (
	"encoding/json"
	"maps"
	"slices"
	"sync"

	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/pkg/api"
)

// jsonCache maps stored JSON text to its decoded value, so listing thousands
// of bundles does not parse the same columns again. It is keyed by the JSON
// text itself, so it can never return a value that differs from what a
// decode would produce, whoever wrote the row. Readers get a deep copy, so
// they may modify what the store returns. When full, arbitrary entries are
// evicted.
type jsonCache[T any] struct {
	copy  func(*T) T
	mu    sync.Mutex
	m     map[string]*T
	size  int // estimated bytes held
	limit int // <= 0 disables the cache
}

// entryCost estimates the memory of an entry of n JSON bytes: the key plus
// the decoded value.
func entryCost(n int) int { return 4*n + 64 }

func newJSONCache[T any](limit int, copyFn func(*T) T) *jsonCache[T] {
	return &jsonCache[T]{copy: copyFn, m: map[string]*T{}, limit: limit}
}

// decode sets out to the value raw encodes, from the cache when it can.
func (c *jsonCache[T]) decode(raw []byte, out *T) error {
	if c == nil || c.limit <= 0 {
		return json.Unmarshal(raw, out)
	}
	c.mu.Lock()
	v, ok := c.m[string(raw)]
	c.mu.Unlock()
	if ok {
		*out = c.copy(v)
		return nil
	}
	dec := new(T)
	if err := json.Unmarshal(raw, dec); err != nil {
		return err
	}
	*out = c.copy(dec)
	c.put(raw, dec)
	return nil
}

func (c *jsonCache[T]) put(raw []byte, v *T) {
	cost := entryCost(len(raw))
	if cost > c.limit/16 {
		return // not worth displacing many others
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[string(raw)]; ok {
		return
	}
	for k := range c.m { // map order is random: evict arbitrary entries
		if c.size+cost <= c.limit {
			break
		}
		c.size -= entryCost(len(k))
		delete(c.m, k)
	}
	c.m[string(raw)] = v
	c.size += cost
}

// decoders holds the caches of the JSON columns of bundles.
type decoders struct {
	meta   *jsonCache[api.ObjectMeta]
	spec   *jsonCache[api.BundleSpec]
	status *jsonCache[api.ReportedStatus]
}

// newDecoders splits a memory budget between the column caches.
func newDecoders(budget int) *decoders {
	return &decoders{
		meta:   newJSONCache(budget/5, copyMeta),
		spec:   newJSONCache(budget/5, copySpec),
		status: newJSONCache(budget*3/5, copyReported),
	}
}

func copyMeta(m *api.ObjectMeta) api.ObjectMeta {
	out := *m
	out.Labels, out.Annotations = maps.Clone(m.Labels), maps.Clone(m.Annotations)
	out.CreationTimestamp, out.DeletionTimestamp = m.CreationTimestamp.DeepCopy(), m.DeletionTimestamp.DeepCopy()
	return out
}

// copySpec copies a spec; manifests are not copied deeply: RawMessage bytes
// are shared, callers must not write into them.
func copySpec(s *api.BundleSpec) api.BundleSpec {
	out := api.BundleSpec{Manifests: slices.Clone(s.Manifests), DeleteOption: s.DeleteOption.DeepCopy(), Executor: s.Executor.DeepCopy()}
	if s.ManifestConfigs != nil {
		out.ManifestConfigs = make([]workv1.ManifestConfigOption, len(s.ManifestConfigs))
		for i := range s.ManifestConfigs {
			s.ManifestConfigs[i].DeepCopyInto(&out.ManifestConfigs[i])
		}
	}
	return out
}

func copyReported(s *api.ReportedStatus) api.ReportedStatus {
	out := api.ReportedStatus{Conditions: slices.Clone(s.Conditions)}
	if s.ResourceStatus == nil {
		return out
	}
	out.ResourceStatus = make([]api.ResourceStatus, len(s.ResourceStatus))
	for i := range s.ResourceStatus {
		in, o := &s.ResourceStatus[i], &out.ResourceStatus[i]
		o.ResourceMeta = in.ResourceMeta
		in.StatusFeedbacks.DeepCopyInto(&o.StatusFeedbacks)
		o.Conditions = slices.Clone(in.Conditions)
		o.Observed = in.Observed
	}
	return out
}

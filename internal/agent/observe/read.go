package observe

import (
	"context"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Read reads key from the API server, not the cache (a resync must not
// re-confirm what the cache holds). The answer also corrects the cache's
// view until the informer catches up: Get returns the object read when
// it is newer than the cached one, and reports the object absent when the
// read found it gone while the cache still holds the version it had then.
// A failed read (other than NotFound) marks the scope failing, as a failed
// list or watch does, and is returned.
func (o *Observer) Read(ctx context.Context, key Key) (*unstructured.Unstructured, bool, error) {
	o.mu.Lock()
	s := o.scopes[key.scope()]
	o.mu.Unlock()
	if s == nil || s.isAbsent() {
		obj, ok := o.Get(key)
		return obj, ok, nil
	}
	var u *unstructured.Unstructured
	err := twice(ctx, func() (err error) {
		u, err = o.opts.Direct.Resource(key.GVR).Namespace(key.Namespace).Get(ctx, key.Name, metav1.GetOptions{})
		return err
	})
	switch {
	case apierrors.IsNotFound(err):
		s.correct(key, nil)
		if !s.healthNow().OK {
			s.signal()
		}
		return nil, false, nil
	case err != nil:
		if ctx.Err() == nil {
			s.fail("get", err)
		}
		return nil, false, err
	}
	u.SetManagedFields(nil)
	s.correct(key, u)
	if !s.healthNow().OK {
		s.signal() // the API server answers: check the scope now
	}
	return u, true, nil
}

// correction is what a direct read found for one key: the object (nil:
// absent) and, when absent, the cached version it contradicts.
type correction struct {
	obj    *unstructured.Unstructured
	goneRV string
}

// correct records what a direct read found for k, if the cache disagrees:
// it holds an older version, or one the read found gone.
func (s *scopeState) correct(k Key, obj *unstructured.Unstructured) {
	cached, ok := s.cached(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fresh == nil {
		s.fresh = map[string]correction{}
	}
	switch {
	case ok && obj == nil:
		s.fresh[k.cacheKey()] = correction{goneRV: cached.GetResourceVersion()}
	case ok && newerVersion(obj.GetResourceVersion(), cached.GetResourceVersion()):
		s.fresh[k.cacheKey()] = correction{obj: obj}
	default:
		delete(s.fresh, k.cacheKey())
	}
}

// corrected applies a recorded correction to the cache's answer for k and
// drops it once the cache has moved past it.
func (s *scopeState) corrected(k Key, cached *unstructured.Unstructured, ok bool) (*unstructured.Unstructured, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, has := s.fresh[k.cacheKey()]
	switch {
	case !has:
		return cached, ok
	case c.obj == nil && ok && cached.GetResourceVersion() == c.goneRV:
		return nil, false // the cache still holds what the read found gone
	case c.obj != nil && ok && newerVersion(c.obj.GetResourceVersion(), cached.GetResourceVersion()):
		return c.obj, true
	}
	delete(s.fresh, k.cacheKey())
	return cached, ok
}

// newerVersion compares resourceVersions numerically when both are
// numbers (as etcd-backed servers produce); otherwise it says false.
func newerVersion(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	return err1 == nil && err2 == nil && x > y
}

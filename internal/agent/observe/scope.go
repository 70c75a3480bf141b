package observe

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// scope is what one informer watches: one resource type in one namespace
// (or cluster-wide / cluster-scoped when ns is empty).
type scope struct {
	gvr schema.GroupVersionResource
	ns  string
}

func (s scope) String() string {
	if s.ns == "" {
		return s.gvr.String()
	}
	return s.gvr.String() + " in " + s.ns
}

type phase int

const (
	phasePending phase = iota // looking up the type, or first list running
	phaseAbsent               // the type is not served: every object is absent
	phaseRunning              // informer synced: the cache is authoritative
)

// syncPoll is how often a starting informer is checked for its first list.
const syncPoll = 50 * time.Millisecond

// scopeState is one scope's informer and lifecycle. refs and cancel are
// guarded by Observer.mu; phase, inf and health by mu.
type scopeState struct {
	o      *Observer
	sc     scope
	refs   int
	cancel context.CancelFunc
	kick   chan struct{} // a list or watch failed or succeeded: re-check now

	mu     sync.Mutex
	phase  phase
	inf    cache.SharedIndexInformer
	health Health
	// infFailed: a list, watch or probe failed since the current informer
	// started (a new informer still listing is not replaced).
	infFailed bool
	probeNow  bool                  // a watch ended on its own: probe without waiting
	fresh     map[string]correction // direct reads the cache has not caught up with (see Observer.Read)
}

func newScopeState(o *Observer, sc scope) *scopeState {
	return &scopeState{o: o, sc: sc, kick: make(chan struct{}, 1), health: Health{OK: true}}
}

func (s *scopeState) stop() {
	if s.cancel != nil {
		s.cancel()
	}
}

func (s *scopeState) setPhase(p phase) {
	s.mu.Lock()
	s.phase = p
	s.mu.Unlock()
}

// isSynced: the scope has an answer for Get, authoritative or known to be
// cut off (see Health).
func (s *scopeState) isSynced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.phase != phasePending || !s.health.OK
}

func (s *scopeState) isAbsent() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.phase == phaseAbsent
}

func (s *scopeState) healthNow() Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.health
}

func (s *scopeState) get(k Key) (*unstructured.Unstructured, bool) {
	u, ok := s.cached(k)
	return s.corrected(k, u, ok)
}

// cached is the informer cache's answer for k.
func (s *scopeState) cached(k Key) (*unstructured.Unstructured, bool) {
	s.mu.Lock()
	p, inf := s.phase, s.inf
	s.mu.Unlock()
	if p != phaseRunning {
		return nil, false
	}
	item, exists, err := inf.GetIndexer().GetByKey(k.cacheKey())
	if err != nil || !exists {
		return nil, false
	}
	u, ok := item.(*unstructured.Unstructured)
	return u, ok
}

// run waits until the type is served, then runs the informer until ctx
// ends. An informer cut off from the API server is replaced by a new one
// (a fresh list) as soon as the API server answers again, rather than
// after the informer's own backoff (up to 30 s).
func (s *scopeState) run(ctx context.Context) {
	log := s.o.opts.Logger.With("scope", s.sc.String())
	for {
		if !s.waitServed(ctx, log) {
			return
		}
		gctx, cancel := context.WithCancel(ctx)
		s.runInformer(gctx, log)
		cancel()
		if ctx.Err() != nil {
			return
		}
		log.Info("observe: API server answers again; relisting")
	}
}

// waitServed polls discovery until the scope's type is served; false when
// ctx ended first.
func (s *scopeState) waitServed(ctx context.Context, log *slog.Logger) bool {
	for {
		served, err := s.served()
		if err == nil && served {
			return true
		}
		if err != nil {
			log.Warn("observe: discovery failed, retrying", "err", err)
			s.fail("discover", err)
		} else if !s.isAbsent() {
			log.Info("observe: resource type not served yet, waiting for it")
			s.mu.Lock()
			s.phase, s.health = phaseAbsent, Health{OK: true}
			s.mu.Unlock()
			s.o.notifyScope(s.sc)
		}
		select {
		case <-ctx.Done():
			return false
		case <-s.o.opts.Clock.After(s.o.opts.DiscoveryPoll):
		}
	}
}

// runInformer runs one informer until ctx ends, or until the scope, after
// a failure, answers again (the caller then starts a new informer).
func (s *scopeState) runInformer(ctx context.Context, log *slog.Logger) {
	inf := cache.NewSharedIndexInformerWithOptions(s.listWatch(), &unstructured.Unstructured{},
		cache.SharedIndexInformerOptions{ResyncPeriod: s.o.opts.Resync, ObjectDescription: s.sc.String()})
	if err := inf.SetTransform(stripManagedFields); err != nil {
		log.Error("observe: set transform", "err", err)
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    s.onEvent,
		UpdateFunc: func(_, obj any) { s.onEvent(obj) },
		DeleteFunc: s.onEvent,
	}); err != nil {
		log.Error("observe: add event handler", "err", err)
		<-ctx.Done()
		return
	}
	s.mu.Lock()
	s.inf, s.phase, s.fresh, s.infFailed = inf, phasePending, nil, false
	s.mu.Unlock()
	go inf.RunWithContext(ctx)

	synced := false
	next := s.o.opts.Clock.Now().Add(s.o.opts.Probe)
	for {
		if !synced && inf.HasSynced() {
			synced = true
			s.recovered(log)
		}
		h, failed := s.state()
		wait := syncPoll
		switch {
		case !h.OK && failed:
			wait = s.o.opts.RecoverPoll
		case synced:
			wait = max(next.Sub(s.o.opts.Clock.Now()), 0)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-s.o.opts.Clock.After(wait):
		}
		h, failed = s.state()
		switch {
		case !h.OK && failed:
			// This informer failed: once the API server answers, replace
			// it (its cache and watch are not to be trusted, and its own
			// retries back off to 30 s).
			if s.probe(ctx, true) {
				return
			}
		case synced && h.OK && (s.takeProbeNow() || !s.o.opts.Clock.Now().Before(next)):
			// The watch of a healthy informer can outlive the agent's
			// access (RBAC revoked) or its link (a silently dropped
			// connection): check that the API server still answers.
			s.probe(ctx, false)
			next = s.o.opts.Clock.Now().Add(s.o.opts.Probe)
		}
	}
}

// takeProbeNow reports and clears a request to probe at once.
func (s *scopeState) takeProbeNow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.probeNow
	s.probeNow = false
	return p
}

// state returns the scope's health and whether the current informer has
// failed since it started.
func (s *scopeState) state() (Health, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.health, s.infFailed
}

// recovered marks the scope observed again once its informer has synced.
func (s *scopeState) recovered(log *slog.Logger) {
	s.mu.Lock()
	s.phase = phaseRunning
	was := s.health
	s.health = Health{OK: true}
	s.mu.Unlock()
	if !was.OK {
		log.Info("observe: observing again", "after", s.o.opts.Clock.Since(was.Since).Round(time.Millisecond))
		s.o.healthChanged(s.sc, s.healthNow())
	} else {
		log.Debug("observe: informer synced")
	}
	s.o.notifyScope(s.sc)
}

// probe asks the API server for one object of the scope (and, withWatch,
// opens a watch too), within Options.ProbeTimeout, recording a failure. It
// reports whether the API server answered.
func (s *scopeState) probe(ctx context.Context, withWatch bool) bool {
	pctx, cancel := context.WithTimeout(ctx, s.o.opts.ProbeTimeout)
	defer cancel()
	ri := s.o.opts.Direct.Resource(s.sc.gvr).Namespace(s.sc.ns)
	verb := "list"
	err := twice(pctx, func() error {
		verb = "list"
		list, err := ri.List(pctx, metav1.ListOptions{Limit: 1})
		if err != nil || !withWatch {
			return err
		}
		verb = "watch"
		timeout := int64(1)
		w, err := ri.Watch(pctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion(), TimeoutSeconds: &timeout})
		if err == nil {
			w.Stop()
		}
		return err
	})
	if err != nil {
		if ctx.Err() == nil {
			s.fail(verb, err)
		}
		return false
	}
	return true
}

// fail records that a list or watch of the scope failed. Only a change of
// state (observed → failing, or another reason) is logged and notified, so
// that a failure repeating every second reports nothing new.
func (s *scopeState) fail(verb string, err error) {
	reason, ok := classify(err)
	if !ok {
		return
	}
	now := s.o.opts.Clock.Now()
	s.mu.Lock()
	s.infFailed = true
	changed := s.health.OK || s.health.Reason != reason
	if changed {
		since := now
		if !s.health.OK {
			since = s.health.Since
		}
		s.health = failure(s.sc, verb, err, reason, since)
	}
	h := s.health
	s.mu.Unlock()
	s.signal()
	if !changed {
		return
	}
	s.o.opts.Logger.Warn("observe: cannot observe; its objects are unconfirmed", "scope", s.sc.String(), "reason", reason, "err", err)
	s.o.healthChanged(s.sc, h)
	s.o.notifyScope(s.sc)
}

// probeSoon asks the scope's loop to probe the API server now.
func (s *scopeState) probeSoon() {
	s.mu.Lock()
	s.probeNow = true
	s.mu.Unlock()
	s.signal()
}

func (s *scopeState) signal() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// listWatch is the informer's list and watch through the dynamic client,
// recording every failure in the scope's health, and waking the scope's
// loop when a call succeeds while the scope is failing.
func (s *scopeState) listWatch() cache.ListerWatcher {
	ri := s.o.dyn.Resource(s.sc.gvr).Namespace(s.sc.ns)
	succeeded := func() {
		if !s.healthNow().OK {
			s.signal()
		}
	}
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			l, err := ri.List(ctx, opts)
			if err != nil {
				s.fail("list", err)
				return nil, err
			}
			succeeded()
			return l, nil
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			w, err := ri.Watch(ctx, opts)
			if err != nil {
				s.fail("watch", err)
				return nil, err
			}
			succeeded()
			// A watch the server or the link ended: check the API
			// server now rather than at the next probe.
			return notifyEnd(w, s.probeSoon), nil
		},
	}
}

// served asks discovery whether the scope's resource type is served.
func (s *scopeState) served() (bool, error) {
	gv := s.sc.gvr.GroupVersion().String()
	list, err := s.o.disc.ServerResourcesForGroupVersion(gv)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("discovery %s: %w", gv, err)
	}
	for _, r := range list.APIResources {
		if r.Name == s.sc.gvr.Resource {
			return true, nil
		}
	}
	return false, nil
}

func (s *scopeState) onEvent(obj any) {
	var ns, name string
	switch v := obj.(type) {
	case *unstructured.Unstructured:
		ns, name = v.GetNamespace(), v.GetName()
	case cache.DeletedFinalStateUnknown:
		var err error
		if ns, name, err = cache.SplitMetaNamespaceKey(v.Key); err != nil {
			return
		}
	default:
		return
	}
	s.o.notifyKey(Key{GVR: s.sc.gvr, Namespace: ns, Name: name})
}

// stripManagedFields drops metadata.managedFields before an object enters
// the cache: the agent never reads them and they are often most of an
// object's size.
func stripManagedFields(obj any) (any, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		u.SetManagedFields(nil)
	}
	return obj, nil
}

package observe

import (
	"context"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
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

// scopeState is one scope's informer and lifecycle. refs and cancel are
// guarded by Observer.mu; phase and inf by mu.
type scopeState struct {
	o      *Observer
	sc     scope
	refs   int
	cancel context.CancelFunc

	mu    sync.Mutex
	phase phase
	inf   cache.SharedIndexInformer
}

func newScopeState(o *Observer, sc scope) *scopeState { return &scopeState{o: o, sc: sc} }

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

func (s *scopeState) isSynced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.phase != phasePending
}

func (s *scopeState) isAbsent() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.phase == phaseAbsent
}

func (s *scopeState) get(k Key) (*unstructured.Unstructured, bool) {
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

// run waits until the type is served, then runs the informer until ctx ends.
func (s *scopeState) run(ctx context.Context) {
	log := s.o.opts.Logger.With("scope", s.sc.String())
	for {
		served, err := s.served()
		if err == nil && served {
			break
		}
		if err != nil {
			log.Warn("observe: discovery failed, retrying", "err", err)
		} else if !s.isAbsent() {
			log.Info("observe: resource type not served yet, waiting for it")
			s.setPhase(phaseAbsent)
			s.o.notifyScope(s.sc)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.o.opts.Clock.After(s.o.opts.DiscoveryPoll):
		}
	}
	inf := dynamicinformer.NewFilteredDynamicInformer(s.o.dyn, s.sc.gvr, s.sc.ns, s.o.opts.Resync, cache.Indexers{}, nil).Informer()
	if err := inf.SetTransform(stripManagedFields); err != nil {
		log.Error("observe: set transform", "err", err)
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    s.onEvent,
		UpdateFunc: func(_, obj any) { s.onEvent(obj) },
		DeleteFunc: s.onEvent,
	}); err != nil {
		log.Error("observe: add event handler", "err", err)
		return
	}
	s.mu.Lock()
	s.inf = inf
	s.mu.Unlock()
	go inf.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return
	}
	log.Debug("observe: informer synced")
	s.setPhase(phaseRunning)
	s.o.notifyScope(s.sc)
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

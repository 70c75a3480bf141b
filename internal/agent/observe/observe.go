// Package observe keeps a live view of every object the agent's bundles
// apply or observe, with one shared informer per resource type and namespace
// (a "scope") for all bundles, never one watch per bundle or per object.
//
// Bundles register interest in keys (GVR, namespace, name) with Watch or
// Replace and drop it with Unwatch; a scope's informer starts when its first
// key is registered and stops when its last key is dropped. Every add, update
// and delete event of a watched object, and every periodic resync, calls the
// Handler with the ids of the bundles that watch that object. Get answers from
// the informer cache.
//
// Resource types that are not served yet (a CRD created later) are checked in
// discovery every Options.DiscoveryPoll; meanwhile the scope counts as synced
// and its objects as absent, which is the truth: an object of a type the API
// server does not serve does not exist. When the type appears the informer
// starts and the bundles are notified.
//
// Ordering and backpressure: events of one scope are delivered in the order
// the informer saw them, on the informer's own notification goroutine (whose
// buffer is unbounded); different scopes are not ordered with respect to each
// other. The Handler runs outside the Observer's lock and must not block: it
// is meant to enqueue the bundle ids in a de-duplicating work queue and read
// the current objects with Get later, so a slow consumer only coalesces
// events, it never loses the latest state. A scope becoming synced (or found
// absent) also calls the Handler for all of its bundles.
//
// Observation health (DESIGN.md I8): every list and watch of an informer
// goes through the scope, which records each failure (connection refused,
// timeouts, 401, 403; an expired resource version is repaired by a relist
// and is not one). A healthy scope also probes the API server every
// Options.Probe (a list of one object), because an open watch outlives a
// revoked permission or a silently dropped connection. While a scope
// fails, Health says so and the Handler is called for its bundles once per
// change of state; its cache still answers Get with the last objects seen,
// which callers must report as unconfirmed. A failing scope is probed every
// Options.RecoverPoll; when the API server answers again the informer is
// replaced by a new one (a fresh list, not the old informer's backoff of up
// to 30 s) and the scope counts as healthy once that list is in the cache.
package observe

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/clock"
)

// Key names one object the agent observes. Namespace is empty for
// cluster-scoped objects.
type Key struct {
	GVR       schema.GroupVersionResource
	Namespace string
	Name      string
}

func (k Key) scope() scope { return scope{gvr: k.GVR, ns: k.Namespace} }

// cacheKey is the informer store key of the object (namespace/name).
func (k Key) cacheKey() string {
	if k.Namespace == "" {
		return k.Name
	}
	return k.Namespace + "/" + k.Name
}

// Handler is called with the ids of the bundles affected by an event. It
// must not block and must not call back into the Observer synchronously
// with expectations about ordering (it may call Get).
type Handler func(bundleIDs []string)

// Discovery tells which resources a group version serves;
// discovery.DiscoveryInterface implements it. ServerResourcesForGroupVersion
// returns a NotFound error when the group version is not served.
type Discovery interface {
	ServerResourcesForGroupVersion(groupVersion string) (*metav1.APIResourceList, error)
}

// Options tune an Observer. The zero value is valid: see DefaultOptions.
type Options struct {
	// Resync is how often every cached object is re-delivered to the
	// Handler, a safety net behind the watch (default 5 minutes).
	Resync time.Duration
	// DiscoveryPoll is how often a resource type that is not served yet is
	// looked up again, and how long to wait after a failed lookup
	// (default 2 s).
	DiscoveryPoll time.Duration
	// Probe is how often a healthy scope checks that the API server still
	// answers its list (default 5 s); ProbeTimeout bounds each check
	// (default 5 s). RecoverPoll is how often a failing scope checks
	// (default 1 s).
	Probe, ProbeTimeout, RecoverPoll time.Duration
	// Direct is the client of probes and direct reads (Read); without
	// client-go's retries (see DirectClient) a failure is seen at once.
	// Default: the Observer's client.
	Direct dynamic.Interface
	// OnHealth, when set, is called (without blocking) on every change of
	// a scope's health.
	OnHealth func(ScopeHealth)
	// Logger receives informer lifecycle messages (default slog.Default()).
	Logger *slog.Logger
	// Clock drives the discovery polling (default the real clock).
	Clock clock.WithTicker
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{Resync: 5 * time.Minute, DiscoveryPoll: 2 * time.Second,
		Probe: 5 * time.Second, ProbeTimeout: 5 * time.Second, RecoverPoll: time.Second,
		Logger: slog.Default(), Clock: clock.RealClock{}}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.Resync <= 0 {
		o.Resync = d.Resync
	}
	if o.DiscoveryPoll <= 0 {
		o.DiscoveryPoll = d.DiscoveryPoll
	}
	if o.Probe <= 0 {
		o.Probe = d.Probe
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = d.ProbeTimeout
	}
	if o.RecoverPoll <= 0 {
		o.RecoverPoll = d.RecoverPoll
	}
	if o.Logger == nil {
		o.Logger = d.Logger
	}
	if o.Clock == nil {
		o.Clock = d.Clock
	}
	return o
}

// Observer is the shared set of informers. Create it with New, register
// keys at any time (before or after Start), and run it with Start.
//
// Lock order: Observer.mu is never held while calling the Handler, the
// API server, or an informer's blocking methods.
type Observer struct {
	dyn     dynamic.Interface
	disc    Discovery
	handler Handler
	opts    Options

	mu      sync.Mutex
	ctx     context.Context // nil until Start
	keys    map[Key]map[string]struct{}
	bundles map[string]map[Key]struct{}
	scopes  map[scope]*scopeState
}

// New returns an Observer reading through dyn and disc and reporting events
// to handler.
func New(dyn dynamic.Interface, disc Discovery, handler Handler, opts Options) *Observer {
	if opts.Direct == nil {
		opts.Direct = dyn
	}
	return &Observer{
		dyn: dyn, disc: disc, handler: handler, opts: opts.withDefaults(),
		keys:    map[Key]map[string]struct{}{},
		bundles: map[string]map[Key]struct{}{},
		scopes:  map[scope]*scopeState{},
	}
}

// Start runs the informers until ctx ends, then stops them all.
func (o *Observer) Start(ctx context.Context) error {
	o.mu.Lock()
	o.ctx = ctx
	for _, s := range o.scopes {
		o.launchLocked(s)
	}
	o.mu.Unlock()
	<-ctx.Done()
	o.mu.Lock()
	for _, s := range o.scopes {
		s.stop()
	}
	o.mu.Unlock()
	return nil
}

// Watch registers the interest of bundleID in key.
func (o *Observer) Watch(key Key, bundleID string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.addLocked(key, bundleID)
}

// Replace sets the keys bundleID watches to exactly keys. Informers shared
// with the old key set keep running (no relist on a bundle update).
func (o *Observer) Replace(bundleID string, keys []Key) {
	o.mu.Lock()
	defer o.mu.Unlock()
	want := make(map[Key]struct{}, len(keys))
	for _, k := range keys {
		want[k] = struct{}{}
		o.addLocked(k, bundleID)
	}
	for k := range o.bundles[bundleID] {
		if _, ok := want[k]; !ok {
			o.removeLocked(k, bundleID)
		}
	}
}

// Unwatch drops every key of bundleID; informers nobody uses any more stop.
func (o *Observer) Unwatch(bundleID string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k := range o.bundles[bundleID] {
		o.removeLocked(k, bundleID)
	}
}

// Keys returns the keys bundleID watches, sorted.
func (o *Observer) Keys(bundleID string) []Key {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]Key, 0, len(o.bundles[bundleID]))
	for k := range o.bundles[bundleID] {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return lessKey(out[i], out[j]) })
	return out
}

// Get returns the cached object for key. The object is shared with the
// cache: callers must not modify it. exists is false when the object is
// absent, its type is not served, or its scope has not synced yet (see
// Synced).
func (o *Observer) Get(key Key) (obj *unstructured.Unstructured, exists bool) {
	o.mu.Lock()
	s := o.scopes[key.scope()]
	o.mu.Unlock()
	if s == nil {
		return nil, false
	}
	return s.get(key)
}

// Synced reports whether key's scope has an answer: its cache reflects the
// API server (its first list completed, or its type is known not to be
// served), so that a missing object really is missing, or the scope is
// known to be cut off (see Health).
func (o *Observer) Synced(key Key) bool {
	o.mu.Lock()
	s := o.scopes[key.scope()]
	o.mu.Unlock()
	return s != nil && s.isSynced()
}

// Health says whether key's scope is observed now; an unwatched key is
// reported healthy (there is nothing to distrust).
func (o *Observer) Health(key Key) Health {
	o.mu.Lock()
	s := o.scopes[key.scope()]
	o.mu.Unlock()
	if s == nil {
		return Health{OK: true}
	}
	return s.healthNow()
}

// Failing returns the scopes that cannot be observed now, sorted.
func (o *Observer) Failing() []ScopeHealth {
	o.mu.Lock()
	states := make([]*scopeState, 0, len(o.scopes))
	for _, s := range o.scopes {
		states = append(states, s)
	}
	o.mu.Unlock()
	var out []ScopeHealth
	for _, s := range states {
		if h := s.healthNow(); !h.OK {
			out = append(out, ScopeHealth{Resource: s.sc.gvr.String(), Namespace: s.sc.ns, Health: h})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Resource != out[j].Resource {
			return out[i].Resource < out[j].Resource
		}
		return out[i].Namespace < out[j].Namespace
	})
	return out
}

func (o *Observer) healthChanged(sc scope, h Health) {
	if o.opts.OnHealth != nil {
		o.opts.OnHealth(ScopeHealth{Resource: sc.gvr.String(), Namespace: sc.ns, Health: h})
	}
}

// Stats is a snapshot of the Observer's size.
type Stats struct {
	Scopes  int // running or pending informers
	Absent  int // scopes whose type is not served
	Pending int // scopes not synced yet (type lookup or first list running)
	Failing int // scopes that cannot be observed now (see Health)
	Keys    int // distinct watched objects
	Bundles int // bundles with at least one key
}

// Stats returns the current sizes.
func (o *Observer) Stats() Stats {
	o.mu.Lock()
	defer o.mu.Unlock()
	st := Stats{Scopes: len(o.scopes), Keys: len(o.keys), Bundles: len(o.bundles)}
	for _, s := range o.scopes {
		if s.isAbsent() {
			st.Absent++
		}
		if !s.isSynced() {
			st.Pending++
		}
		if !s.healthNow().OK {
			st.Failing++
		}
	}
	return st
}

func (o *Observer) addLocked(k Key, id string) {
	ids := o.keys[k]
	if ids == nil {
		ids = map[string]struct{}{}
		o.keys[k] = ids
	}
	if _, ok := ids[id]; ok {
		return
	}
	ids[id] = struct{}{}
	bk := o.bundles[id]
	if bk == nil {
		bk = map[Key]struct{}{}
		o.bundles[id] = bk
	}
	bk[k] = struct{}{}
	s := o.scopes[k.scope()]
	if s == nil {
		s = newScopeState(o, k.scope())
		o.scopes[k.scope()] = s
		if o.ctx != nil {
			o.launchLocked(s)
		}
	}
	s.refs++
}

func (o *Observer) removeLocked(k Key, id string) {
	ids := o.keys[k]
	if _, ok := ids[id]; !ok {
		return
	}
	delete(ids, id)
	if len(ids) == 0 {
		delete(o.keys, k)
	}
	delete(o.bundles[id], k)
	if len(o.bundles[id]) == 0 {
		delete(o.bundles, id)
	}
	s := o.scopes[k.scope()]
	s.refs--
	if s.refs == 0 {
		s.stop()
		delete(o.scopes, k.scope())
	}
}

func (o *Observer) launchLocked(s *scopeState) {
	ctx, cancel := context.WithCancel(o.ctx)
	s.cancel = cancel
	go s.run(ctx)
}

// notifyKey calls the handler for the bundles watching k.
func (o *Observer) notifyKey(k Key) {
	o.mu.Lock()
	ids := make([]string, 0, len(o.keys[k]))
	for id := range o.keys[k] {
		ids = append(ids, id)
	}
	o.mu.Unlock()
	if len(ids) > 0 {
		o.handler(ids)
	}
}

// notifyScope calls the handler for every bundle watching a key of sc.
func (o *Observer) notifyScope(sc scope) {
	o.mu.Lock()
	set := map[string]struct{}{}
	for k, ids := range o.keys {
		if k.scope() != sc {
			continue
		}
		for id := range ids {
			set[id] = struct{}{}
		}
	}
	o.mu.Unlock()
	if len(set) == 0 {
		return
	}
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	o.handler(ids)
}

func lessKey(a, b Key) bool {
	if a.GVR != b.GVR {
		return a.GVR.String() < b.GVR.String()
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

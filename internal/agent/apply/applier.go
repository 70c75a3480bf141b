// Package apply applies the manifests of a bundle to a cluster and removes
// them, keeping a durable in-cluster record of what each bundle applied.
//
// The central type is Applier. Apply converges the cluster to one bundle
// generation: manifests are applied tier by tier (Namespaces, CRDs — then
// wait until they are Established —, configuration, everything else,
// admission webhooks last), each with the update strategy its manifest
// config selects (ServerSideApply, Update, CreateOnly, ReadOnly). Objects
// that left the bundle since the recorded generation are deleted. Delete
// removes a bundle according to its delete option. Both return a Result
// with one outcome per object; they do not log or retry: the caller does.
//
// Ownership: a bundle deletes only objects it created. An object that
// existed before the bundle first applied it (or that ReadOnly merely
// reads) is updated but never deleted; it is reported Orphaned when it
// leaves the bundle. An object deleted and recreated by someone else (its
// uid differs from the recorded one) is never deleted either. Objects the
// bundle creates carry the annotation AnnotationBundle so that ownership
// survives a crash between creating an object and writing the record.
//
// Records: each bundle has a Secret "baton-<bundleID>" (type
// SecretType, labelled with the agent name) in Options.Namespace holding
// its id, generation, deleting flag, the bundle's metadata and spec
// (gzip-compressed JSON) and the objects applied with their uids. It is a
// Secret, not a ConfigMap, because bundles carry Secret manifests. A
// bundle is at most 500 KiB, so even uncompressible content fits the
// 1 MiB limit; a record that would not fit fails with a terminal error.
// The record is written before a new generation is applied (so a
// restarted agent knows it holds it) and after every change, and removed
// when a Delete completes.
//
// Executor: a bundle with spec.executor (a service account subject) is
// applied as that service account. Before each manifest is written,
// SubjectAccessReviews check that the service account may do what the
// manifest's strategy needs (and delete it, when the bundle will), as Open
// Cluster Management's work agent does; then the writes impersonate it, so
// the API server enforces its RBAC (escalation checks included). A denial
// fails the manifest with ReasonExecutorForbidden and is retried. Records,
// reads for observation and deletes use the agent's own identity (a
// revoked permission must never make a delete wait forever).
//
// Concurrency: Apply and Delete of different bundles may run in parallel;
// calls for one bundle are serialized. Within a tier, objects are applied
// in parallel up to Options.Concurrency, each writing its own result slot,
// so results are deterministic.
package apply

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/clock"
)

// pollInterval spaces reads while waiting for a CRD to be Established.
const pollInterval = 100 * time.Millisecond

// AnnotationBundle marks objects a bundle created: its value is the bundle id.
const AnnotationBundle = "baton.dev/bundle"

// Options configure an Applier. Zero fields take the defaults of
// DefaultOptions.
type Options struct {
	// FieldManager names the applier in managedFields; a ServerSideApply
	// config may override it per manifest. Default "baton-agent".
	FieldManager string
	// Namespace holds the bundle records; created when missing.
	// Default "baton-agent".
	Namespace string
	// AgentName (the consumer) labels the records, so agents of several
	// consumers can share a cluster. Default "baton-agent".
	AgentName string
	// Logger receives debug messages only; outcomes are returned, not logged.
	Logger *slog.Logger
	// Clock times waits (CRD establishment). Default the real clock.
	Clock clock.WithTicker
	// Concurrency bounds parallel writes within a tier. Default 4.
	Concurrency int
	// EstablishTimeout bounds the wait for a CRD of the bundle to become
	// Established before its custom resources are applied. Default 30s.
	EstablishTimeout time.Duration
	// HubHash identifies the server in AppliedManifestWork names
	// ("<hub hash>-<bundle id>"); default HubHash("baton"). The agent sets
	// it from its server's address.
	HubHash string
	// DisableAppliedWorks turns the AppliedManifestWork records off (and
	// the installation of their CRD).
	DisableAppliedWorks bool
	// Propagation is the propagationPolicy of the applier's delete calls.
	// Default Background: the object itself goes at once and the cluster's
	// garbage collector removes its dependents later, so a bundle's removal
	// never waits on a controller. Foreground makes an object count as gone
	// only once its dependents are, which needs a running garbage collector.
	Propagation metav1.DeletionPropagation
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{
		FieldManager:     "baton-agent",
		Namespace:        "baton-agent",
		AgentName:        "baton-agent",
		Logger:           slog.New(slog.DiscardHandler),
		Clock:            clock.RealClock{},
		Concurrency:      4,
		EstablishTimeout: 30 * time.Second,
		Propagation:      metav1.DeletePropagationBackground,
	}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.FieldManager == "" {
		o.FieldManager = d.FieldManager
	}
	if o.Namespace == "" {
		o.Namespace = d.Namespace
	}
	if o.AgentName == "" {
		o.AgentName = d.AgentName
	}
	if o.Logger == nil {
		o.Logger = d.Logger
	}
	if o.Clock == nil {
		o.Clock = d.Clock
	}
	if o.Concurrency <= 0 {
		o.Concurrency = d.Concurrency
	}
	if o.EstablishTimeout <= 0 {
		o.EstablishTimeout = d.EstablishTimeout
	}
	if o.Propagation == "" {
		o.Propagation = d.Propagation
	}
	if o.HubHash == "" {
		o.HubHash = HubHash("baton")
	}
	return o
}

// Applier applies and deletes bundles in one cluster.
type Applier struct {
	opts    Options
	cfg     *rest.Config
	dyn     dynamic.Interface
	core    corev1client.CoreV1Interface
	authz   authorizationv1client.AuthorizationV1Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
	mu      sync.Mutex
	records map[string]*Record     // cache of stored records by bundle id
	locks   map[string]*sync.Mutex // per-bundle call serialization
	// nsReady: the records namespace exists; amwReady: the
	// AppliedManifestWork CRD is served.
	nsReady, amwReady untilOK
	// amwForbidden: the agent may not keep AppliedManifestWorks (logged
	// once, then off).
	amwForbidden bool
	// executors caches a client per impersonated executor user.
	executors map[string]dynamic.Interface
	drift     driftCache // verdicts of Drifted
}

// New builds an Applier for the cluster of cfg.
func New(cfg *rest.Config, opts Options) (*Applier, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("applier: dynamic client: %w", err)
	}
	core, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("applier: core client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("applier: discovery client: %w", err)
	}
	authz, err := authorizationv1client.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("applier: authorization client: %w", err)
	}
	return &Applier{
		opts:      opts.withDefaults(),
		cfg:       rest.CopyConfig(cfg),
		dyn:       dyn,
		core:      core,
		authz:     authz,
		executors: map[string]dynamic.Interface{},
		mapper:    restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc)),
		records:   map[string]*Record{},
		locks:     map[string]*sync.Mutex{},
	}, nil
}

// untilOK runs a set-up step until it succeeds once; callers wait for a
// running attempt, and calls after a success return at once.
type untilOK struct {
	mu   sync.Mutex
	done bool
}

func (u *untilOK) do(f func() error) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return nil
	}
	if err := f(); err != nil {
		return err
	}
	u.done = true
	return nil
}

// lock serializes calls for one bundle; it returns the unlock function.
func (a *Applier) lock(bundleID string) func() {
	a.mu.Lock()
	l, ok := a.locks[bundleID]
	if !ok {
		l = &sync.Mutex{}
		a.locks[bundleID] = l
	}
	a.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// resolve maps a kind to its resource. On a miss the discovery cache is
// reset once (refresh) and the lookup retried, so kinds of CRDs created
// since the last discovery are found.
func (a *Applier) resolve(gvk schema.GroupVersionKind, refresh *bool) (*meta.RESTMapping, error) {
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil && meta.IsNoMatchError(err) && !*refresh {
		*refresh = true
		a.mapper.Reset()
		m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	return m, err
}

// client returns the dynamic client of a resource in namespace ns.
func (a *Applier) client(m *meta.RESTMapping, ns string) dynamic.ResourceInterface {
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return a.dyn.Resource(m.Resource).Namespace(ns)
	}
	return a.dyn.Resource(m.Resource)
}

// wait polls cond every interval until it returns true, an error, or
// timeout passes (then it returns false, nil).
func (a *Applier) wait(ctx context.Context, timeout, interval time.Duration, cond func() (bool, error)) (bool, error) {
	deadline := a.opts.Clock.NewTimer(timeout)
	defer deadline.Stop()
	tick := a.opts.Clock.NewTicker(interval)
	defer tick.Stop()
	for {
		ok, err := cond()
		if ok || err != nil {
			return ok, err
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-deadline.C():
			return false, nil
		case <-tick.C():
		}
	}
}

package doctor

import (
	"context"
	"errors"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	workv1 "open-cluster-management.io/api/work/v1"
)

// ClusterGetter reads live objects with a dynamic client. When a report
// names a kind but no resource, the resource is found through discovery.
// It is a Prefetcher: many objects of one resource and namespace are read
// with one paged list instead of one request each.
type ClusterGetter struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper

	mu     sync.Mutex
	listed map[listKey]map[string]*unstructured.Unstructured
}

var (
	_ Getter     = (*ClusterGetter)(nil)
	_ Prefetcher = (*ClusterGetter)(nil)
)

// Prefetcher is a Getter that can read many objects ahead of the Gets that
// ask for them. Check calls Prefetch with every object it will Get.
type Prefetcher interface {
	Getter
	// Prefetch reads the objects metas name, replacing whatever an earlier
	// call read; the Gets that follow answer from it. Objects it could not
	// read are left to Get.
	Prefetch(ctx context.Context, metas []workv1.ManifestResourceMeta)
}

type listKey struct {
	gvr       schema.GroupVersionResource
	namespace string
}

// PrefetchMin is how many objects of one resource and namespace make a
// list cheaper than reading them one by one.
const PrefetchMin = 10

// NewClusterGetter returns a Getter for the cluster cfg points at.
func NewClusterGetter(cfg *rest.Config) (*ClusterGetter, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster discovery client: %w", err)
	}
	return &ClusterGetter{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))}, nil
}

// Prefetch lists every resource and namespace that at least PrefetchMin of
// metas are in. A list that fails, or that grows far beyond the objects
// asked for (a namespace with many unrelated objects), is dropped.
func (g *ClusterGetter) Prefetch(ctx context.Context, metas []workv1.ManifestResourceMeta) {
	counts := map[listKey]int{}
	for _, m := range metas {
		if gvr, err := g.resource(m); err == nil {
			counts[listKey{gvr, m.Namespace}]++
		}
	}
	listed := map[listKey]map[string]*unstructured.Unstructured{}
	for key, n := range counts {
		if n < PrefetchMin {
			continue
		}
		if objs, ok := g.list(ctx, key, 50*n+500); ok {
			listed[key] = objs
		}
	}
	g.mu.Lock()
	g.listed = listed
	g.mu.Unlock()
}

// list reads all objects of key in pages; false if it fails or passes max.
func (g *ClusterGetter) list(ctx context.Context, key listKey, max int) (map[string]*unstructured.Unstructured, bool) {
	var ri dynamic.ResourceInterface = g.dyn.Resource(key.gvr)
	if key.namespace != "" {
		ri = g.dyn.Resource(key.gvr).Namespace(key.namespace)
	}
	objs := map[string]*unstructured.Unstructured{}
	opts := metav1.ListOptions{Limit: 500}
	for {
		l, err := ri.List(ctx, opts)
		if err != nil {
			return nil, false
		}
		for i := range l.Items {
			objs[l.Items[i].GetName()] = &l.Items[i]
		}
		if len(objs) > max {
			return nil, false
		}
		if opts.Continue = l.GetContinue(); opts.Continue == "" {
			return objs, true
		}
	}
}

// prefetched answers a Get from the last Prefetch, if it listed the object's
// resource and namespace.
func (g *ClusterGetter) prefetched(gvr schema.GroupVersionResource, meta workv1.ManifestResourceMeta) (*unstructured.Unstructured, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	objs, ok := g.listed[listKey{gvr, meta.Namespace}]
	if !ok {
		return nil, false
	}
	obj := objs[meta.Name]
	if obj == nil {
		return nil, true
	}
	return obj.DeepCopy(), true
}

// Get reads the object meta identifies; (nil, nil) when it does not exist.
func (g *ClusterGetter) Get(ctx context.Context, meta workv1.ManifestResourceMeta) (*unstructured.Unstructured, error) {
	gvr, err := g.resource(meta)
	if err != nil {
		return nil, err
	}
	if obj, ok := g.prefetched(gvr, meta); ok {
		return obj, nil
	}
	var ri dynamic.ResourceInterface = g.dyn.Resource(gvr)
	if meta.Namespace != "" {
		ri = g.dyn.Resource(gvr).Namespace(meta.Namespace)
	}
	obj, err := ri.Get(ctx, meta.Name, metav1.GetOptions{})
	if objectNotFound(err, meta.Name) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", gvr.String(), err)
	}
	return obj, nil
}

func (g *ClusterGetter) resource(meta workv1.ManifestResourceMeta) (schema.GroupVersionResource, error) {
	if meta.Resource != "" && meta.Version != "" {
		return schema.GroupVersionResource{Group: meta.Group, Version: meta.Version, Resource: meta.Resource}, nil
	}
	gk := schema.GroupKind{Group: meta.Group, Kind: meta.Kind}
	var versions []string
	if meta.Version != "" {
		versions = []string{meta.Version}
	}
	if meta.Kind == "" {
		gvr, err := g.mapper.ResourceFor(schema.GroupVersionResource{Group: meta.Group, Version: meta.Version, Resource: meta.Resource})
		if err != nil {
			return gvr, fmt.Errorf("resolving resource %s: %w", meta.Resource, err)
		}
		return gvr, nil
	}
	m, err := g.mapper.RESTMapping(gk, versions...)
	if err != nil {
		return schema.GroupVersionResource{}, fmt.Errorf("resolving kind %s: %w", gk, err)
	}
	return m.Resource, nil
}

// objectNotFound tells a missing object from a resource type the server
// does not serve, which is a 404 too but names no object.
func objectNotFound(err error, name string) bool {
	var st apierrors.APIStatus
	if !apierrors.IsNotFound(err) || !errors.As(err, &st) {
		return false
	}
	d := st.Status().Details
	return d != nil && d.Name == name
}

package doctor

import (
	"context"
	"errors"
	"fmt"

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
type ClusterGetter struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

var _ Getter = (*ClusterGetter)(nil)

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

// Get reads the object meta identifies; (nil, nil) when it does not exist.
func (g *ClusterGetter) Get(ctx context.Context, meta workv1.ManifestResourceMeta) (*unstructured.Unstructured, error) {
	gvr, err := g.resource(meta)
	if err != nil {
		return nil, err
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

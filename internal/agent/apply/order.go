package apply

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Apply tiers. Objects are applied tier by tier, in increasing order, and
// deleted in decreasing order; within a tier they are independent and are
// processed in ordinal order (in parallel up to Options.Concurrency).
const (
	tierNamespace = iota // Namespaces
	tierCRD              // CustomResourceDefinitions (then wait for Established)
	tierConfig           // identities, RBAC, configuration, storage
	tierWorkload         // everything else, custom resources included
	tierWebhook          // admission webhooks and policies, API services
	tiers
)

var kindTier = map[schema.GroupKind]int{
	{Kind: "Namespace"}: tierNamespace,
	{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}: tierCRD,

	{Kind: "ServiceAccount"}:                                         tierConfig,
	{Kind: "Secret"}:                                                 tierConfig,
	{Kind: "ConfigMap"}:                                              tierConfig,
	{Kind: "ResourceQuota"}:                                          tierConfig,
	{Kind: "LimitRange"}:                                             tierConfig,
	{Kind: "PersistentVolume"}:                                       tierConfig,
	{Kind: "PersistentVolumeClaim"}:                                  tierConfig,
	{Group: "scheduling.k8s.io", Kind: "PriorityClass"}:              tierConfig,
	{Group: "storage.k8s.io", Kind: "StorageClass"}:                  tierConfig,
	{Group: "node.k8s.io", Kind: "RuntimeClass"}:                     tierConfig,
	{Group: "networking.k8s.io", Kind: "IngressClass"}:               tierConfig,
	{Group: "networking.k8s.io", Kind: "NetworkPolicy"}:              tierConfig,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:        tierConfig,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}: tierConfig,
	{Group: "rbac.authorization.k8s.io", Kind: "Role"}:               tierConfig,
	{Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}:        tierConfig,

	{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"}:     tierWebhook,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration"}:   tierWebhook,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicy"}:        tierWebhook,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicyBinding"}: tierWebhook,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingAdmissionPolicy"}:          tierWebhook,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingAdmissionPolicyBinding"}:   tierWebhook,
	{Group: "apiregistration.k8s.io", Kind: "APIService"}:                             tierWebhook,
}

// tierOf returns the apply tier of a kind.
func tierOf(gk schema.GroupKind) int {
	if t, ok := kindTier[gk]; ok {
		return t
	}
	return tierWorkload
}

// manifest is one decoded manifest of a bundle.
type manifest struct {
	ordinal int
	obj     *unstructured.Unstructured
	gvk     schema.GroupVersionKind
	mapping *meta.RESTMapping // set once the kind is resolved
	err     *Error            // set when the manifest cannot be applied
}

// decode parses manifest i; an unusable manifest gets a terminal error.
func decode(i int, raw json.RawMessage) *manifest {
	m := &manifest{ordinal: i, obj: &unstructured.Unstructured{}}
	invalid := func(err error) *manifest {
		m.err = &Error{Object: m.id(), Action: "decode", Reason: ReasonInvalidManifest, Terminal: true, Err: err}
		return m
	}
	if err := m.obj.UnmarshalJSON(raw); err != nil {
		m.obj = &unstructured.Unstructured{Object: map[string]any{}}
		return invalid(err)
	}
	m.gvk = m.obj.GroupVersionKind()
	// Fields the server owns are not part of what the bundle applies.
	unstructured.RemoveNestedField(m.obj.Object, "status")
	for _, f := range serverMetadata {
		unstructured.RemoveNestedField(m.obj.Object, "metadata", f)
	}
	switch {
	case m.gvk.Version == "":
		return invalid(errors.New("apiVersion is required"))
	case m.obj.GetName() == "":
		return invalid(errors.New("metadata.name is required"))
	}
	return m
}

var serverMetadata = []string{"resourceVersion", "uid", "creationTimestamp", "generation",
	"managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"}

// id names the object in errors: "Service ns/name".
func (m *manifest) id() string {
	if m.obj == nil || m.gvk.Kind == "" || m.obj.GetName() == "" {
		return fmt.Sprintf("manifest[%d]", m.ordinal)
	}
	return objectID(m.gvk.Kind, m.obj.GetNamespace(), m.obj.GetName())
}

func objectID(kind, namespace, name string) string {
	if namespace == "" {
		return kind + " " + name
	}
	return kind + " " + namespace + "/" + name
}

// key identifies the object independently of its API version.
func (m *manifest) key() objectKey {
	return objectKey{Group: m.gvk.Group, Kind: m.gvk.Kind, Namespace: m.obj.GetNamespace(), Name: m.obj.GetName()}
}

// objectKey identifies an object across API versions.
type objectKey struct{ Group, Kind, Namespace, Name string }

// byTier groups items by tier, each group in ordinal order.
func byTier[T any](items []T, tier func(T) int, ordinal func(T) int) [tiers][]T {
	var out [tiers][]T
	for _, it := range items {
		t := tier(it)
		out[t] = append(out[t], it)
	}
	for t := range out {
		slices.SortStableFunc(out[t], func(a, b T) int { return ordinal(a) - ordinal(b) })
	}
	return out
}

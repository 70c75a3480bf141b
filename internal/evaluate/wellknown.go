package evaluate

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/pkg/api"
)

var (
	gkDeployment  = schema.GroupKind{Group: "apps", Kind: "Deployment"}
	gkDaemonSet   = schema.GroupKind{Group: "apps", Kind: "DaemonSet"}
	gkJob         = schema.GroupKind{Group: "batch", Kind: "Job"}
	gkPod         = schema.GroupKind{Group: "", Kind: "Pod"}
	gkStatefulSet = schema.GroupKind{Group: "apps", Kind: "StatefulSet"}
)

// wellKnown is the WellKnownStatus rule per kind: value names as in Open
// Cluster Management's well-known rules, in report order.
var wellKnown = map[schema.GroupKind][]workv1.JsonPath{
	gkDeployment: {
		{Name: "ReadyReplicas", Path: ".status.readyReplicas"},
		{Name: "Replicas", Path: ".status.replicas"},
		{Name: "AvailableReplicas", Path: ".status.availableReplicas"},
		{Name: "UpdatedReplicas", Path: ".status.updatedReplicas"},
		{Name: "ObservedGeneration", Path: ".status.observedGeneration"},
	},
	gkDaemonSet: {
		{Name: "NumberReady", Path: ".status.numberReady"},
		{Name: "DesiredNumberScheduled", Path: ".status.desiredNumberScheduled"},
		{Name: "NumberAvailable", Path: ".status.numberAvailable"},
		{Name: "NumberMisscheduled", Path: ".status.numberMisscheduled"},
		{Name: "UpdatedNumberScheduled", Path: ".status.updatedNumberScheduled"},
	},
	gkJob: {
		{Name: "JobComplete", Path: `.status.conditions[?(@.type=="Complete")].status`},
		{Name: "JobSucceeded", Path: ".status.succeeded"},
		{Name: "JobActive", Path: ".status.active"},
		{Name: "JobFailed", Path: ".status.failed"},
	},
	gkPod: {
		{Name: "PodPhase", Path: ".status.phase"},
		{Name: "PodReady", Path: `.status.conditions[?(@.type=="Ready")].status`},
	},
}

// WellKnownPaths returns the WellKnownStatus paths for a kind.
func WellKnownPaths(gk schema.GroupKind) ([]workv1.JsonPath, bool) {
	p, ok := wellKnown[gk]
	return p, ok
}

// Available is the Available condition (without time) of an existing
// object: True as soon as it exists, whatever its kind. This is Open
// Cluster Management's meaning; readiness is not availability here. It
// comes from WellKnownStatus feedback values (ReadyReplicas, PodReady, ...)
// and from condition rules (WellKnownConditions Ready or Complete, CEL).
func Available(obj *unstructured.Unstructured) metav1.Condition {
	return metav1.Condition{Type: api.ConditionAvailable, Status: metav1.ConditionTrue,
		Reason: ReasonAvailable, Message: "The object exists"}
}

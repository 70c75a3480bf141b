package evaluate

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/pkg/api"
)

var (
	gkDeployment = schema.GroupKind{Group: "apps", Kind: "Deployment"}
	gkDaemonSet  = schema.GroupKind{Group: "apps", Kind: "DaemonSet"}
	gkJob        = schema.GroupKind{Group: "batch", Kind: "Job"}
	gkPod        = schema.GroupKind{Group: "", Kind: "Pod"}
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

// availability decides Available for an existing object of one kind:
// true, or false with a reason and message.
type availability func(obj map[string]any) (bool, string, string)

// availableRules is the per-kind Available rule; kinds not listed are
// available as soon as they exist (Open Cluster Management's meaning).
var availableRules = map[schema.GroupKind]availability{
	gkDeployment: deploymentAvailable,
	gkDaemonSet:  daemonSetAvailable,
	gkJob:        jobAvailable,
	gkPod:        podAvailable,
}

// Available evaluates the Available condition (without time) of an
// existing object:
//   - Deployment: status.readyReplicas >= spec.replicas (default 1);
//   - DaemonSet: status.numberReady >= status.desiredNumberScheduled;
//   - Job: not failed (no condition Failed=True);
//   - Pod: condition Ready=True, or phase Succeeded;
//   - any other kind: True as soon as it exists.
func Available(obj *unstructured.Unstructured) metav1.Condition {
	c := metav1.Condition{Type: api.ConditionAvailable, Status: metav1.ConditionTrue,
		Reason: ReasonAvailable, Message: "The object exists"}
	rule, ok := availableRules[obj.GroupVersionKind().GroupKind()]
	if !ok {
		return c
	}
	if ready, reason, msg := rule(obj.Object); ready {
		c.Message = msg
	} else {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, reason, msg
	}
	return c
}

func deploymentAvailable(o map[string]any) (bool, string, string) {
	desired, found, _ := unstructured.NestedInt64(o, "spec", "replicas")
	if !found {
		desired = 1
	}
	ready, _, _ := unstructured.NestedInt64(o, "status", "readyReplicas")
	msg := fmt.Sprintf("%d/%d replicas ready", ready, desired)
	return ready >= desired, ReasonNotReady, msg
}

func daemonSetAvailable(o map[string]any) (bool, string, string) {
	desired, _, _ := unstructured.NestedInt64(o, "status", "desiredNumberScheduled")
	ready, _, _ := unstructured.NestedInt64(o, "status", "numberReady")
	msg := fmt.Sprintf("%d/%d scheduled pods ready", ready, desired)
	return ready >= desired, ReasonNotReady, msg
}

func jobAvailable(o map[string]any) (bool, string, string) {
	if conditionStatus(o, "Failed") == "True" {
		return false, ReasonJobFailed, "The job failed"
	}
	return true, "", "The job has not failed"
}

func podAvailable(o map[string]any) (bool, string, string) {
	phase, _, _ := unstructured.NestedString(o, "status", "phase")
	if phase == "Succeeded" {
		return true, "", "The pod succeeded"
	}
	if conditionStatus(o, "Ready") == "True" {
		return true, "", "The pod is ready"
	}
	if phase == "" {
		phase = "Unknown"
	}
	return false, ReasonNotReady, fmt.Sprintf("The pod is not ready (phase %s)", phase)
}

// conditionStatus returns the status of condition typ in status.conditions.
func conditionStatus(o map[string]any, typ string) string {
	conds, _, _ := unstructured.NestedSlice(o, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == typ {
			s, _ := m["status"].(string)
			return s
		}
	}
	return ""
}

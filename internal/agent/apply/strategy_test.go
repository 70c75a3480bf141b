package apply

import (
	"encoding/json"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	workv1 "open-cluster-management.io/api/work/v1"
)

func TestStrategyFor(t *testing.T) {
	ssa := workv1.UpdateStrategy{Type: workv1.UpdateStrategyTypeServerSideApply}
	ro := workv1.UpdateStrategy{Type: workv1.UpdateStrategyTypeReadOnly}
	configs := []workv1.ManifestConfigOption{
		{ResourceIdentifier: workv1.ResourceIdentifier{Resource: "services", Namespace: "hypershift-sharedingress", Name: "router"}, UpdateStrategy: &ro},
		{ResourceIdentifier: workv1.ResourceIdentifier{Group: "apps", Resource: "*", Namespace: "*", Name: "*"}, UpdateStrategy: &ssa},
		{ResourceIdentifier: workv1.ResourceIdentifier{Resource: "configmaps", Namespace: "*", Name: "feedback-only"}}, // no strategy
	}
	for name, tc := range map[string]struct {
		id   identity
		want workv1.UpdateStrategyType
	}{
		"exact":             {identity{"", "services", "hypershift-sharedingress", "router"}, workv1.UpdateStrategyTypeReadOnly},
		"other name":        {identity{"", "services", "hypershift-sharedingress", "other"}, workv1.UpdateStrategyTypeUpdate},
		"wildcards":         {identity{"apps", "deployments", "x", "web"}, workv1.UpdateStrategyTypeServerSideApply},
		"group must match":  {identity{"", "deployments", "x", "web"}, workv1.UpdateStrategyTypeUpdate},
		"config without st": {identity{"", "configmaps", "x", "feedback-only"}, workv1.UpdateStrategyTypeUpdate},
		"cluster scoped":    {identity{"apps", "whatever", "", "n"}, workv1.UpdateStrategyTypeServerSideApply},
	} {
		t.Run(name, func(t *testing.T) {
			if got := strategyFor(configs, tc.id).Type; got != tc.want {
				t.Fatalf("strategy: got %q; want %q", got, tc.want)
			}
		})
	}
}

func TestOrphaned(t *testing.T) {
	id := identity{"", "configmaps", "ns", "a"}
	sel := func(rules ...workv1.OrphaningRule) *workv1.DeleteOption {
		return &workv1.DeleteOption{PropagationPolicy: workv1.DeletePropagationPolicyTypeSelectivelyOrphan,
			SelectivelyOrphan: &workv1.SelectivelyOrphan{OrphaningRules: rules}}
	}
	for name, tc := range map[string]struct {
		opt  *workv1.DeleteOption
		want string
	}{
		"nil":            {nil, ""},
		"foreground":     {&workv1.DeleteOption{PropagationPolicy: workv1.DeletePropagationPolicyTypeForeground}, ""},
		"orphan":         {&workv1.DeleteOption{PropagationPolicy: workv1.DeletePropagationPolicyTypeOrphan}, ReasonOrphanPolicy},
		"rule matches":   {sel(workv1.OrphaningRule{Resource: "configmaps", Namespace: "ns", Name: "a"}), ReasonOrphaningRule},
		"rule wildcard":  {sel(workv1.OrphaningRule{Resource: "*", Namespace: "*", Name: "*"}), ReasonOrphaningRule},
		"rule pattern":   {sel(workv1.OrphaningRule{Resource: "config*", Namespace: "n?", Name: "a*"}), ReasonOrphaningRule},
		"rule other":     {sel(workv1.OrphaningRule{Resource: "configmaps", Namespace: "ns", Name: "b"}), ""},
		"selective none": {&workv1.DeleteOption{PropagationPolicy: workv1.DeletePropagationPolicyTypeSelectivelyOrphan}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			ok, why := orphaned(tc.opt, id)
			if ok != (tc.want != "") || why != tc.want {
				t.Fatalf("orphaned: got %v %q; want %q", ok, why, tc.want)
			}
		})
	}
}

func obj(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON([]byte(s)); err != nil {
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	return u.Object
}

func TestSubset(t *testing.T) {
	live := `{"apiVersion":"v1","kind":"Service","metadata":{"name":"r","namespace":"n","uid":"u","labels":{"a":"1","b":"2"}},
		"spec":{"type":"ClusterIP","clusterIP":"10.0.0.1","ports":[{"name":"https","port":443,"protocol":"TCP","targetPort":8443}],"sessionAffinity":"None"}}`
	for name, tc := range map[string]struct {
		want string
		ok   bool
	}{
		"same fields":        {`{"apiVersion":"v1","kind":"Service","metadata":{"name":"r","namespace":"n","labels":{"a":"1"}},"spec":{"ports":[{"port":443,"targetPort":8443}]}}`, true},
		"changed label":      {`{"apiVersion":"v1","kind":"Service","metadata":{"name":"r","labels":{"a":"2"}}}`, false},
		"new label":          {`{"apiVersion":"v1","kind":"Service","metadata":{"name":"r","labels":{"c":"3"}}}`, false},
		"changed port":       {`{"apiVersion":"v1","kind":"Service","metadata":{"name":"r"},"spec":{"ports":[{"port":80}]}}`, false},
		"extra list item":    {`{"apiVersion":"v1","kind":"Service","metadata":{"name":"r"},"spec":{"ports":[{"port":443},{"port":80}]}}`, false},
		"zero absent":        {`{"apiVersion":"v1","kind":"Service","metadata":{"name":"r","annotations":{}},"spec":{"externalName":"","publishNotReadyAddresses":false,"ports":[{"port":443,"nodePort":0}]}}`, true},
		"zero vs value":      {`{"apiVersion":"v1","kind":"Service","metadata":{"name":"r"},"spec":{"sessionAffinity":""}}`, false},
		"float equals int":   {`{"spec":{"ports":[{"port":443.0}]}}`, true},
		"type change":        {`{"spec":{"ports":[{"port":"443"}]}}`, false},
		"map where list":     {`{"spec":{"ports":{"port":443}}}`, false},
		"new top-level data": {`{"data":{"k":"v"}}`, false},
	} {
		t.Run(name, func(t *testing.T) {
			if got := subset(obj(t, tc.want), obj(t, live)); got != tc.ok {
				t.Fatalf("subset: got %v; want %v", got, tc.ok)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	live := &unstructured.Unstructured{Object: obj(t, `{"apiVersion":"v1","kind":"ConfigMap",
		"metadata":{"name":"a","resourceVersion":"7","labels":{"keep":"x","l":"old"},"annotations":{"baton.dev/bundle":"b"}},
		"data":{"old":"1"},"binaryData":{"b":"AA=="}}`)}
	want := &unstructured.Unstructured{Object: obj(t, `{"apiVersion":"v1","kind":"ConfigMap",
		"metadata":{"name":"a","labels":{"l":"new"}},"data":{"new":"2"}}`)}
	got, _ := json.Marshal(merge(live, want).Object)
	exp := `{"apiVersion":"v1","binaryData":{"b":"AA=="},"data":{"new":"2"},"kind":"ConfigMap","metadata":{"annotations":{"baton.dev/bundle":"b"},"labels":{"keep":"x","l":"new"},"name":"a","resourceVersion":"7"}}`
	if string(got) != exp {
		t.Fatalf("merge:\ngot  %s\nwant %s", got, exp)
	}
	if live.Object["data"].(map[string]any)["old"] != "1" {
		t.Fatal("merge modified the live object")
	}
}

func TestOwnedBy(t *testing.T) {
	live := &unstructured.Unstructured{}
	live.SetUID("u1")
	stamped := live.DeepCopy()
	stamped.SetAnnotations(map[string]string{AnnotationBundle: "b"})
	for name, tc := range map[string]struct {
		prev *RecordedObject
		live *unstructured.Unstructured
		want bool
	}{
		"recorded owned":          {&RecordedObject{UID: "u1", Owned: true}, live, true},
		"recorded not owned":      {&RecordedObject{UID: "u1"}, stamped, false},
		"recorded uid changed":    {&RecordedObject{UID: "u0", Owned: true}, stamped, false},
		"unrecorded, stamped":     {nil, stamped, true},
		"unrecorded, not stamped": {nil, live, false},
		"unrecorded, other bundle": {nil, func() *unstructured.Unstructured {
			o := stamped.DeepCopy()
			o.SetAnnotations(map[string]string{AnnotationBundle: "x"})
			return o
		}(), false},
	} {
		t.Run(name, func(t *testing.T) {
			if got := ownedBy("b", tc.prev, tc.live); got != tc.want {
				t.Fatalf("ownedBy: got %v; want %v", got, tc.want)
			}
		})
	}
}

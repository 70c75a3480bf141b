package doctor

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/yaml"

	"github.com/baton-dev/baton/pkg/api"
)

var routerMeta = workv1.ManifestResourceMeta{Version: "v1", Kind: "Service", Resource: "services",
	Name: "router", Namespace: "hypershift-sharedingress"}

func ipBundle() *api.ResourceBundle {
	return &api.ResourceBundle{ID: "b1", Name: "shared-ingress", ConsumerName: "mgmt-1",
		ManifestConfigs: []workv1.ManifestConfigOption{{
			ResourceIdentifier: workv1.ResourceIdentifier{Resource: "services", Name: "router", Namespace: "hypershift-sharedingress"},
			FeedbackRules: []workv1.FeedbackRule{{Type: workv1.JSONPathsType,
				JsonPaths: []workv1.JsonPath{{Name: "ip", Path: ".status.loadBalancer.ingress[0].ip"}}}},
		}}}
}

func str(s string) workv1.FieldValue { return workv1.FieldValue{Type: workv1.String, String: &s} }

func ipValue(ip string) workv1.StatusFeedbackResult {
	return workv1.StatusFeedbackResult{Values: []workv1.FeedbackValue{{Name: "ip", Value: str(ip)}}}
}

func service(t *testing.T, uid, rv, ip string) *unstructured.Unstructured {
	t.Helper()
	src := `apiVersion: v1
kind: Service
metadata: {name: router, namespace: hypershift-sharedingress}
status: {loadBalancer: {ingress: [{ip: "` + ip + `"}]}}`
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(src), &u.Object); err != nil {
		t.Fatal(err)
	}
	u.SetUID(types.UID(uid))
	u.SetResourceVersion(rv)
	return u
}

func available(s metav1.ConditionStatus, reason string) []metav1.Condition {
	return []metav1.Condition{{Type: api.ConditionAvailable, Status: s, Reason: reason}}
}

func TestCompare(t *testing.T) {
	at := time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)
	baton := func(exists bool, uid, rv string, fb workv1.StatusFeedbackResult) api.ResourceStatus {
		return api.ResourceStatus{ResourceMeta: routerMeta, StatusFeedbacks: fb,
			Observed: api.Observed{Exists: exists, UID: uid, ResourceVersion: rv, ObservedAt: at}}
	}
	maestro := func(conds []metav1.Condition, fb workv1.StatusFeedbackResult) api.ResourceStatus {
		return api.ResourceStatus{ResourceMeta: routerMeta, StatusFeedbacks: fb, Conditions: conds}
	}
	cases := map[string]struct {
		rs   api.ResourceStatus
		live *unstructured.Unstructured
		want [][3]string // field, reported, live
	}{
		"baton agrees": {
			rs: baton(true, "u1", "7", ipValue("20.1.2.3")), live: service(t, "u1", "7", "20.1.2.3"),
		},
		"baton recreated object": {
			rs:   baton(true, "u1", "7", ipValue("20.1.2.3")),
			live: service(t, "u2", "9", "20.9.9.9"),
			want: [][3]string{{"uid", "u1", "u2"}, {"resourceVersion", "7", "9"}, {"feedback.ip", "20.1.2.3", "20.9.9.9"}},
		},
		"baton reports missing object that exists": {
			rs:   baton(false, "", "", workv1.StatusFeedbackResult{}),
			live: service(t, "u2", "9", "20.9.9.9"),
			want: [][3]string{{"exists", "false", "true"}, {"feedback.ip", None, "20.9.9.9"}},
		},
		"baton missing and missing": {rs: baton(false, "", "", workv1.StatusFeedbackResult{})},
		"baton reports object that is gone": {
			rs:   baton(true, "u1", "7", ipValue("20.1.2.3")),
			want: [][3]string{{"exists", "true", "false"}, {"feedback.ip", "20.1.2.3", ObjectNotFound}},
		},
		"maestro stale ip": {
			rs:   maestro(available(metav1.ConditionTrue, ""), ipValue("20.1.2.3")),
			live: service(t, "u2", "9", "20.9.9.9"),
			want: [][3]string{{"feedback.ip", "20.1.2.3", "20.9.9.9"}},
		},
		"maestro agrees (no uid or resourceVersion compared)": {
			rs:   maestro(available(metav1.ConditionTrue, ""), ipValue("20.9.9.9")),
			live: service(t, "u2", "9", "20.9.9.9"),
		},
		"maestro keeps values of a deleted object": {
			rs:   maestro(available(metav1.ConditionFalse, "ResourceNotAvailable"), ipValue("20.1.2.3")),
			want: [][3]string{{"feedback.ip", "20.1.2.3", ObjectNotFound}},
		},
		"maestro values without conditions imply existence": {
			rs:   maestro(nil, ipValue("20.1.2.3")),
			want: [][3]string{{"exists", "true", "false"}, {"feedback.ip", "20.1.2.3", ObjectNotFound}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := Compare(ipBundle(), &tc.rs, tc.live)
			var fields [][3]string
			for _, m := range got {
				fields = append(fields, [3]string{m.Field, m.Reported, m.Live})
				if m.Bundle != "shared-ingress" || m.Consumer != "mgmt-1" || m.BundleID != "b1" ||
					m.Object != "Service hypershift-sharedingress/router" {
					t.Errorf("mismatch identity %+v", m)
				}
			}
			if !reflect.DeepEqual(fields, tc.want) {
				t.Errorf("got %v; want %v", fields, tc.want)
			}
		})
	}
}

func TestFormatValue(t *testing.T) {
	i, b, raw := int64(3), true, "{ \"a\": [1, 2] }"
	cases := map[string]workv1.FieldValue{
		"3":           {Type: workv1.Integer, Integer: &i},
		"true":        {Type: workv1.Boolean, Boolean: &b},
		`{"a":[1,2]}`: {Type: workv1.JsonRaw, JsonRaw: &raw},
		"x":           str("x"),
		None:          {},
	}
	for want, v := range cases {
		if got := FormatValue(v); got != want {
			t.Errorf("FormatValue(%+v) = %q; want %q", v, got, want)
		}
	}
}

type mapGetter map[string]*unstructured.Unstructured

func (g mapGetter) Get(_ context.Context, m workv1.ManifestResourceMeta) (*unstructured.Unstructured, error) {
	if m.Name == "broken" {
		return nil, errors.New("forbidden")
	}
	return g[m.Name], nil
}

func TestCheckCountsAndErrors(t *testing.T) {
	b := ipBundle()
	broken := routerMeta
	broken.Name = "broken"
	b.Status = &api.BundleStatus{ResourceStatus: []api.ResourceStatus{
		{ResourceMeta: routerMeta, StatusFeedbacks: ipValue("1.1.1.1"), Conditions: available(metav1.ConditionTrue, "")},
		{ResourceMeta: broken},
	}}
	noStatus := api.ResourceBundle{ID: "b2", Name: "pending"}
	res := Check(context.Background(), mapGetter{"router": service(t, "u", "1", "2.2.2.2")}, []api.ResourceBundle{*b, noStatus})
	if res.Bundles != 1 || res.Objects != 2 || len(res.Mismatches) != 1 || len(res.Errors) != 1 {
		t.Fatalf("got %+v", res)
	}
	if res.OK() {
		t.Error("OK() with a mismatch")
	}
	if ids := res.BundleIDs(); !reflect.DeepEqual(ids, []string{"b1"}) {
		t.Errorf("BundleIDs %v", ids)
	}
}

func TestDisplayAndObjectName(t *testing.T) {
	if got := DisplayName(&api.ResourceBundle{ID: "x", Name: "x", Metadata: api.ObjectMeta{Name: "work"}}); got != "work" {
		t.Errorf("maestro bundle display name %q; want work", got)
	}
	if got := ObjectName(workv1.ManifestResourceMeta{Kind: "Namespace", Name: "n"}); got != "Namespace n" {
		t.Errorf("cluster-scoped object name %q", got)
	}
}

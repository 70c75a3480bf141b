package apply

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestByTierOrder(t *testing.T) {
	docs := []string{
		`{"apiVersion":"admissionregistration.k8s.io/v1","kind":"ValidatingWebhookConfiguration","metadata":{"name":"hook"}}`,
		`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"n"}}`,
		`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w","namespace":"n"}}`,
		`{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"sa","namespace":"n"}}`,
		`{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"widgets.example.com"}}`,
		`{"apiVersion":"v1","kind":"Service","metadata":{"name":"svc","namespace":"n"}}`,
		`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"n"}}`,
		`{"apiVersion":"admissionregistration.k8s.io/v1","kind":"MutatingWebhookConfiguration","metadata":{"name":"mhook"}}`,
		`{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"rb","namespace":"n"}}`,
	}
	var ms []*manifest
	for i, d := range docs {
		ms = append(ms, decode(i, json.RawMessage(d)))
	}
	groups := byTier(ms, func(m *manifest) int { return tierOf(m.gvk.GroupKind()) }, func(m *manifest) int { return m.ordinal })
	var got []string
	for _, g := range groups {
		var names []string
		for _, m := range g {
			names = append(names, m.gvk.Kind)
		}
		got = append(got, strings.Join(names, ","))
	}
	want := []string{
		"Namespace",
		"CustomResourceDefinition",
		"ServiceAccount,RoleBinding",
		"Deployment,Widget,Service",
		"ValidatingWebhookConfiguration,MutatingWebhookConfiguration",
	}
	if strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Fatalf("tiers:\ngot  %s\nwant %s", strings.Join(got, " | "), strings.Join(want, " | "))
	}
}

func TestDecode(t *testing.T) {
	for name, tc := range map[string]struct {
		doc, id string
		ok      bool
	}{
		"valid":        {`{"apiVersion":"v1","kind":"Service","metadata":{"name":"router","namespace":"hypershift-sharedingress"}}`, "Service hypershift-sharedingress/router", true},
		"cluster":      {`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"n"}}`, "Namespace n", true},
		"no name":      {`{"apiVersion":"v1","kind":"Service","metadata":{"namespace":"x"}}`, "manifest[3]", false},
		"no version":   {`{"kind":"Service","metadata":{"name":"x"}}`, "Service x", false},
		"not object":   {`[1,2]`, "manifest[3]", false},
		"invalid json": {`{"apiVersion":`, "manifest[3]", false},
	} {
		t.Run(name, func(t *testing.T) {
			m := decode(3, json.RawMessage(tc.doc))
			if (m.err == nil) != tc.ok || m.id() != tc.id {
				t.Fatalf("decode: got id %q err %v; want id %q ok=%v", m.id(), m.err, tc.id, tc.ok)
			}
			if m.err != nil && (!m.err.Terminal || m.err.Reason != ReasonInvalidManifest) {
				t.Fatalf("decode error: got %+v; want terminal InvalidManifest", m.err)
			}
		})
	}
}

func TestDecodeDropsServerFields(t *testing.T) {
	m := decode(0, json.RawMessage(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","uid":"u","resourceVersion":"9",
		"creationTimestamp":"2020-01-01T00:00:00Z","managedFields":[{}]},"data":{"k":"v"},"status":{"x":1}}`))
	if m.err != nil {
		t.Fatal(m.err)
	}
	got, _ := json.Marshal(m.obj.Object)
	want := `{"apiVersion":"v1","data":{"k":"v"},"kind":"ConfigMap","metadata":{"name":"a"}}`
	if string(got) != want {
		t.Fatalf("decoded manifest: got %s; want %s", got, want)
	}
}

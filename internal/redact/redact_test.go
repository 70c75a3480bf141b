package redact

import (
	"encoding/json"
	"strings"
	"testing"

	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/pkg/api"
)

func TestBundle(t *testing.T) {
	secret := json.RawMessage(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"data":{"k":"aHVudGVyMg=="},"stringData":{"p":"hunter2"}}`)
	cm := json.RawMessage(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"k":"visible"}}`)
	notCore := json.RawMessage(`{"apiVersion":"example.com/v1","kind":"Secret","data":{"k":"kept"}}`)
	v := "hunter2"
	b := store.Bundle{Spec: api.BundleSpec{Manifests: []json.RawMessage{cm, secret, notCore}}}
	b.Status.Reported.ResourceStatus = []api.ResourceStatus{{
		ResourceMeta:    workv1.ManifestResourceMeta{Kind: "Secret", Name: "s"},
		StatusFeedbacks: workv1.StatusFeedbackResult{Values: []workv1.FeedbackValue{{Name: "p", Value: workv1.FieldValue{Type: workv1.String, String: &v}}}},
	}}
	out := Bundle(b)
	all, _ := json.Marshal(out)
	if strings.Contains(string(all), "hunter2") || strings.Contains(string(all), "aHVudGVyMg==") {
		t.Fatalf("secret values left: %s", all)
	}
	for _, want := range []string{`"k":"REDACTED"`, `"p":"REDACTED"`, `"visible"`, `"kept"`} {
		if !strings.Contains(string(all), want) {
			t.Errorf("redacted bundle lacks %s: %s", want, all)
		}
	}
	// The input is not changed.
	if string(b.Spec.Manifests[1]) != string(secret) || *b.Status.Reported.ResourceStatus[0].StatusFeedbacks.Values[0].Value.String != "hunter2" {
		t.Error("Bundle changed its input")
	}
}

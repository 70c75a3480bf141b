package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/api/maestro"
	"github.com/baton-dev/baton/internal/api/rest"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/pkg/api"
)

// strictDecode decodes body into out the way Maestro's generated client
// does: unknown members are an error.
func strictDecode(t *testing.T, what string, body []byte, out any) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(out); err != nil {
		t.Fatalf("%s: a strict Maestro client rejects the answer: %v\n%s", what, err, body)
	}
}

// TestStrictMaestroClient decodes the answer of every route with the types
// generated from Maestro's schema (internal/api/maestro) with unknown
// fields disallowed, as Maestro's generated client does, with no opt-in:
// lists with items, single objects, baton's write routes and errors. With
// api.ExtensionsHeader the additions come back.
func TestStrictMaestroClient(t *testing.T) {
	s := storetest.NewSQLite(t)
	c := newClient(t, s, rest.Options{})
	c.strict = true
	cons := c.createConsumer("mgmt-1")
	if err := s.SetAgentState(context.Background(), "mgmt-1", store.AgentState{Connected: true, Epoch: "e1", LastHeartbeat: time.Now()}); err != nil {
		t.Fatal(err)
	}
	body := bundleBody("mgmt-1", "w1")
	body["source"] = "cs"
	b := c.createBundle(body)
	c.createBundle(bundleBody("mgmt-1", "w2"))
	st := storetest.SampleStatus("v")
	if _, _, err := s.ApplyStatus(context.Background(), store.StatusUpdate{ConsumerName: "mgmt-1", BundleID: b.ID,
		AgentEpoch: "e1", AgentRevision: 1, ObservedGeneration: b.Version, Hash: "h", SequenceID: "1", Reported: st, At: time.Now()}); err != nil {
		t.Fatal(err)
	}

	v1 := api.BasePath
	type route struct {
		method, path string
		body         any
		status       int
		out          func() any
	}
	bundle := func() any { return &maestro.ResourceBundle{} }
	consumer := func() any { return &maestro.Consumer{} }
	errBody := func() any { return &maestro.Error{} }
	put := bundleBody("mgmt-1", "w1")
	put["source"] = "cs"
	routes := []route{
		{"GET", v1 + "/consumers", nil, 200, func() any { return &maestro.ConsumerList{} }},
		{"GET", v1 + "/consumers?search=name='mgmt-1'&fields=name,labels", nil, 200, func() any { return &maestro.ConsumerList{} }},
		{"GET", v1 + "/consumers/" + cons.ID, nil, 200, consumer},
		{"GET", v1 + "/consumers/mgmt-1", nil, 200, consumer},
		{"PATCH", v1 + "/consumers/" + cons.ID, map[string]any{"labels": map[string]string{"env": "dev"}}, 200, consumer},
		{"POST", v1 + "/consumers", map[string]any{"name": "mgmt-2"}, 201, consumer},
		{"POST", v1 + "/consumers", map[string]any{"name": "mgmt-2"}, 409, errBody},
		{"GET", v1 + "/consumers/nope", nil, 404, errBody},
		{"GET", v1 + "/resource-bundles", nil, 200, func() any { return &maestro.ResourceBundleList{} }},
		{"GET", v1 + "/resource-bundles?search=consumer_name='mgmt-1'&orderBy=created_at desc&size=1", nil, 200, func() any { return &maestro.ResourceBundleList{} }},
		{"GET", v1 + "/resource-bundles?search=nope='x'", nil, 400, errBody},
		{"GET", v1 + "/resource-bundles/" + b.ID, nil, 200, bundle},
		{"GET", v1 + "/resource-bundles/" + b.ID + "?fields=name,status", nil, 200, bundle},
		{"GET", v1 + "/resource-bundles/nope", nil, 404, errBody},
		{"PUT", v1 + "/resource-bundles/" + b.ID, put, 200, bundle},
		{"PATCH", v1 + "/resource-bundles/" + b.ID, map[string]any{"metadata": map[string]any{"labels": map[string]string{"x": "y"}}}, 200, bundle},
		{"POST", v1 + "/resource-bundles", bundleBody("mgmt-1", "w3"), 201, bundle},
		{"POST", v1 + "/resource-bundles", bundleBody("mgmt-1", "w3"), 409, errBody},
		{"DELETE", v1 + "/consumers/" + cons.ID, nil, 409, errBody},
		{"GET", v1 + "/nope", nil, 404, errBody},
	}
	for _, r := range routes {
		what := r.method + " " + r.path
		resp := c.do(r.method, strings.ReplaceAll(r.path, " ", "%20"), r.body)
		if resp.status != r.status {
			t.Fatalf("%s: %s; want %d", what, resp, r.status)
		}
		strictDecode(t, what, resp.body, r.out())
	}

	// The bundle carries Maestro's metadata timestamps; the status keeps
	// baton's additions (an open object).
	var got maestro.ResourceBundle
	strictDecode(t, "GET bundle", c.expect(200, "GET", v1+"/resource-bundles/"+b.ID, nil, nil).body, &got)
	md := *got.Metadata
	if md["creationTimestamp"] == nil || md["deletionTimestamp"] != nil {
		t.Errorf("metadata %v: want creationTimestamp and no deletionTimestamp", md)
	}
	if _, ok := (*got.Status)["revision"]; !ok {
		t.Errorf("status %v lacks baton's revision", *got.Status)
	}
	c.expect(http.StatusNoContent, "DELETE", v1+"/resource-bundles/"+b.ID, nil, nil)
	strictDecode(t, "GET deleting bundle", c.expect(200, "GET", v1+"/resource-bundles/"+b.ID, nil, nil).body, &got)
	if (*got.Metadata)["deletionTimestamp"] == nil || got.DeletedAt == nil {
		t.Errorf("deleting bundle: metadata %v deleted_at %v; want both set", *got.Metadata, got.DeletedAt)
	}
	// It says what the delete waits for: the agent has not confirmed the
	// delete's version.
	var deleting api.ResourceBundle
	c.expect(200, "GET", v1+"/resource-bundles/"+b.ID, nil, &deleting)
	if d := deleting.Status.Deletion; d == nil || d.Reason != api.DeletionNotConfirmed || d.Since.IsZero() || !strings.Contains(d.Message, "mgmt-1") {
		t.Errorf("deleting bundle: status.deletion = %+v; want NotConfirmed since the delete, naming the consumer", d)
	}

	// Asked for, the additions are there.
	c.strict = false
	var rb api.ResourceBundle
	c.expect(200, "GET", v1+"/resource-bundles/"+b.ID, nil, &rb)
	var con api.Consumer
	c.expect(200, "GET", v1+"/consumers/mgmt-1", nil, &con)
	if rb.Source != "cs" || con.Agent == nil || !con.Agent.Connected {
		t.Errorf("with %s: source %q agent %+v; want cs and connected", api.ExtensionsHeader, rb.Source, con.Agent)
	}
}

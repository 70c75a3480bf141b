package rest_test

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/baton-dev/baton/internal/api/openapi"
	"github.com/baton-dev/baton/internal/api/rest"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/pkg/api"
)

// TestOpenAPIMatchesRoutes checks the document lists exactly the routes
// the handler registers (besides the server's own /healthz, /readyz and
// /metrics, checked in package server), and that the handler answers every
// documented API operation with a route (not "no such path" nor 405).
func TestOpenAPIMatchesRoutes(t *testing.T) {
	all, err := openapi.Operations()
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, op := range all {
		if strings.Contains(op, " /api/") {
			documented = append(documented, op)
		}
	}
	s := storetest.NewSQLite(t)
	h := rest.New(rest.Options{Store: s})
	var registered []string
	for _, r := range h.Routes() {
		registered = append(registered, r.Method+" "+r.Pattern)
	}
	sort.Strings(registered)
	if strings.Join(documented, "\n") != strings.Join(registered, "\n") {
		t.Fatalf("OpenAPI operations and registered routes differ:\ndocumented:\n  %s\nregistered:\n  %s",
			strings.Join(documented, "\n  "), strings.Join(registered, "\n  "))
	}
	c := newClient(t, s, rest.Options{})
	for _, op := range documented {
		method, path, _ := strings.Cut(op, " ")
		path = strings.ReplaceAll(path, "{id}", "some-id")
		r := c.do(method, path, "{}")
		if r.status == http.StatusMethodNotAllowed || strings.Contains(string(r.body), "no such path") {
			t.Errorf("%s: the server has no route for it: %s", op, r)
		}
	}
}

func TestMetaEndpoints(t *testing.T) {
	c := newClient(t, storetest.NewSQLite(t), rest.Options{})
	var root struct {
		Kind     string `json:"kind"`
		Versions []struct {
			ID   string `json:"id"`
			Href string `json:"href"`
		} `json:"versions"`
	}
	c.expect(http.StatusOK, "GET", "/api/maestro", nil, &root)
	if root.Kind != "API" || len(root.Versions) != 1 || root.Versions[0].Href != api.BasePath {
		t.Fatalf("root %+v", root)
	}
	var v1 struct {
		ID          string `json:"id"`
		Collections []struct {
			ID, Href, Kind string
		} `json:"collections"`
	}
	c.expect(http.StatusOK, "GET", api.BasePath, nil, &v1)
	if v1.ID != "v1" || len(v1.Collections) != 2 || v1.Collections[1].Href != api.BasePath+"/resource-bundles" {
		t.Fatalf("v1 %+v", v1)
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	r := c.expect(http.StatusOK, "GET", api.BasePath+"/openapi", nil, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.") || doc.Paths[api.BasePath+"/resource-bundles/{id}"]["put"] == nil {
		t.Fatalf("openapi JSON: %.200s", r.body)
	}
	if !json.Valid(r.body) || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("openapi content type %q", r.header.Get("Content-Type"))
	}
}

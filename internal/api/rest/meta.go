package rest

import (
	"net/http"
	"strings"

	"github.com/baton-dev/baton/internal/api/openapi"
	"github.com/baton-dev/baton/pkg/api"
)

type collection struct {
	ID   string `json:"id"`
	Href string `json:"href"`
	Kind string `json:"kind"`
}

type apiVersion struct {
	ID          string       `json:"id"`
	Kind        string       `json:"kind"`
	Href        string       `json:"href"`
	Collections []collection `json:"collections,omitempty"`
}

type apiRoot struct {
	ID       string       `json:"id"`
	Kind     string       `json:"kind"`
	Href     string       `json:"href"`
	Versions []apiVersion `json:"versions"`
}

func v1() apiVersion {
	return apiVersion{
		ID: "v1", Kind: "APIVersion", Href: api.BasePath,
		Collections: []collection{
			{ID: "consumers", Href: api.BasePath + "/consumers", Kind: api.KindConsumerList},
			{ID: "resource-bundles", Href: api.BasePath + "/resource-bundles", Kind: api.KindResourceBundleList},
		},
	}
}

func (h *Handler) getAPI(w http.ResponseWriter, r *http.Request) {
	v := v1()
	v.Collections = nil
	writeJSON(w, http.StatusOK, apiRoot{ID: "maestro", Kind: "API", Href: "/api/maestro", Versions: []apiVersion{v}})
}

func (h *Handler) getVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, v1())
}

// getOpenAPI serves the OpenAPI document as JSON, or as YAML when the
// client asks for it (Accept: application/yaml).
func (h *Handler) getOpenAPI(w http.ResponseWriter, r *http.Request) {
	if strings.Contains(r.Header.Get("Accept"), "yaml") {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(openapi.YAML())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openapi.JSON())
}

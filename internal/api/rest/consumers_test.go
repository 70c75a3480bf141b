package rest_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/pkg/api"
)

func TestConsumers(t *testing.T) {
	each(t, func(t *testing.T, c *client) {
		const base = api.BasePath + "/consumers"
		c1 := c.createConsumer("mgmt-1")
		if c1.ID == "" || c1.Kind != api.KindConsumer || c1.Href != base+"/"+c1.ID || c1.Name != "mgmt-1" || c1.CreatedAt.IsZero() {
			t.Fatalf("created consumer %+v", c1)
		}
		if c1.Agent == nil || c1.Agent.Connected {
			t.Fatalf("new consumer agent = %+v; want present and not connected", c1.Agent)
		}
		var withLabels api.Consumer
		c.expect(http.StatusCreated, "POST", base, map[string]any{"name": "mgmt-2", "labels": map[string]string{"region": "eu"}}, &withLabels)
		var unnamed api.Consumer
		c.expect(http.StatusCreated, "POST", base, map[string]any{}, &unnamed)
		if unnamed.Name != unnamed.ID {
			t.Fatalf("unnamed consumer: name %q, id %q; want the name to be the id", unnamed.Name, unnamed.ID)
		}

		before := snapshot(t, c.st)
		c.expectError(http.StatusConflict, "maestro-6", "POST", base, map[string]any{"name": "mgmt-1"})
		unchanged(t, c.st, before, "duplicate POST")

		// Get by id and by name.
		var got api.Consumer
		c.expect(http.StatusOK, "GET", base+"/"+c1.ID, nil, &got)
		if got.ID != c1.ID || got.Name != "mgmt-1" {
			t.Fatalf("get by id: %+v", got)
		}
		c.expect(http.StatusOK, "GET", base+"/mgmt-2", nil, &got)
		if got.ID != withLabels.ID || got.Labels["region"] != "eu" {
			t.Fatalf("get by name: %+v", got)
		}
		c.expectError(http.StatusNotFound, "maestro-7", "GET", base+"/nope", nil)

		// Patch labels (by id or name).
		got = api.Consumer{}
		c.expect(http.StatusOK, "PATCH", base+"/"+c1.ID, map[string]any{"labels": map[string]string{"env": "prod"}}, &got)
		if got.Labels["env"] != "prod" || !got.UpdatedAt.After(c1.UpdatedAt) && !got.UpdatedAt.Equal(c1.UpdatedAt) {
			t.Fatalf("patched consumer %+v", got)
		}
		got = api.Consumer{}
		c.expect(http.StatusOK, "GET", base+"/mgmt-1", nil, &got)
		if len(got.Labels) != 1 || got.Labels["env"] != "prod" {
			t.Fatalf("labels after patch: %v", got.Labels)
		}
		c.expectError(http.StatusNotFound, "maestro-7", "PATCH", base+"/nope", map[string]any{"labels": map[string]string{}})
		got = api.Consumer{}
		c.expect(http.StatusOK, "PATCH", base+"/mgmt-1", map[string]any{}, &got) // no labels member: unchanged
		if got.Labels["env"] != "prod" {
			t.Fatalf("PATCH without labels changed them: %v", got.Labels)
		}
		got = api.Consumer{}
		c.expect(http.StatusOK, "PATCH", base+"/mgmt-2", map[string]any{"labels": map[string]string{}}, &got)
		if len(got.Labels) != 0 {
			t.Fatalf("PATCH with {} labels kept %v", got.Labels)
		}

		// List, search, order.
		var list api.List[api.Consumer]
		c.expect(http.StatusOK, "GET", base, nil, &list)
		if list.Kind != api.KindConsumerList || list.Total != 3 || list.Size != 3 || list.Page != 1 || len(list.Items) != 3 {
			t.Fatalf("list: %+v", list)
		}
		c.expect(http.StatusOK, "GET", base+"?search="+url.QueryEscape("labels.env='prod' or name like 'mgmt-2%'")+"&orderBy=name+desc", nil, &list)
		if list.Total != 2 || list.Items[0].Name != "mgmt-2" || list.Items[1].Name != "mgmt-1" {
			t.Fatalf("search and order: %+v", list)
		}
		c.expectError(http.StatusBadRequest, "maestro-21", "GET", base+"?search="+url.QueryEscape("consumer_name='x'"), nil, "unknown field")

		// Agent state shows up.
		hb := time.Now().UTC().Truncate(time.Millisecond)
		if err := c.st.SetAgentState(context.Background(), "mgmt-1", store.AgentState{Connected: true, Epoch: "e1", LastHeartbeat: hb}); err != nil {
			t.Fatal(err)
		}
		c.expect(http.StatusOK, "GET", base+"/mgmt-1", nil, &got)
		if got.Agent == nil || !got.Agent.Connected || got.Agent.Epoch != "e1" || got.Agent.LastHeartbeat == nil {
			t.Fatalf("agent state: %+v", got.Agent)
		}

		// Delete: refused while bundles exist, deleting ones included.
		b := c.createBundle(bundleBody("mgmt-1", "b1"))
		before = snapshot(t, c.st)
		c.expectError(http.StatusConflict, "maestro-6", "DELETE", base+"/"+c1.ID, nil, "still has resource bundles")
		unchanged(t, c.st, before, "DELETE of a consumer with bundles")
		c.expect(http.StatusNoContent, "DELETE", api.BasePath+"/resource-bundles/"+b.ID, nil, nil)
		c.expectError(http.StatusConflict, "maestro-6", "DELETE", base+"/mgmt-1", nil, "still has resource bundles")
		if err := c.st.PurgeBundle(context.Background(), b.ID, b.Version+1); err != nil {
			t.Fatal(err)
		}
		c.expect(http.StatusNoContent, "DELETE", base+"/mgmt-1", nil, nil)
		c.expectError(http.StatusNotFound, "maestro-7", "GET", base+"/"+c1.ID, nil)
		c.expectError(http.StatusNotFound, "maestro-7", "DELETE", base+"/"+c1.ID, nil)
	})
}

func TestConsumerValidation(t *testing.T) {
	each(t, func(t *testing.T, c *client) {
		const base = api.BasePath + "/consumers"
		c.createConsumer("mgmt-1")
		before := snapshot(t, c.st)
		cases := []struct {
			name, method, path string
			body               any
			status             int
			code               string
			mention            []string
		}{
			{"malformed", "POST", base, `{"name": "x"`, 400, "maestro-17", []string{"malformed JSON"}},
			{"not an object", "POST", base, `["x"]`, 400, "maestro-17", []string{"JSON object"}},
			{"empty body", "POST", base, ``, 400, "maestro-17", []string{"empty"}},
			{"unknown field", "POST", base, `{"name": "x", "colour": "red"}`, 400, "maestro-17", []string{`"colour"`}},
			{"trailing data", "POST", base, `{"name": "x"} {"name": "y"}`, 400, "maestro-17", []string{"after the JSON object"}},
			{"name type", "POST", base, `{"name": 3}`, 400, "maestro-17", []string{"name"}},
			{"upper case", "POST", base, map[string]any{"name": "Mgmt"}, 400, "maestro-8", []string{"name", "Mgmt"}},
			{"underscore", "POST", base, map[string]any{"name": "a_b"}, 400, "maestro-8", []string{"name"}},
			{"sql in name", "POST", base, map[string]any{"name": "x'; drop table consumers; --"}, 400, "maestro-8", []string{"name"}},
			{"bad label", "POST", base, map[string]any{"name": "ok", "labels": map[string]string{"a b": "c"}}, 400, "maestro-8", []string{"labels", `"a b"`}},
			{"patch bad label", "PATCH", base + "/mgmt-1", map[string]any{"labels": map[string]string{"x": "has space"}}, 400, "maestro-8", []string{"labels.x"}},
			{"patch name", "PATCH", base + "/mgmt-1", map[string]any{"name": "other"}, 400, "maestro-17", []string{`"name"`}},
			{"too large", "POST", base, `{"name": "` + string(make([]byte, 70*1024)) + `"}`, 413, "maestro-8", []string{"larger than"}},
			{"wrong method", "PUT", base + "/mgmt-1", map[string]any{}, 405, "maestro-17", []string{"PUT", "allowed"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c := *c
				c.t = t
				c.expectError(tc.status, tc.code, tc.method, tc.path, tc.body, tc.mention...)
				unchanged(t, c.st, before, tc.name)
			})
		}
	})
}

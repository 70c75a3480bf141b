package rest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/pkg/api"
)

// seedBundles creates n bundles w0..w(n-1) for consumer c1 (source cs for
// even ones) and two for c2.
func seedBundles(t *testing.T, c *client, n int) []api.ResourceBundle {
	c.createConsumer("c1")
	c.createConsumer("c2")
	var out []api.ResourceBundle
	for i := range n {
		body := bundleBody("c1", fmt.Sprintf("w%d", i))
		if i%2 == 0 {
			body["source"] = "cs"
		}
		out = append(out, c.createBundle(body))
	}
	out = append(out, c.createBundle(bundleBody("c2", "x0")), c.createBundle(bundleBody("c2", "x1")))
	return out
}

func listBundles(c *client, query url.Values) api.List[api.ResourceBundle] {
	c.t.Helper()
	var l api.List[api.ResourceBundle]
	c.expect(http.StatusOK, "GET", bundles+"?"+query.Encode(), nil, &l)
	return l
}

func metaNames(l api.List[api.ResourceBundle]) []string {
	var names []string
	for _, b := range l.Items {
		names = append(names, b.Metadata.Name)
	}
	return names
}

func TestListPagination(t *testing.T) {
	each(t, func(t *testing.T, c *client) {
		all := seedBundles(t, c, 5) // 7 bundles
		l := listBundles(c, nil)
		if l.Kind != api.KindResourceBundleList || l.Page != 1 || l.Size != 7 || l.Total != 7 || len(l.Items) != 7 {
			t.Fatalf("default page: kind %s page %d size %d total %d items %d", l.Kind, l.Page, l.Size, l.Total, len(l.Items))
		}
		// size=1 walks every bundle exactly once.
		seen := map[string]bool{}
		for p := 1; p <= 7; p++ {
			l := listBundles(c, url.Values{"page": {fmt.Sprint(p)}, "size": {"1"}, "orderBy": {"name"}})
			if l.Page != p || l.Size != 1 || l.Total != 7 || len(l.Items) != 1 || seen[l.Items[0].ID] {
				t.Fatalf("page %d of size 1: %+v", p, l)
			}
			seen[l.Items[0].ID] = true
		}
		// Last partial page and a page beyond the last.
		l = listBundles(c, url.Values{"page": {"3"}, "size": {"3"}})
		if l.Size != 1 || l.Total != 7 || len(l.Items) != 1 {
			t.Fatalf("last partial page: size %d total %d items %d", l.Size, l.Total, len(l.Items))
		}
		l = listBundles(c, url.Values{"page": {"9"}, "size": {"3"}})
		if l.Page != 9 || l.Size != 0 || l.Total != 7 || l.Items == nil || len(l.Items) != 0 {
			t.Fatalf("page beyond the last: %+v", l)
		}
		l = listBundles(c, url.Values{"size": {"10000"}})
		if l.Size != 7 {
			t.Fatalf("size 10000: %d items", l.Size)
		}
		// Maestro's size semantics: 0 is no items (with the total); a
		// negative or too large size is the largest page.
		for size, want := range map[string]int{"0": 0, "-1": 7, "65501": 7, "99999999": 7} {
			l = listBundles(c, url.Values{"size": {size}})
			if l.Size != want || len(l.Items) != want || l.Total != 7 {
				t.Fatalf("size=%s: size %d items %d total %d; want %d items of 7", size, l.Size, len(l.Items), l.Total, want)
			}
		}
		for q, mention := range map[string]string{
			"size=ten":        `size: "ten" is not an integer`,
			"page=0":          "page: 0 is out of range",
			"page=-3":         "page: -3 is out of range",
			"page=1.5":        "page: \"1.5\" is not an integer",
			"orderBy=age":     `orderBy: "age": unknown field`,
			"orderBy=name+up": `direction "up"`,
			"fields=spec":     `fields: unknown field "spec"`,
		} {
			c.expectError(http.StatusBadRequest, "maestro-17", "GET", bundles+"?"+q, nil, mention)
		}
		_ = all
	})
}

func TestListSearchOrderFields(t *testing.T) {
	each(t, func(t *testing.T, c *client) {
		seedBundles(t, c, 4)
		q := func(search string) api.List[api.ResourceBundle] {
			return listBundles(c, url.Values{"search": {search}, "orderBy": {"name"}})
		}
		byMeta := func(search string) []string {
			l := listBundles(c, url.Values{"search": {search}})
			names := metaNames(l)
			sort.Strings(names)
			if l.Total != len(names) {
				t.Fatalf("search %q: total %d, %d items", search, l.Total, len(names))
			}
			return names
		}
		for search, want := range map[string][]string{
			"consumer_name='c1' and source='cs'":          {"w0", "w2"},
			"consumer_name='c2'":                          {"x0", "x1"},
			"consumer_name in ('c2') or source = 'cs'":    {"w0", "w2", "x0", "x1"},
			"not (consumer_name='c1')":                    {"x0", "x1"},
			"consumer_name='c1' and source != 'cs'":       {"w1", "w3"},
			"labels.app='ingress' and consumer_name='c2'": {"x0", "x1"},
			"labels.app='other'":                          nil,
			"source not in ('cs', 'baton')":               nil,
		} {
			if got := byMeta(search); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("search %q: got %v; want %v", search, got, want)
			}
		}
		// like on name: the REST names are ids; search by id prefix.
		l := q("consumer_name like 'c%' and source='cs'")
		if l.Total != 2 {
			t.Fatalf("like: total %d", l.Total)
		}
		id := l.Items[0].ID
		if l := q("id = '" + id + "'"); l.Total != 1 || l.Items[0].ID != id {
			t.Fatalf("id search: %+v", l)
		}

		// Injection attempts are values or errors, never SQL.
		before := snapshot(t, c.st)
		for _, search := range []string{
			"name='x'' or ''1''=''1'",
			"name='x\\' or 1=1 --'",
			"name='a''; DROP TABLE bundles; --'",
			"consumer_name='c1'' union select * from consumers --'",
			"labels.app='x'') or (''a''=''a'",
		} {
			if l := q(search); l.Total != 0 {
				t.Errorf("search %q matched %d bundles; want 0 (the quote stays in the value)", search, l.Total)
			}
		}
		for search, mention := range map[string]string{
			"name='x' or 1=1":                  `unknown field "1"`,
			"name='x'; drop table bundles":     "position 9",
			"name='x' -- comment":              "position 10",
			"(select name from consumers)='x'": "unknown field \"select\"",
			"labels.app' or '1'='1":            "position 11",
			"consumer_name=c1":                 "expected a quoted value",
			"created_at='now'":                 "RFC 3339",
			"name in ()":                       "expected a quoted value",
		} {
			c.expectError(http.StatusBadRequest, "maestro-21", "GET", bundles+"?search="+url.QueryEscape(search), nil, mention, "search")
		}
		unchanged(t, c.st, before, "search injection attempts")
		if l := listBundles(c, nil); l.Total != 6 {
			t.Fatalf("after injection attempts: %d bundles", l.Total)
		}

		// orderBy.
		l = listBundles(c, url.Values{"orderBy": {"consumer_name desc, created_at"}})
		if l.Items[0].ConsumerName != "c2" || l.Items[5].ConsumerName != "c1" {
			t.Fatalf("orderBy consumer_name desc: %v", metaNames(l))
		}
		for i := 2; i < 6; i++ {
			if l.Items[i].CreatedAt.Before(l.Items[i-1].CreatedAt) && l.Items[i].ConsumerName == l.Items[i-1].ConsumerName {
				t.Fatalf("orderBy created_at within a consumer broken at %d", i)
			}
		}

		// fields: projection keeps id.
		r := c.expect(http.StatusOK, "GET", bundles+"?fields=consumer_name,metadata.name,status.resourceStatus&size=2", nil, nil)
		var proj struct {
			Size  int              `json:"size"`
			Items []map[string]any `json:"items"`
		}
		if err := json.Unmarshal(r.body, &proj); err != nil || proj.Size != 2 {
			t.Fatalf("projection: %v %s", err, r.body)
		}
		for _, it := range proj.Items {
			md, _ := it["metadata"].(map[string]any)
			st, _ := it["status"].(map[string]any)
			if len(it) != 4 || it["id"] == nil || it["consumer_name"] == nil || len(md) != 1 || md["name"] == nil || len(st) != 1 {
				t.Fatalf("projected item %v", it)
			}
		}
		var one map[string]any
		b := l.Items[0]
		c.expect(http.StatusOK, "GET", bundles+"/"+b.ID+"?fields=version", nil, &one)
		if len(one) != 2 || one["id"] != b.ID || one["version"] == nil {
			t.Fatalf("projected GET: %v", one)
		}
	})
}

// TestRunbookShape checks the seed runbook's commands work on the list:
// jq '.items[] | select(.metadata.name | contains(...))' and the path
// .items[].status.resourceStatus[].statusFeedback.values.
func TestRunbookShape(t *testing.T) {
	each(t, func(t *testing.T, c *client) {
		c.createConsumer("mgmt-1")
		b := c.createBundle(bundleBody("mgmt-1", "shared-ingress"))
		c.createBundle(bundleBody("mgmt-1", "no-status-yet"))
		ip := "20.1.2.3"
		now := time.Now().UTC()
		res, _, err := c.st.ApplyStatus(context.Background(), store.StatusUpdate{
			ConsumerName: "mgmt-1", BundleID: b.ID, AgentEpoch: "e1", AgentRevision: 1,
			ObservedGeneration: b.Version, Hash: "h1", SequenceID: "2000808179721572352", At: now,
			Reported: api.ReportedStatus{
				Conditions: []metav1.Condition{{Type: "Applied", Status: "True", Reason: "Applied", LastTransitionTime: metav1.NewTime(now)}},
				ResourceStatus: []api.ResourceStatus{{
					ResourceMeta:    workv1.ManifestResourceMeta{Version: "v1", Kind: "Service", Resource: "services", Name: "router", Namespace: "ingress"},
					StatusFeedbacks: workv1.StatusFeedbackResult{Values: []workv1.FeedbackValue{{Name: "ip", Value: workv1.FieldValue{Type: workv1.String, String: &ip}}}},
					Conditions:      []metav1.Condition{{Type: "Available", Status: "True", Reason: "Found", LastTransitionTime: metav1.NewTime(now)}},
					Observed:        api.Observed{UID: "u1", ResourceVersion: "42", Exists: true, ObservedAt: now},
				}},
			},
		})
		if err != nil || res != store.StatusAccepted {
			t.Fatalf("ApplyStatus: %v %v", res, err)
		}
		r := c.expect(http.StatusOK, "GET", bundles, nil, nil)
		var doc map[string]any
		if err := json.Unmarshal(r.body, &doc); err != nil {
			t.Fatal(err)
		}
		var values []string
		var selected []string
		for _, it := range doc["items"].([]any) { // .items[]
			item := it.(map[string]any)
			if name := item["metadata"].(map[string]any)["name"].(string); strings.Contains(name, "shared") {
				selected = append(selected, name)
			}
			status := item["status"].(map[string]any)
			for _, rs := range status["resourceStatus"].([]any) { // .status.resourceStatus[] (present even when empty)
				fb := rs.(map[string]any)["statusFeedback"].(map[string]any)
				for _, v := range fb["values"].([]any) {
					fv := v.(map[string]any)["fieldValue"].(map[string]any)
					values = append(values, fv["string"].(string))
				}
				obs := rs.(map[string]any)["observed"].(map[string]any)
				if obs["uid"] != "u1" || obs["exists"] != true {
					t.Fatalf("observed %v", obs)
				}
			}
			if _, ok := status["conditions"].([]any); !ok {
				t.Fatalf("status.conditions is not a list: %v", status)
			}
		}
		if fmt.Sprint(values) != "[20.1.2.3]" || fmt.Sprint(selected) != "[shared-ingress]" {
			t.Fatalf("values %v selected %v", values, selected)
		}
		got := c.getBundle(b.ID)
		if got.Status.ObservedVersion != b.Version || got.Status.SequenceID != "2000808179721572352" || got.Status.Revision < 1 {
			t.Fatalf("status %+v", got.Status)
		}
	})
}

func contains(s, sub string) bool {
	return len(sub) <= len(s) && (s[:len(sub)] == sub || contains(s[1:], sub))
}

// TestListChangeSeqHeader: a bundle list names the change sequence to resume
// a watch from, and it moves with every change.
func TestListChangeSeqHeader(t *testing.T) {
	each(t, func(t *testing.T, c *client) {
		c.createConsumer("c1")
		b := c.createBundle(bundleBody("c1", "one"))
		r := c.do(http.MethodGet, api.BasePath+"/resource-bundles", nil)
		seq, err := strconv.ParseInt(r.header.Get(api.ChangeSeqHeader), 10, 64)
		if err != nil || seq <= 0 {
			t.Fatalf("%s = %q; want the latest change sequence", api.ChangeSeqHeader, r.header.Get(api.ChangeSeqHeader))
		}
		stored, err := c.st.GetBundle(context.Background(), b.ID)
		if err != nil {
			t.Fatal(err)
		}
		if seq != stored.ChangeSeq {
			t.Fatalf("%s = %d; want %d, the change of the only bundle", api.ChangeSeqHeader, seq, stored.ChangeSeq)
		}
	})
}

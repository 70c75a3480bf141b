package watch

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
)

type rendered struct {
	ID       string `json:"id"`
	Consumer string `json:"consumer_name"`
	Version  int64  `json:"version"`
}

func render(_ *http.Request, b store.Bundle) any {
	return rendered{ID: b.ID, Consumer: b.ConsumerName, Version: b.Generation}
}

type wireEvent struct {
	Type   string   `json:"type"`
	Seq    int64    `json:"seq"`
	Object rendered `json:"object"`
}

// stream opens a watch and returns a function reading the next event.
func stream(t *testing.T, srv *httptest.Server, query url.Values) func() wireEvent {
	t.Helper()
	query.Set("watch", "true")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/maestro/v1/resource-bundles?"+query.Encode(), nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	lines := make(chan []byte, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(lines)
	}()
	return func() wireEvent {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("stream ended")
				}
				if len(l) == 0 {
					continue // heartbeat
				}
				var ev wireEvent
				if err := json.Unmarshal(l, &ev); err != nil {
					t.Fatalf("event %q: %v", l, err)
				}
				return ev
			case <-time.After(5 * time.Second):
				t.Fatal("timed out waiting for an event")
			}
		}
	}
}

func TestHandlerStreamsEvents(t *testing.T) {
	st := storetest.NewSQLite(t)
	ctx := setup(t, st, "c1", "c2")
	b := New(st, WithPollInterval(10*time.Millisecond))
	start(t, ctx, b)
	srv := httptest.NewServer(NewHandler(b, st, render))
	t.Cleanup(srv.Close)

	first := create(t, ctx, st, "c1", "b1")
	next := stream(t, srv, url.Values{"since": {"0"}, "search": {"consumer_name = 'c1'"}})
	if ev := next(); ev.Type != "ADDED" || ev.Seq != first.ChangeSeq || ev.Object.ID != "b1" || ev.Object.Version != 1 {
		t.Fatalf("first event: got %+v; want ADDED b1 at %d", ev, first.ChangeSeq)
	}
	create(t, ctx, st, "c2", "elsewhere")
	upd := first
	upd.Spec.Manifests = append(upd.Spec.Manifests, json.RawMessage(`{"kind":"Secret"}`))
	if _, err := st.UpdateBundle(ctx, upd, 0); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.Type != "MODIFIED" || ev.Object.ID != "b1" || ev.Object.Version != 2 {
		t.Fatalf("second event: got %+v; want MODIFIED b1 version 2", ev)
	}
	del, err := st.DeleteBundle(ctx, "b1")
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.Type != "MODIFIED" || ev.Object.Version != 3 {
		t.Fatalf("delete request: got %+v; want MODIFIED version 3", ev)
	}
	if err := st.PurgeBundle(ctx, "b1", del.Generation); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.Type != "DELETED" || ev.Object.ID != "b1" || ev.Object.Consumer != "c1" {
		t.Fatalf("purge: got %+v; want DELETED b1", ev)
	}
}

func TestHandlerHeartbeat(t *testing.T) {
	st := storetest.NewSQLite(t)
	ctx := setup(t, st)
	b := New(st)
	start(t, ctx, b)
	srv := httptest.NewServer(NewHandler(b, st, render, WithHeartbeat(20*time.Millisecond)))
	t.Cleanup(srv.Close)
	resp, err := srv.Client().Get(srv.URL + "/?watch=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 1)
	if _, err := resp.Body.Read(buf); err != nil || buf[0] != '\n' {
		t.Fatalf("read heartbeat: %q, %v", buf, err)
	}
}

func TestHandlerBadRequests(t *testing.T) {
	st := storetest.NewSQLite(t)
	srv := httptest.NewServer(NewHandler(New(st), st, render))
	t.Cleanup(srv.Close)
	for _, q := range []string{"since=-1", "since=x", "search=" + url.QueryEscape("nope = 'a'")} {
		resp, err := srv.Client().Get(srv.URL + "/?watch=true&" + q)
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Kind, Code, Reason string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || e.Kind != "Error" || e.Reason == "" {
			t.Errorf("%s: got %d %+v; want 400 with an Error body", q, resp.StatusCode, e)
		}
	}
}

// TestHandlerSinceTooOld: resuming from a change the store has pruned is 410
// Gone, not a stream that silently skips changes; resuming from the newest
// pruned one still works (nothing is missing after it).
func TestHandlerSinceTooOld(t *testing.T) {
	st := storetest.NewSQLite(t)
	ctx := setup(t, st, "c1")
	b := New(st, WithPollInterval(10*time.Millisecond))
	start(t, ctx, b)
	srv := httptest.NewServer(NewHandler(b, st, render))
	t.Cleanup(srv.Close)
	first := create(t, ctx, st, "c1", "b1")
	second := create(t, ctx, st, "c1", "b2")
	pruner, ok := st.(interface {
		PruneChanges(ctx context.Context, seq int64) (int64, error)
	})
	if !ok {
		t.Fatalf("store %T cannot prune", st)
	}
	if _, err := pruner.PruneChanges(ctx, first.ChangeSeq); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(srv.URL + "?watch=true&since=0")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone || !strings.Contains(string(body), "older than the kept history") {
		t.Fatalf("since=0 after pruning: got %d %s; want 410 naming the kept history", resp.StatusCode, body)
	}
	next := stream(t, srv, url.Values{"since": {strconv.FormatInt(first.ChangeSeq, 10)}})
	if ev := next(); ev.Seq != second.ChangeSeq || ev.Object.ID != "b2" {
		t.Fatalf("resume from the newest pruned change: got %+v; want b2 at %d", ev, second.ChangeSeq)
	}
}

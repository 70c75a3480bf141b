package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/backoff"
	"github.com/baton-dev/baton/pkg/api"
)

func newClient(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestErrorBodyDecoded(t *testing.T) {
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"kind":"Error","id":"7","href":"/api/maestro/v1/errors/7","code":"maestro-7","reason":"resource-bundle with id 'x' not found"}`)
	})
	_, err := c.GetBundle(context.Background(), "x")
	var e *Error
	if !errors.As(err, &e) || e.StatusCode != 404 || e.Code != "maestro-7" || !IsNotFound(err) || IsConflict(err) {
		t.Fatalf("got %#v", err)
	}
	if want := "resource-bundle with id 'x' not found (HTTP 404, maestro-7)"; err.Error() != want {
		t.Errorf("message %q; want %q", err, want)
	}
}

func TestErrorWithoutMaestroBody(t *testing.T) {
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "upstream broke", http.StatusBadGateway) })
	err := c.DeleteBundle(context.Background(), "x")
	if err == nil || err.Error() != "upstream broke (HTTP 502)" {
		t.Fatalf("got %v", err)
	}
}

func TestUnreachableServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	l.Close()
	c, err := New(addr)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListConsumers(context.Background(), ListOptions{})
	var ue *UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("got %v; want UnreachableError", err)
	}
	msg := err.Error()
	for _, want := range []string{"cannot reach baton server at " + addr + ": ", "connection refused", "is `baton server` running? (set --server or BATON_SERVER)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}

func TestNewRejectsBadAddress(t *testing.T) {
	for _, s := range []string{"localhost:8000", "ftp://x", "http://"} {
		if _, err := New(s); err == nil {
			t.Errorf("New(%q) accepted", s)
		}
	}
}

func TestAllBundlesPagesAndSearch(t *testing.T) {
	var queries []string
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.RawQuery)
		page := r.URL.Query().Get("page")
		items := `[{"id":"1","name":"a"},{"id":"2","name":"b"}]`
		if page == "2" {
			items = `[{"id":"3","name":"c"}]`
		}
		fmt.Fprintf(w, `{"kind":"ResourceBundleList","page":%s,"size":2,"total":3,"items":%s}`, page, items)
	})
	got, err := c.AllBundles(context.Background(), ListOptions{Size: 2, Search: "consumer_name=" + Quote("it's")})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].Name != "c" {
		t.Fatalf("got %+v", got)
	}
	if len(queries) != 2 || !strings.Contains(queries[0], "search=consumer_name%3D%27it%27%27s%27") {
		t.Errorf("queries %v", queries)
	}
}

func TestBundleByName(t *testing.T) {
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == api.BasePath+"/resource-bundles" && strings.Contains(r.URL.Query().Get("search"), "'dup'"):
			fmt.Fprint(w, `{"kind":"ResourceBundleList","total":2,"items":[{"id":"1","name":"dup","consumer_name":"a"},{"id":"2","name":"dup","consumer_name":"b"}]}`)
		case r.URL.Path == api.BasePath+"/resource-bundles" && strings.HasPrefix(r.URL.Query().Get("search"), "name="):
			fmt.Fprint(w, `{"kind":"ResourceBundleList","total":0,"items":[]}`)
		case r.URL.Path == api.BasePath+"/resource-bundles":
			fmt.Fprint(w, `{"kind":"ResourceBundleList","total":1,"items":[{"id":"55c6","name":"55c6","consumer_name":"a","metadata":{"name":"shared-ingress"}}]}`)
		case r.URL.Path == api.BasePath+"/resource-bundles/55c6":
			fmt.Fprint(w, `{"id":"55c6","name":"55c6","consumer_name":"a"}`)
		default:
			w.WriteHeader(404)
			fmt.Fprint(w, `{"kind":"Error","code":"maestro-7","reason":"not found"}`)
		}
	})
	ctx := context.Background()
	if b, err := c.BundleByName(ctx, "a", "55c6"); err != nil || b.ID != "55c6" {
		t.Errorf("by id: %v, %v", b, err)
	}
	if _, err := c.BundleByName(ctx, "b", "55c6"); !IsNotFound(err) || !strings.Contains(err.Error(), `bundle "55c6" not found in consumer "b"`) {
		t.Errorf("wrong consumer: %v", err)
	}
	if b, err := c.BundleByName(ctx, "a", "shared-ingress"); err != nil || b.ID != "55c6" {
		t.Errorf("by work name: %v, %v", b, err)
	}
	if _, err := c.BundleByName(ctx, "", "dup"); !IsConflict(err) || !strings.Contains(err.Error(), "--consumer") {
		t.Errorf("duplicate: %v", err)
	}
}

func TestWriteBodyAndResync(t *testing.T) {
	var method, path, body string
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		method, path, body = r.Method, r.URL.Path, string(data)
		if strings.HasSuffix(path, "/resync") {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		fmt.Fprint(w, `{"id":"9","version":3}`)
	})
	ctx := context.Background()
	out, err := c.UpdateBundle(ctx, "9", &api.ResourceBundle{ID: "ignored", Name: "a", ConsumerName: "dev", Version: 2,
		Status: &api.BundleStatus{Revision: 5}})
	if err != nil || out.Version != 3 {
		t.Fatalf("update: %v %v", out, err)
	}
	if method != http.MethodPut || path != api.BasePath+"/resource-bundles/9" ||
		!strings.Contains(body, `"version":2`) || strings.Contains(body, "status") || strings.Contains(body, "ignored") {
		t.Errorf("update sent %s %s %s", method, path, body)
	}
	if err := c.ResyncConsumer(ctx, "c1"); err != nil || method != http.MethodPost || path != api.BasePath+"/consumers/c1/resync" {
		t.Errorf("resync: %v %s %s", err, method, path)
	}
}

func TestWatchStream(t *testing.T) {
	release := make(chan struct{})
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("watch") != "true" || r.URL.Query().Get("since") != "41" {
			w.WriteHeader(400)
			return
		}
		fmt.Fprintln(w, `{"type":"ADDED","seq":42,"object":{"id":"1","name":"a"}}`)
		fmt.Fprintln(w, ``)
		fmt.Fprintln(w, `{"type":"MODIFIED","seq":43,"object":{"id":"1","name":"a","status":{"revision":2}}}`)
		w.(http.Flusher).Flush()
		<-release
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := c.Watch(ctx, WatchOptions{Since: 41})
	if err != nil {
		t.Fatal(err)
	}
	ev1, ev2 := <-ch, <-ch
	if ev1.Type != EventAdded || ev1.Seq != 42 || ev2.Type != EventModified || ev2.Object.Status.Revision != 2 {
		t.Fatalf("got %+v %+v", ev1, ev2)
	}
	close(release)
	select {
	case ev, ok := <-ch:
		if !ok || ev.Err == nil || !strings.Contains(ev.Err.Error(), "closed the stream") {
			t.Errorf("after server end: %+v, %v", ev, ok)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no end event")
	}
	if _, ok := <-ch; ok {
		t.Error("channel not closed after end event")
	}
}

func TestWatchHTTPErrorReturnedDirectly(t *testing.T) {
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		fmt.Fprint(w, `{"kind":"Error","code":"maestro-21","reason":"bad search"}`)
	})
	if _, err := c.Watch(context.Background(), WatchOptions{Search: "x"}); err == nil || !strings.Contains(err.Error(), "bad search") {
		t.Fatalf("got %v", err)
	}
}

func TestWatchResumesAfterLastSeq(t *testing.T) {
	defer func(p backoff.Policy) { resumeBackoff = p }(resumeBackoff)
	resumeBackoff = backoff.Policy{Initial: time.Millisecond}
	var mu sync.Mutex
	var sinces []string
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sinces = append(sinces, r.URL.Query().Get("since"))
		n := len(sinces)
		mu.Unlock()
		switch n {
		case 1:
			fmt.Fprintln(w, `{"type":"ADDED","seq":5,"object":{"id":"1"}}`)
		case 2:
			fmt.Fprintln(w, `{"type":"MODIFIED","seq":9,"object":{"id":"1"}}`)
		default:
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"kind":"Error","code":"maestro-21","reason":"since is too old"}`)
		}
	})
	ch, err := c.Watch(context.Background(), WatchOptions{Since: FromNow, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	var last error
	for ev := range ch {
		if ev.Err != nil {
			last = ev.Err
			continue
		}
		seqs = append(seqs, ev.Seq)
	}
	if len(seqs) != 2 || seqs[0] != 5 || seqs[1] != 9 {
		t.Errorf("seqs %v; want [5 9]", seqs)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sinces) != 3 || sinces[0] != "" || sinces[1] != "5" || sinces[2] != "9" {
		t.Errorf("since parameters %q; want \"\", 5, 9 (and no retry of a 400)", sinces)
	}
	if last == nil || !strings.Contains(last.Error(), "since is too old") {
		t.Errorf("final error %v", last)
	}
}

func TestWatchResumeGivesUpWhenUnreachable(t *testing.T) {
	defer func(p backoff.Policy) { resumeBackoff = p }(resumeBackoff)
	resumeBackoff = backoff.Policy{Initial: time.Millisecond}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, `{"type":"ADDED","seq":1,"object":{"id":"1"}}`)
	}))
	c, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.Watch(context.Background(), WatchOptions{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Seq != 1 {
		t.Fatalf("first event %+v", ev)
	}
	srv.Close()
	var last error
	for ev := range ch {
		if ev.Err != nil {
			last = ev.Err
		}
	}
	var ue *UnreachableError
	if !errors.As(last, &ue) {
		t.Errorf("final error %v; want unreachable", last)
	}
}

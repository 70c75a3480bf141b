package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/baton-dev/baton/internal/bench/restbench"
	"github.com/baton-dev/baton/internal/server"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/pkg/api"
)

// benchStores are the stores the benchmarks run on.
var benchStores = []struct {
	name string
	open func(testing.TB) store.Store
}{
	{"sqlite", storetest.NewSQLite},
	{"postgres", storetest.NewPostgres},
}

// benchServer starts the whole server (metrics included) on a local port.
func benchServer(b *testing.B, s store.Store) (string, *http.Client) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv, err := server.New(server.Options{Store: s, Listener: ln})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Start(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32, MaxConnsPerHost: 32}}
	return "http://" + ln.Addr().String(), hc
}

// bundleJSON is the bundle body of `baton bench rest`: about 3 KB (a
// Service and a ConfigMap, a feedback rule).
var bundleJSON = restbench.BundleJSON

func post(hc *http.Client, url string, body []byte) error {
	resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST %s: status %d", url, resp.StatusCode)
	}
	return nil
}

// createBundles creates n bundles named <prefix>-<i> with clients
// concurrent clients over REST.
func createBundles(base string, hc *http.Client, consumer, prefix string, n, clients int) error {
	var next atomic.Int64
	var g errgroup.Group
	for range clients {
		g.Go(func() error {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return nil
				}
				if err := post(hc, base+api.BasePath+"/resource-bundles", bundleJSON(consumer, fmt.Sprintf("%s-%d", prefix, i))); err != nil {
					return err
				}
			}
		})
	}
	return g.Wait()
}

// BenchmarkRESTCreate measures bundle creates per second over REST with 8
// concurrent clients; one iteration is 1,000 creates.
func BenchmarkRESTCreate(b *testing.B) {
	const perIter, clients = 1000, 8
	for _, st := range benchStores {
		b.Run(st.name, func(b *testing.B) {
			base, hc := benchServer(b, st.open(b))
			if err := post(hc, base+api.BasePath+"/consumers", []byte(`{"name":"bench"}`)); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				if err := createBundles(base, hc, "bench", fmt.Sprintf("it%d", i), perIter, clients); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*perIter)/time.Since(start).Seconds(), "creates/s")
		})
	}
}

// BenchmarkRESTList6000 measures listing 6,000 bundles of about 3 KB over
// REST: as one page of 6,000 and as 60 pages of 100. The client reads the
// whole body; decoding it is the client's cost and not measured.
func BenchmarkRESTList6000(b *testing.B) {
	const total = 6000
	for _, st := range benchStores {
		b.Run(st.name, func(b *testing.B) {
			s := st.open(b)
			base, hc := benchServer(b, s)
			var once sync.Once
			setup := func() {
				once.Do(func() {
					for c := range 10 {
						if err := post(hc, base+api.BasePath+"/consumers", fmt.Appendf(nil, `{"name":"c%d"}`, c)); err != nil {
							b.Fatal(err)
						}
					}
					var g errgroup.Group
					for c := range 10 {
						g.Go(func() error {
							return createBundles(base, hc, fmt.Sprintf("c%d", c), "b", total/10, 1)
						})
					}
					if err := g.Wait(); err != nil {
						b.Fatal(err)
					}
				})
			}
			b.Run("one-page", func(b *testing.B) {
				setup()
				b.ResetTimer()
				var bytesRead int64
				for b.Loop() {
					bytesRead = listPage(b, hc, base, 1, total, total)
				}
				b.ReportMetric(float64(bytesRead)/total, "bytes/bundle")
			})
			b.Run("pages-of-100", func(b *testing.B) {
				setup()
				b.ResetTimer()
				for b.Loop() {
					for p := 1; p <= total/100; p++ {
						listPage(b, hc, base, p, 100, 100)
					}
				}
			})
		})
	}
}

// listPage GETs one page and checks the envelope's size; it returns the
// bytes read.
func listPage(b *testing.B, hc *http.Client, base string, page, size, want int) int64 {
	resp, err := hc.Get(fmt.Sprintf("%s%s/resource-bundles?page=%d&size=%d&orderBy=created_at", base, api.BasePath, page, size))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	n, err := io.Copy(&buf, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("list page %d: %d %v", page, resp.StatusCode, err)
	}
	head := buf.Bytes()[:min(200, buf.Len())]
	i := bytes.Index(head, []byte(`"items"`))
	var env struct{ Size, Total int }
	if i < 0 || json.Unmarshal(append(head[:i:i], []byte(`"x":0}`)...), &env) != nil || env.Size != want || env.Total != 6000 {
		b.Fatalf("list page %d: envelope %.200s", page, head)
	}
	return n
}

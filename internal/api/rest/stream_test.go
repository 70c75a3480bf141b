package rest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/api/rest"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
)

const streamBundles = 5000

// heapSampler records the largest HeapAlloc seen while it runs.
type heapSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	done sync.WaitGroup
}

func sampleHeap() *heapSampler {
	h := &heapSampler{stop: make(chan struct{})}
	h.done.Go(func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > h.peak.Load() {
				h.peak.Store(ms.HeapAlloc)
			}
			select {
			case <-h.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	})
	return h
}

func (h *heapSampler) finish() uint64 { close(h.stop); h.done.Wait(); return h.peak.Load() }

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

const mib = 1 << 20

// TestListStreamedMemoryBounded lists 5,000 bundles of ~3 KB in one page
// through a real listener, on SQLite and PostgreSQL, reading the response
// slowly at first, and checks the server's heap: it never grows by more
// than a fraction of the response, and while the client pauses the live
// heap holds no more than the decoding pipeline. The same page collected
// by ListBundles is measured for comparison.
func TestListStreamedMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("populates 5,000 bundles")
	}
	storetest.Each(t, func(t *testing.T, s store.Store) {
		storetest.Populate(t, s, "c", streamBundles)
		c := newClient(t, s, rest.Options{})
		// Warm the store's bounded decode caches, then keep the heap close
		// to what is live so that HeapAlloc samples measure it.
		whole := readList(t, c, 0)
		defer debug.SetGCPercent(debug.SetGCPercent(2))

		base := liveHeap()
		page, err := s.ListBundles(context.Background(), store.ListOptions{Page: 1, Size: rest.MaxPageSize})
		if err != nil || len(page.Items) != streamBundles {
			t.Fatalf("ListBundles: %v, %d items", err, len(page.Items))
		}
		held := liveHeap() - base
		runtime.KeepAlive(page)
		page = store.Page[store.Bundle]{}

		base = liveHeap()
		hs := sampleHeap()
		got := readList(t, c, 2*mib)
		peak := hs.finish()
		grew := int64(peak) - int64(base)
		t.Logf("response %.1f MiB; the page collected in memory %.1f MiB; streamed: peak heap growth %.1f MiB (GOGC 2 over a %.0f MiB heap), live while the client paused %.1f MiB",
			float64(whole.bytes)/mib, float64(held)/mib, float64(grew)/mib, float64(base)/mib, float64(got.paused)/mib)
		if got.items != streamBundles || got.size != streamBundles || got.total != streamBundles {
			t.Fatalf("streamed list: %d items, size %d, total %d; want %d", got.items, got.size, got.total, streamBundles)
		}
		if got.bytes != whole.bytes {
			t.Fatalf("streamed list: %d bytes, then %d", whole.bytes, got.bytes)
		}
		// The peak includes the garbage GOGC lets accumulate; the live heap
		// in the middle of the list is the pipeline alone.
		if grew > int64(held*2/3) {
			t.Errorf("heap grew %.1f MiB during the list; want under two thirds of the %.1f MiB page", float64(grew)/mib, float64(held)/mib)
		}
		if got.paused > held/4 {
			t.Errorf("live heap while the client paused grew %.1f MiB; the whole page is %.1f MiB", float64(got.paused)/mib, float64(held)/mib)
		}
	})
}

type listRead struct {
	items, size, total int
	bytes              int
	paused             uint64 // live heap growth while paused after the slow part
}

// readList lists every bundle in one page. The first slow bytes are read
// in 16 KiB steps; then the live heap is measured while the client
// pauses, and the rest is read at full speed. The items are decoded one
// at a time, so the client holds no more than one.
func readList(t *testing.T, c *client, slow int) listRead {
	t.Helper()
	before := liveHeap()
	resp, err := http.Get(c.base + bundles + fmt.Sprintf("?size=%d", rest.MaxPageSize))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("list: %s %s", resp.Status, b)
	}
	var out listRead
	cr := &countingReader{r: resp.Body, slow: slow, pause: func() { out.paused = max(liveHeap()-before, 0) }}
	br := bufio.NewReaderSize(cr, 16<<10)
	dec := json.NewDecoder(br)
	expectDelim(t, dec, '{')
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		switch tok {
		case "size":
			err = dec.Decode(&out.size)
		case "total":
			err = dec.Decode(&out.total)
		case "items":
			expectDelim(t, dec, '[')
			for dec.More() {
				var item struct {
					ID        string            `json:"id"`
					Manifests []json.RawMessage `json:"manifests"`
				}
				if err := dec.Decode(&item); err != nil || item.ID == "" || len(item.Manifests) != 2 {
					t.Fatalf("item %d: %v", out.items, err)
				}
				out.items++
			}
			expectDelim(t, dec, ']')
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	expectDelim(t, dec, '}')
	_, _ = io.Copy(io.Discard, br)
	out.bytes = cr.n
	return out
}

// countingReader counts what it reads. Its first slow bytes come in
// small, paced reads; then pause is called once, while the server is in
// the middle of the list, before reading on at full speed.
type countingReader struct {
	r     io.Reader
	n     int
	slow  int
	pause func()
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.n < c.slow {
		p = p[:min(len(p), 4<<10)]
		time.Sleep(200 * time.Microsecond) // pace, not synchronization
	}
	n, err := c.r.Read(p)
	c.n += n
	if c.slow > 0 && c.n >= c.slow && c.pause != nil {
		c.pause()
		c.pause = nil
	}
	return n, err
}

func expectDelim(t *testing.T, dec *json.Decoder, d json.Delim) {
	t.Helper()
	tok, err := dec.Token()
	if err != nil || tok != d {
		t.Fatalf("want %v, got %v (%v)", d, tok, err)
	}
}

// TestListReaderThatStopsIsCutOff: clients that ask for a large list and
// never read it are cut off after the list write timeout, their responses
// end short of a complete list, and the store's reads they held are
// released: a further list succeeds although more stalled lists were
// opened than the store has read connections.
func TestListReaderThatStopsIsCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("populates bundles")
	}
	s := storetest.NewSQLite(t) // 4 read connections
	storetest.Populate(t, s, "c", 4000)
	h := rest.New(rest.Options{Store: s, ListWriteTimeout: 500 * time.Millisecond})
	var big, ended atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("size") == "10" {
			h.ServeHTTP(w, r)
			return
		}
		big.Add(1)
		defer ended.Add(1) // runs when the handler returns or is aborted
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	const stalled = 6
	for range stalled {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		// A small receive window keeps the server's writes blocked.
		_ = conn.(*net.TCPConn).SetReadBuffer(4 << 10)
		fmt.Fprintf(conn, "GET %s?size=%d HTTP/1.1\r\nHost: x\r\n\r\n", bundles, rest.MaxPageSize)
	}
	start := time.Now()
	resp, err := http.Get(srv.URL + bundles + "?size=10")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"size":10`) {
		t.Fatalf("list beside stalled lists: %s %s", resp.Status, b)
	}
	t.Logf("a list beside %d stalled ones answered after %v", stalled, time.Since(start).Round(time.Millisecond))
	// Every stalled list ends on the server although its client never reads.
	for deadline := time.Now().Add(60 * time.Second); ended.Load() < stalled; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d stalled lists still hold the server after 60 s (%d started)", stalled-int(ended.Load()), stalled, big.Load())
		}
	}
	t.Logf("all %d stalled lists were cut off %v after the first request", stalled, time.Since(start).Round(time.Millisecond))
}

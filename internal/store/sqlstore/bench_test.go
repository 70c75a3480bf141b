package sqlstore_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/sqlstore"
	"github.com/baton-dev/baton/internal/store/storetest"
)

var stores = []struct {
	name string
	open func(testing.TB) store.Store
}{
	{"sqlite", storetest.NewSQLite},
	{"postgres", storetest.NewPostgres},
}

func BenchmarkCreateBundle(b *testing.B) {
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			s := st.open(b)
			ctx := context.Background()
			if _, err := s.CreateConsumer(ctx, store.Consumer{Name: "c"}); err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				if _, err := s.CreateBundle(ctx, storetest.RealisticBundle("c", i)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkListBundles6000 lists 6,000 bundles of about 3 KB (spec and
// status) in one page, the store's share of the REST listing target.
func BenchmarkListBundles6000(b *testing.B) {
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) { benchList(b, st.open(b)) })
	}
}

// BenchmarkListBundles6000Uncached is BenchmarkListBundles6000 with the
// decode cache off: the cost of the first list after a restart.
func BenchmarkListBundles6000Uncached(b *testing.B) {
	cfgs := map[string]func(testing.TB) sqlstore.Config{
		"sqlite":   func(tb testing.TB) sqlstore.Config { return sqlstore.Config{DataDir: tb.TempDir()} },
		"postgres": func(tb testing.TB) sqlstore.Config { return sqlstore.Config{URL: storetest.PostgresURL(tb)} },
	}
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			cfg := cfgs[name](b)
			cfg.DecodeCacheBytes = -1
			s, err := sqlstore.Open(context.Background(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			benchList(b, s)
		})
	}
}

func benchList(b *testing.B, s store.Store) {
	storetest.Populate(b, s, "c", 6000)
	ctx := context.Background()
	p, err := s.ListBundles(ctx, store.ListOptions{})
	if err != nil || len(p.Items) != 6000 {
		b.Fatalf("list: %d items, %v", len(p.Items), err)
	}
	spec, _ := json.Marshal(p.Items[0].Spec)
	status, _ := json.Marshal(p.Items[0].Status.Reported)
	cpu := cpuTime()
	n := 0
	for b.Loop() {
		p, err := s.ListBundles(ctx, store.ListOptions{Page: 1, Size: 6000})
		if err != nil || len(p.Items) != 6000 || p.Total != 6000 {
			b.Fatalf("list: %d items of %d, %v", len(p.Items), p.Total, err)
		}
		n++
	}
	// CPU time of this process per list: wall time is unreliable on a
	// shared machine.
	b.ReportMetric(float64((cpuTime()-cpu).Milliseconds())/float64(n), "cpu-ms/op")
	b.ReportMetric(float64(len(spec)+len(status)), "bytes/bundle")
}

// cpuTime returns the user and system CPU time used by this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCreateBundleParallel creates bundles from 8 goroutines, as the
// REST create benchmark's clients do, and reports how many creates share a
// commit.
func BenchmarkCreateBundleParallel(b *testing.B) {
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			s := st.open(b)
			ctx := context.Background()
			if _, err := s.CreateConsumer(ctx, store.Consumer{Name: "c"}); err != nil {
				b.Fatal(err)
			}
			commits0, writes0 := s.(*sqlstore.Store).BatchStats()
			var next atomic.Int64
			b.SetParallelism(4) // 8 goroutines on 2 CPUs
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.CreateBundle(ctx, storetest.RealisticBundle("c", int(next.Add(1)))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			commits, writes := s.(*sqlstore.Store).BatchStats()
			b.ReportMetric(float64(writes-writes0)/float64(max(commits-commits0, 1)), "writes/commit")
		})
	}
}

// BenchmarkListBundles6000Pages lists 6,000 bundles of about 3 KB as 60
// pages of 100, in created_at order, the store's share of the REST paging
// benchmark.
func BenchmarkListBundles6000Pages(b *testing.B) {
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			s := st.open(b)
			storetest.Populate(b, s, "c", 6000)
			ctx := context.Background()
			for b.Loop() {
				for page := 1; page <= 60; page++ {
					p, err := s.ListBundles(ctx, store.ListOptions{Page: page, Size: 100,
						OrderBy: []store.Order{{Field: "created_at"}}})
					if err != nil || len(p.Items) != 100 || p.Total != 6000 {
						b.Fatalf("page %d: %d items of %d, %v", page, len(p.Items), p.Total, err)
					}
				}
			}
		})
	}
}

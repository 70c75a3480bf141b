package sqlstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/sqlstore"
	"github.com/baton-dev/baton/pkg/api"
)

// The writer connection never checkpoints the WAL itself; the background
// checkpointer copies it back, and the log is started over instead of
// growing with every write.
func TestWALCheckpointedInBackground(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := sqlstore.Open(ctx, sqlstore.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var auto int
	if err := s.DB().QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("writer wal_autocheckpoint = %d, %v; want 0", auto, err)
	}
	if _, err := s.CreateConsumer(ctx, store.Consumer{Name: "c"}); err != nil {
		t.Fatal(err)
	}
	// 3,000 creates of 2 KB: the log would pass 120 MB if it were never
	// started over.
	const n = 3000
	manifest := json.RawMessage(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"d"},"data":{"k":"` +
		strings.Repeat("v", 2000) + `"}}`)
	var g errgroup.Group
	g.SetLimit(8)
	for i := range n {
		g.Go(func() error {
			_, err := s.CreateBundle(ctx, store.Bundle{ConsumerName: "c", Name: fmt.Sprintf("b%d", i),
				Spec: api.BundleSpec{Manifests: []json.RawMessage{manifest}}})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	wal := filepath.Join(dir, "baton.db-wal")
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
		return s.Checkpoints() > 0, nil
	})
	if err != nil {
		t.Fatalf("no background checkpoint after %d creates", n)
	}
	fi, err := os.Stat(wal)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("WAL file after %d creates: %d bytes, %d background checkpoints", n, fi.Size(), s.Checkpoints())
	if fi.Size() > 64<<20 {
		t.Errorf("WAL is %d bytes after %d creates: it is not started over", fi.Size(), n)
	}
	page, err := s.ListBundles(ctx, store.ListOptions{Size: 1})
	if err != nil || page.Total != n {
		t.Fatalf("bundles after checkpoints: %d, %v; want %d", page.Total, err, n)
	}
}

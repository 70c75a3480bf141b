package sqlstore_test

import (
	"context"
	"maps"
	"testing"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
)

// TestWebhookBatchWithoutEvents: a batch without events (one statement on
// PostgreSQL) moves the cursor, writes and replaces snapshots and drops the
// emptied ones, on both stores.
func TestWebhookBatchWithoutEvents(t *testing.T) {
	ctx := context.Background()
	for name, open := range map[string]func(*testing.T) store.Store{
		"sqlite":   func(t *testing.T) store.Store { return storetest.NewSQLite(t) },
		"postgres": func(t *testing.T) store.Store { return storetest.NewPostgres(t) },
	} {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			type webhookStore interface {
				RecordWebhookBatch(context.Context, store.WebhookBatch) (int64, error)
				WebhookCursor(context.Context) (int64, error)
				BundleSnapshots(context.Context) (map[string]string, error)
			}
			w := s.(webhookStore)
			steps := []struct {
				cursor int64
				snaps  map[string]string
				want   map[string]string
			}{
				{7, map[string]string{"a": `{"v":1}`, "b": `{"v":1}`}, map[string]string{"a": `{"v":1}`, "b": `{"v":1}`}},
				{9, map[string]string{"a": `{"v":2}`, "b": "", "c": `{"v":1}`}, map[string]string{"a": `{"v":2}`, "c": `{"v":1}`}},
				{10, nil, map[string]string{"a": `{"v":2}`, "c": `{"v":1}`}},
			}
			for _, st := range steps {
				if _, err := w.RecordWebhookBatch(ctx, store.WebhookBatch{Cursor: st.cursor, Snapshots: st.snaps}); err != nil {
					t.Fatalf("batch to %d: %v", st.cursor, err)
				}
				cur, err := w.WebhookCursor(ctx)
				if err != nil || cur != st.cursor {
					t.Fatalf("cursor %d, %v; want %d", cur, err, st.cursor)
				}
				got, err := w.BundleSnapshots(ctx)
				if err != nil || !maps.Equal(got, st.want) {
					t.Fatalf("after the batch to %d: snapshots %v, %v; want %v", st.cursor, got, err, st.want)
				}
			}
		})
	}
}

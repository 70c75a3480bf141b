package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"

	"github.com/baton-dev/baton/internal/store"
)

// bundleCols are the columns scanBundle reads, in order.
const bundleCols = `b.id, b.name, b.consumer_name, b.source, b.meta, b.spec, b.manifests, b.generation,
	b.created_at, b.updated_at, b.deleted_at, b.change_seq,
	b.status, b.observed_generation, b.revision, b.sequence_id, b.agent_epoch, b.agent_revision,
	b.status_hash, b.reported_at, b.confirmed_at, b.digest_mismatch`

// decodeBatch is how many rows one decoding goroutine takes at a time.
const decodeBatch = 128

// rawBundle is a scanned row whose JSON columns are not decoded yet.
type rawBundle struct {
	b                             store.Bundle
	meta, spec, manifests, status []byte
}

// queryBundles runs a query selecting bundleCols and decodes every row.
// Results of more than one batch are decoded by GOMAXPROCS goroutines while
// the rows are still being read; the order of rows is kept.
func queryBundles(ctx context.Context, db conn, query string, args ...any) ([]store.Bundle, error) {
	rows, err := db.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var (
		batches [][]store.Bundle
		work    chan decodeJob
		wg      sync.WaitGroup
		errOnce sync.Once
		decErr  error
	)
	raw := make([]rawBundle, 0, decodeBatch)
	dispatch := func(final bool) {
		out := make([]store.Bundle, len(raw))
		batches = append(batches, out)
		if final && work == nil { // everything fits one batch: decode here
			decErr = decodeAll(raw, out, db.cache)
			return
		}
		if work == nil {
			work = make(chan decodeJob)
			for range runtime.GOMAXPROCS(0) {
				wg.Go(func() {
					for j := range work {
						if err := decodeAll(j.raw, j.out, db.cache); err != nil {
							errOnce.Do(func() { decErr = err })
						}
					}
				})
			}
		}
		work <- decodeJob{raw: raw, out: out}
		raw = make([]rawBundle, 0, decodeBatch)
	}
	for rows.Next() {
		raw = append(raw, rawBundle{})
		if err := scanRaw(rows, &raw[len(raw)-1]); err != nil {
			if work != nil {
				close(work)
				wg.Wait()
			}
			return nil, err
		}
		if len(raw) == decodeBatch {
			dispatch(false)
		}
	}
	if len(raw) > 0 || work == nil {
		dispatch(true)
	}
	if work != nil {
		close(work)
		wg.Wait()
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if decErr != nil {
		return nil, decErr
	}
	if len(batches) == 1 {
		return batches[0], nil
	}
	n := 0
	for _, b := range batches {
		n += len(b)
	}
	out := make([]store.Bundle, 0, n)
	for _, b := range batches {
		out = append(out, b...)
	}
	return out, nil
}

type decodeJob struct {
	raw []rawBundle
	out []store.Bundle
}

// scanRaw reads one row; JSON columns are copied for later decoding.
func scanRaw(rows *sql.Rows, r *rawBundle) error {
	var deleted, reported, confirmed sql.NullTime
	b := &r.b
	st := &b.Status
	err := rows.Scan(&b.ID, &b.Name, &b.ConsumerName, &b.Source, &r.meta, &r.spec, &r.manifests, &b.Generation,
		&b.CreatedAt, &b.UpdatedAt, &deleted, &b.ChangeSeq,
		&r.status, &st.ObservedGeneration, &st.Revision, &st.SequenceID, &st.AgentEpoch, &st.AgentRevision,
		&st.Hash, &reported, &confirmed, &st.DigestMismatch)
	if err != nil {
		return fmt.Errorf("scan bundle: %w", err)
	}
	b.CreatedAt, b.UpdatedAt = b.CreatedAt.UTC(), b.UpdatedAt.UTC()
	b.DeletedAt = timePtr(deleted)
	st.ReportedAt, st.ConfirmedAt = timeOf(reported), timeOf(confirmed)
	return nil
}

func decodeAll(raw []rawBundle, out []store.Bundle, cache *decoders) error {
	for i := range raw {
		if err := raw[i].decode(&out[i], cache); err != nil {
			return err
		}
	}
	return nil
}

// decode fills b from the row: scalar fields as scanned, JSON decoded.
func (r *rawBundle) decode(b *store.Bundle, cache *decoders) error {
	*b = r.b
	if err := cache.meta.decode(r.meta, &b.Meta); err != nil {
		return fmt.Errorf("bundle %s: decode metadata: %w", b.ID, err)
	}
	if err := cache.spec.decode(r.spec, &b.Spec); err != nil {
		return fmt.Errorf("bundle %s: decode spec: %w", b.ID, err)
	}
	if len(r.manifests) > 0 {
		b.Spec.Manifests = splitManifests(r.manifests)
	} else if b.Spec.Manifests == nil {
		b.Spec.Manifests = []json.RawMessage{}
	}
	if len(r.status) > 0 {
		if err := cache.status.decode(r.status, &b.Status.Reported); err != nil {
			return fmt.Errorf("bundle %s: decode status: %w", b.ID, err)
		}
	}
	return nil
}

// splitManifests splits the stored manifests column, one compact JSON value
// per line, into slices of data (which the caller owns).
func splitManifests(data []byte) []json.RawMessage {
	out := make([]json.RawMessage, 0, bytes.Count(data, []byte{'\n'})+1)
	for len(data) > 0 {
		line, rest, _ := bytes.Cut(data, []byte{'\n'})
		out = append(out, json.RawMessage(line[:len(line):len(line)]))
		data = rest
	}
	return out
}

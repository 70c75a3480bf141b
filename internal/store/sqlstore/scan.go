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
	b.first_generation, b.created_at, b.updated_at, b.deleted_at, b.change_seq,
	b.status, b.observed_generation, b.revision, b.sequence_id, b.agent_epoch, b.agent_revision,
	b.status_hash, b.reported_at, b.confirmed_at, b.digest_mismatch`

// decodeBatch is how many rows one decoding goroutine takes at a time.
const decodeBatch = 128

// rawBundle is a scanned row whose JSON columns are not decoded yet.
type rawBundle struct {
	b                             store.Bundle
	meta, spec, manifests, status []byte
}

// queryBundles runs a query selecting bundleCols and returns every row,
// decoded, in order.
func queryBundles(ctx context.Context, db conn, query string, args ...any) ([]store.Bundle, error) {
	out := []store.Bundle{}
	err := scanBundles(ctx, db, query, args, func(b *store.Bundle) error {
		out = append(out, *b)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// scanBundles runs a query selecting bundleCols and calls each with every
// row, decoded, in order; an error from each stops the query and is
// returned. Rows are decoded in batches of decodeBatch by GOMAXPROCS
// goroutines while the next rows are read, and at most GOMAXPROCS+1
// batches are held at once: the memory used does not grow with the number
// of rows. each runs on the caller's goroutine; while it blocks (a slow
// client), no further rows are read. The bundle passed to each is the
// callee's to keep.
func scanBundles(ctx context.Context, db conn, query string, args []any, each func(*store.Bundle) error) error {
	rows, err := db.query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	p := decodePipeline{cache: db.cache, each: each}
	defer p.stop()
	raw := make([]rawBundle, 0, decodeBatch)
	for rows.Next() {
		raw = append(raw, rawBundle{})
		if err := scanRaw(rows, &raw[len(raw)-1]); err != nil {
			return err
		}
		if len(raw) == decodeBatch {
			if err := p.submit(raw); err != nil {
				return err
			}
			raw = make([]rawBundle, 0, decodeBatch)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(raw) > 0 {
		if p.work == nil { // everything fits one batch: decode here
			out := make([]store.Bundle, len(raw))
			if err := decodeAll(raw, out, db.cache); err != nil {
				return err
			}
			return emitAll(out, each)
		}
		if err := p.submit(raw); err != nil {
			return err
		}
	}
	return p.drain()
}

// decodePipeline decodes batches on worker goroutines and hands the
// decoded bundles to each in submission order.
type decodePipeline struct {
	cache  *decoders
	each   func(*store.Bundle) error
	work   chan *decodeJob // nil until the first batch
	wg     sync.WaitGroup
	queued []*decodeJob // submitted, not yet emitted, oldest first
}

type decodeJob struct {
	raw  []rawBundle
	out  []store.Bundle
	err  error
	done chan struct{}
}

// submit queues a batch for decoding, first emitting the oldest batch
// when GOMAXPROCS+1 are already queued.
func (p *decodePipeline) submit(raw []rawBundle) error {
	workers := runtime.GOMAXPROCS(0)
	if p.work == nil {
		p.work = make(chan *decodeJob, workers+1)
		for range workers {
			p.wg.Go(func() {
				for j := range p.work {
					j.err = decodeAll(j.raw, j.out, p.cache)
					j.raw = nil
					close(j.done)
				}
			})
		}
	}
	if len(p.queued) > workers {
		if err := p.emitOldest(); err != nil {
			return err
		}
	}
	j := &decodeJob{raw: raw, out: make([]store.Bundle, len(raw)), done: make(chan struct{})}
	p.queued = append(p.queued, j)
	p.work <- j
	return nil
}

func (p *decodePipeline) emitOldest() error {
	j := p.queued[0]
	p.queued[0] = nil
	p.queued = p.queued[1:]
	<-j.done
	if j.err != nil {
		return j.err
	}
	return emitAll(j.out, p.each)
}

// drain emits every queued batch.
func (p *decodePipeline) drain() error {
	for len(p.queued) > 0 {
		if err := p.emitOldest(); err != nil {
			return err
		}
	}
	return nil
}

// stop ends the workers once they finished what was queued.
func (p *decodePipeline) stop() {
	if p.work != nil {
		close(p.work)
		p.wg.Wait()
	}
}

func emitAll(out []store.Bundle, each func(*store.Bundle) error) error {
	for i := range out {
		if err := each(&out[i]); err != nil {
			return err
		}
		out[i] = store.Bundle{} // the callee holds what it keeps
	}
	return nil
}

// scanRaw reads one row; JSON columns are copied for later decoding.
func scanRaw(rows *sql.Rows, r *rawBundle) error {
	var deleted, reported, confirmed sql.NullTime
	b := &r.b
	st := &b.Status
	err := rows.Scan(&b.ID, &b.Name, &b.ConsumerName, &b.Source, &r.meta, &r.spec, &r.manifests, &b.Generation,
		&b.FirstGeneration, &b.CreatedAt, &b.UpdatedAt, &deleted, &b.ChangeSeq,
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

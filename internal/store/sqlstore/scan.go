package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/baton-dev/baton/internal/store"
)

// bundleCols are the columns scanBundle reads, in order.
const bundleCols = `b.id, b.name, b.consumer_name, b.source, b.meta, b.spec, b.generation,
	b.created_at, b.updated_at, b.deleted_at, b.change_seq,
	b.status, b.observed_generation, b.revision, b.sequence_id, b.agent_epoch, b.agent_revision,
	b.status_hash, b.reported_at, b.confirmed_at, b.digest_mismatch`

// queryBundles runs a query selecting bundleCols and decodes every row.
func queryBundles(ctx context.Context, db conn, query string, args ...any) ([]store.Bundle, error) {
	rows, err := db.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.Bundle{}
	var sc bundleScan
	for rows.Next() {
		var b store.Bundle
		if err := sc.scan(rows, &b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// bundleScan holds the scan buffers reused across rows. The JSON columns are
// read as sql.RawBytes (no copy); decoding copies what it keeps.
type bundleScan struct {
	meta, spec, status           sql.RawBytes
	deleted, reported, confirmed sql.NullTime
}

func (sc *bundleScan) scan(rows *sql.Rows, b *store.Bundle) error {
	st := &b.Status
	err := rows.Scan(&b.ID, &b.Name, &b.ConsumerName, &b.Source, &sc.meta, &sc.spec, &b.Generation,
		&b.CreatedAt, &b.UpdatedAt, &sc.deleted, &b.ChangeSeq,
		&sc.status, &st.ObservedGeneration, &st.Revision, &st.SequenceID, &st.AgentEpoch, &st.AgentRevision,
		&st.Hash, &sc.reported, &sc.confirmed, &st.DigestMismatch)
	if err != nil {
		return fmt.Errorf("scan bundle: %w", err)
	}
	b.CreatedAt, b.UpdatedAt = b.CreatedAt.UTC(), b.UpdatedAt.UTC()
	b.DeletedAt = timePtr(sc.deleted)
	st.ReportedAt, st.ConfirmedAt = timeOf(sc.reported), timeOf(sc.confirmed)
	if err := json.Unmarshal(sc.meta, &b.Meta); err != nil {
		return fmt.Errorf("bundle %s: decode metadata: %w", b.ID, err)
	}
	if err := json.Unmarshal(sc.spec, &b.Spec); err != nil {
		return fmt.Errorf("bundle %s: decode spec: %w", b.ID, err)
	}
	if len(sc.status) > 0 {
		if err := json.Unmarshal(sc.status, &st.Reported); err != nil {
			return fmt.Errorf("bundle %s: decode status: %w", b.ID, err)
		}
	}
	return nil
}

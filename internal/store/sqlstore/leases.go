package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/baton-dev/baton/internal/store"
)

var _ store.Leases = (*Store)(nil)

const leaseCols = `name, holder, session, acquired_at, expires_at, contender, contended_at`

// Lease upserts: the row is written only when the WHERE of the conflict
// clause holds, and RETURNING yields nothing when it does not.
var (
	leaseUpsert = `INSERT INTO leases (name, holder, session, acquired_at, expires_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET
			acquired_at = CASE WHEN leases.holder = excluded.holder AND leases.session = excluded.session
				THEN leases.acquired_at ELSE excluded.acquired_at END,
			holder = excluded.holder, session = excluded.session, expires_at = excluded.expires_at,
			contender = CASE WHEN leases.contender = excluded.holder THEN '' ELSE leases.contender END,
			contended_at = CASE WHEN leases.contender = excluded.holder THEN NULL ELSE leases.contended_at END`
	qAcquireLease = prepared(leaseUpsert + ` WHERE leases.expires_at <= ? OR leases.holder = ? RETURNING ` + leaseCols)
	qRenewLease   = prepared(leaseUpsert + ` WHERE leases.holder = ? AND leases.session = ? RETURNING ` + leaseCols)
	qGetLease     = prepared(`SELECT ` + leaseCols + ` FROM leases WHERE name = ?`)
	qContendLease = prepared(`UPDATE leases SET contender = ?, contended_at = ? WHERE name = ? AND holder <> ?`)
	qReleaseLease = prepared(`DELETE FROM leases WHERE name = ? AND holder = ? AND session = ?`)
	qListLeases   = prepared(`SELECT ` + leaseCols + ` FROM leases WHERE name >= ? AND expires_at > ? ORDER BY name`)
)

// AcquireLease takes or renews a lease (see store.Leases).
func (s *Store) AcquireLease(ctx context.Context, r store.LeaseRequest) (store.Lease, bool, error) {
	if r.Name == "" || r.Holder == "" || r.TTL <= 0 {
		return store.Lease{}, false, fmt.Errorf("lease %q: name, holder and a positive ttl are required: %w", r.Name, store.ErrInvalid)
	}
	var (
		l  store.Lease
		ok bool
	)
	err := s.write(ctx, func(db conn) error {
		now := s.now()
		args := []any{r.Name, r.Holder, r.Session, now, norm(now.Add(r.TTL))}
		q := qAcquireLease
		if r.Renew {
			q, args = qRenewLease, append(args, r.Holder, r.Session)
		} else {
			args = append(args, now, r.Holder)
		}
		var err error
		l, err = scanLease(db.row(ctx, q, args...))
		if err == nil {
			ok = true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		ok = false
		if _, err := db.exec(ctx, qContendLease, r.Holder, now, r.Name, r.Holder); err != nil {
			return err
		}
		l, err = scanLease(db.row(ctx, qGetLease, r.Name))
		return err
	})
	if err != nil {
		return store.Lease{}, false, fmt.Errorf("lease %q: acquire for %q: %w", r.Name, r.Holder, err)
	}
	return l, ok, nil
}

// ReleaseLease gives up a lease held by (holder, session).
func (s *Store) ReleaseLease(ctx context.Context, name, holder, session string) error {
	err := s.write(ctx, func(db conn) error {
		_, err := db.exec(ctx, qReleaseLease, name, holder, session)
		return err
	})
	if err != nil {
		return fmt.Errorf("lease %q: release by %q: %w", name, holder, err)
	}
	return nil
}

// ListLeases returns the unexpired leases whose name starts with prefix.
func (s *Store) ListLeases(ctx context.Context, prefix string) ([]store.Lease, error) {
	rows, err := s.reader().query(ctx, qListLeases, prefix, s.now())
	if err != nil {
		return nil, fmt.Errorf("leases %q: list: %w", prefix, err)
	}
	defer rows.Close()
	var out []store.Lease
	for rows.Next() {
		l, err := scanLease(rows)
		if err != nil {
			return nil, fmt.Errorf("leases %q: list: %w", prefix, err)
		}
		if !strings.HasPrefix(l.Name, prefix) {
			break // names are sorted: past the prefix
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("leases %q: list: %w", prefix, err)
	}
	return out, nil
}

func scanLease(r rowScanner) (store.Lease, error) {
	var (
		l         store.Lease
		contended sql.NullTime
	)
	if err := r.Scan(&l.Name, &l.Holder, &l.Session, &l.AcquiredAt, &l.ExpiresAt, &l.Contender, &contended); err != nil {
		return l, err
	}
	l.AcquiredAt, l.ExpiresAt, l.ContendedAt = l.AcquiredAt.UTC(), l.ExpiresAt.UTC(), timeOf(contended)
	return l, nil
}

package sqlstore

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"k8s.io/utils/clock"
)

// Pruner defaults.
const (
	DefaultPruneInterval = time.Minute
	DefaultKeepChanges   = 100_000
	DefaultKeepFor       = time.Hour
	// pruneBatch bounds the rows one delete transaction removes, so a long
	// backlog does not hold the SQLite writer for long.
	pruneBatch = 10_000
)

// PrunerOptions configure a Pruner. Zero values take the defaults.
type PrunerOptions struct {
	// Interval between passes.
	Interval time.Duration
	// KeepChanges: the newest KeepChanges changes are always kept.
	KeepChanges int64
	// KeepFor: changes younger than KeepFor are always kept.
	KeepFor time.Duration
	Clock   clock.WithTicker
	Logger  *slog.Logger
	// Leading, when set, gates every pass: only a replica leading the
	// cluster duties prunes (nil: always).
	Leading func() bool
}

// Pruner deletes old entries of the change log periodically. A change is
// deleted only when it is both older than KeepFor and not among the newest
// KeepChanges, so a watcher can resume from any sequence value it saw in the
// last KeepFor (or the last KeepChanges changes, whichever reaches further
// back). A watcher resuming from a pruned value must relist.
type Pruner struct {
	st *Store
	o  PrunerOptions
}

// NewPruner returns a pruner of st's change log.
func NewPruner(st *Store, o PrunerOptions) *Pruner {
	if o.Interval <= 0 {
		o.Interval = DefaultPruneInterval
	}
	if o.KeepChanges <= 0 {
		o.KeepChanges = DefaultKeepChanges
	}
	if o.KeepFor <= 0 {
		o.KeepFor = DefaultKeepFor
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Pruner{st: st, o: o}
}

// Start prunes once, then every Interval, until ctx ends; it returns nil
// then. A failed pass is logged and tried again at the next interval.
func (p *Pruner) Start(ctx context.Context) error {
	t := p.o.Clock.NewTicker(p.o.Interval)
	defer t.Stop()
	for {
		if p.o.Leading != nil && !p.o.Leading() {
			// Another replica prunes.
		} else if n, err := p.Prune(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.o.Logger.Warn("prune change log", "err", err)
		} else if n > 0 {
			p.o.Logger.Debug("pruned change log", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
	}
}

// Prune runs one pass and returns how many changes it deleted.
func (p *Pruner) Prune(ctx context.Context) (int64, error) {
	latest, err := p.st.LatestChange(ctx)
	if err != nil {
		return 0, err
	}
	upTo := latest - p.o.KeepChanges
	if upTo <= 0 {
		return 0, nil
	}
	return p.st.PruneChangesBefore(ctx, upTo, p.o.Clock.Now().Add(-p.o.KeepFor))
}

var qPruneChanges = prepared(`DELETE FROM changes WHERE seq IN
	(SELECT seq FROM changes WHERE seq <= ? AND created_at < ? ORDER BY seq LIMIT ?)`)

// PruneChangesBefore deletes change log entries with Seq <= seq that were
// written before before, in transactions of at most 10,000 rows, and
// returns how many it removed.
func (s *Store) PruneChangesBefore(ctx context.Context, seq int64, before time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.write(ctx, func(db conn) error {
			res, err := db.exec(ctx, qPruneChanges, seq, norm(before), pruneBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("changes: prune to %d before %s: %w", seq, before.Format(time.RFC3339), err)
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}

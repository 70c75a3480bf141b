package sqlstore

// BatchStats returns how many write transactions the store ran and how many
// write functions they held.
func (s *Store) BatchStats() (commits, writes int64) {
	return s.batch.commits.Load(), s.batch.writes.Load()
}

// Checkpoints returns how many background WAL checkpoints copied pages
// (SQLite; 0 for PostgreSQL).
func (s *Store) Checkpoints() int64 {
	if s.ckpt == nil {
		return 0
	}
	return s.ckpt.runs.Load()
}

package sqlstore

// BatchStats returns how many write transactions the store ran and how many
// write functions they held.
func (s *Store) BatchStats() (commits, writes int64) {
	return s.batch.commits.Load(), s.batch.writes.Load()
}

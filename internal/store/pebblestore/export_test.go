package pebblestore

// Hooks for the tests of package pebblestore_test.

// CloseWithoutCheckpoint closes s as a crash right after its latest Commit would leave it:
// every Commit is in the journal, but the accounts changed since the last checkpoint are not
// in a/.
func (s *Store) CloseWithoutCheckpoint() error { return s.closeWithoutCheckpoint() }

// SetCheckpointPolicy replaces the thresholds at which a Commit writes a checkpoint.
func (s *Store) SetCheckpointPolicy(accounts int, records, changes uint64, interval int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policy = checkpointPolicy{accounts: accounts, records: records, changes: changes, interval: interval}
}

// CheckpointSeq is the seq of the latest checkpoint s wrote or loaded.
func (s *Store) CheckpointSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ckpt.Seq
}

// LastCommitKeys is the number of keys the latest Commit wrote.
func (s *Store) LastCommitKeys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastKeys
}

// SetAfterBatchCommit makes every Commit call f once its Pebble batch is committed, before
// the Commit publishes anything; f runs with the writer lock held and may read.
func (s *Store) SetAfterBatchCommit(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.afterBatch = f
}

// PebbleHasRecord reports whether Pebble itself, below the store's reads, shows record seq.
func (s *Store) PebbleHasRecord(seq uint64) bool {
	v, closer, err := s.db.Get(recordKey(nil, seq)) // not s.get, which reads the view
	if err != nil {
		return false
	}
	_ = v
	closer.Close()
	return true
}

//go:build race

package journal_test

// raceEnabled: under the race detector sync.Pool drops a share of what is put back, so a
// pooled buffer is sometimes allocated afresh.
const raceEnabled = true

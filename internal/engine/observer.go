package engine

import (
	"time"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// Observer sees every batch the engine commits or fails to commit (metrics, traces). It
// is called on the committer goroutine before the batch's callers are answered, so it must
// be quick and must not call the engine.
type Observer interface {
	Batch(b *BatchInfo)
}

// BatchInfo is what an Observer learns about one batch. Everything in it is read-only.
type BatchInfo struct {
	Commands []ledger.Command  // the requests of the batch, one Command per submission
	Results  [][]ledger.Result // their results, in the same order
	Record   *journal.Record   // the committed record; nil when the batch changed nothing
	Apply    time.Duration     // applying it to the state and sealing the record
	Commit   time.Duration     // the store's Commit
	Err      error             // the commit failed: the engine has stopped
	Holds    int               // pending holds after the batch
}

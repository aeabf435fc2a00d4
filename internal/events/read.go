package events

import (
	"context"
	"time"

	"github.com/tpwallet/tpwallet/internal/journal"
)

// Source is where events come from: the store's journal.
type Source interface {
	Journal(ctx context.Context, after uint64, limit int) ([]*journal.Record, error)
	Head(ctx context.Context) (journal.Head, error)
}

// Filter selects the events a follower delivers; nil selects all.
type Filter func(*Event) bool

// recordsPerRead bounds the records one Read decodes. It asks the store for a few first
// and for more (doubling) only while it still needs events, so that a journal of large
// records (batches of thousands of transfers) is not decoded far past what the caller
// takes.
const (
	recordsPerRead   = 64
	firstRecordsRead = 4
)

// Read returns up to max events at or after p that filter selects, and the position just
// after the last event it looked at (filtered-out events are passed over, so next can move
// even when evs is empty). firstTime is the timestamp of the record at p, or 0 when p is
// past the journal's end. It decodes at most recordsPerRead records.
func Read(ctx context.Context, src Source, p Position, max int, filter Filter) (evs []Event, next Position, firstTime int64, err error) {
	if p.Seq == 0 {
		p = Start
	}
	next = p
	read, ask := 0, firstRecordsRead
	for read < recordsPerRead {
		ask = min(ask, recordsPerRead-read)
		recs, err := src.Journal(ctx, next.Seq-1, ask)
		if err != nil {
			if read > 0 { // what was read so far stands
				return evs, next, firstTime, nil
			}
			return nil, p, 0, err
		}
		for _, r := range recs {
			if read == 0 {
				firstTime = r.Timestamp
			}
			read++
			from := 0
			if r.Seq == next.Seq {
				from = next.Index
			}
			for j := from; j < len(r.Changes); j++ {
				if len(evs) == max {
					return evs, next, firstTime, nil
				}
				c := &r.Changes[j]
				e := Event{Seq: r.Seq, Index: j, Type: TypeOf(c), Change: c}
				next = Next(r.Seq, j)
				if filter == nil || filter(&e) {
					evs = append(evs, e)
				}
			}
			next = Position{Seq: r.Seq + 1}
		}
		if len(recs) < ask || len(evs) == max {
			break // the journal's end, or enough
		}
		ask *= 2
	}
	return evs, next, firstTime, nil
}

// Wait waits until the journal may hold records after seq: at once when the hub knows of
// one, else until the hub is told of one or poll has passed (a standby's hub hears of no
// commits, so it polls). It returns ctx's error when ctx ends first.
func Wait(ctx context.Context, hub *Hub, seq uint64, poll time.Duration) error {
	if hub != nil {
		hub.Wait(ctx, seq, poll)
		return ctx.Err()
	}
	t := time.NewTimer(poll)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

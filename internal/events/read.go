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

// recordsPerRead bounds the records one Read asks the store for.
const recordsPerRead = 64

// Read returns up to max events at or after p that filter selects, and the position just
// after the last event it looked at (filtered-out events are passed over, so next can move
// even when evs is empty). firstTime is the timestamp of the record at p, or 0 when p is
// past the journal's end. It reads at most recordsPerRead records.
func Read(ctx context.Context, src Source, p Position, max int, filter Filter) (evs []Event, next Position, firstTime int64, err error) {
	if p.Seq == 0 {
		p = Start
	}
	recs, err := src.Journal(ctx, p.Seq-1, recordsPerRead)
	if err != nil {
		return nil, p, 0, err
	}
	next = p
	for i, r := range recs {
		if i == 0 {
			firstTime = r.Timestamp
		}
		from := 0
		if r.Seq == p.Seq {
			from = p.Index
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

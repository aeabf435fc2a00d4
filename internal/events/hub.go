package events

import (
	"context"
	"sync"
	"time"

	"github.com/tpwallet/tpwallet/internal/engine"
)

// Hub tells followers that the journal grew, so that they read at once instead of
// polling. The engine's Observer feeds it (Batch); on a standby, where no engine commits,
// followers fall back to polling the store.
type Hub struct {
	mu   sync.Mutex
	head uint64
	ch   chan struct{} // closed and replaced when head moves
}

// NewHub returns a Hub that knows of no record yet.
func NewHub() *Hub { return &Hub{ch: make(chan struct{})} }

// Committed records that the journal's head is now seq.
func (h *Hub) Committed(seq uint64) {
	h.mu.Lock()
	if seq > h.head {
		h.head = seq
		close(h.ch)
		h.ch = make(chan struct{})
	}
	h.mu.Unlock()
}

// Batch makes h an engine.Observer.
func (h *Hub) Batch(b *engine.BatchInfo) {
	if b.Err == nil && b.Record != nil {
		h.Committed(b.Record.Seq)
	}
}

// Head returns the highest seq Committed has seen.
func (h *Hub) Head() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.head
}

// Wait returns true as soon as the head is past after, or false once max has passed or
// ctx is done without that.
func (h *Hub) Wait(ctx context.Context, after uint64, max time.Duration) bool {
	h.mu.Lock()
	head, ch := h.head, h.ch
	h.mu.Unlock()
	if head > after {
		return true
	}
	t := time.NewTimer(max)
	defer t.Stop()
	for {
		select {
		case <-ch:
			h.mu.Lock()
			head, ch = h.head, h.ch
			h.mu.Unlock()
			if head > after {
				return true
			}
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// Observers combines engine observers (nil ones are skipped) into one.
func Observers(list ...engine.Observer) engine.Observer {
	var out multiObserver
	for _, o := range list {
		if o != nil {
			out = append(out, o)
		}
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return out
}

type multiObserver []engine.Observer

func (m multiObserver) Batch(b *engine.BatchInfo) {
	for _, o := range m {
		o.Batch(b)
	}
}

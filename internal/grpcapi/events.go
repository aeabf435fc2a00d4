package grpcapi

import (
	"context"
	"time"

	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/ledger"
	tpwalletv1 "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

const (
	// eventsPerMessage bounds the events of one StreamEventsResponse.
	eventsPerMessage = 1000
	// eventsPoll is how often a stream that is caught up looks at the store when no hub
	// tells it of commits (a standby).
	eventsPoll = 250 * time.Millisecond
	// eventsIdle bounds one wait for a commit, so that a stream notices Stop and a
	// change of role.
	eventsIdle = 15 * time.Second
	// eventsRetry is how long a stream waits after a failed store read before trying again.
	eventsRetry = time.Second
)

// StreamEvents is GET /v1/events as a stream: the events from req.After on, in journal
// order and several per message, then each new event as it commits, until the client
// cancels or the server stops (Unavailable: resume after the last event id received).
func (s eventStreams) StreamEvents(req *tpwalletv1.StreamEventsRequest, stream tpwalletv1.EventService_StreamEventsServer) error {
	p := events.Start
	if req.After != "" {
		var err error
		if p, err = events.ParseAfter(req.After); err != nil {
			return invalid("after must be a journal seq or an event id (<seq>-<index>)")
		}
	}
	filter, err := typeFilter(req.Types)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	defer context.AfterFunc(s.stopping, cancel)()
	for {
		prev := p
		evs, next, _, err := events.Read(ctx, s.svc.Store(), p, eventsPerMessage, filter)
		switch {
		case ctx.Err() != nil:
			return s.streamEnd(stream.Context())
		case err != nil:
			s.log.Warn("event stream: journal read failed", "err", err)
			s.waitEvents(ctx, ^uint64(0), eventsRetry) // back off a failing store
			continue
		}
		if len(evs) > 0 {
			msg := &tpwalletv1.StreamEventsResponse{Events: make([]*tpwalletv1.Event, len(evs))}
			for i := range evs {
				msg.Events[i] = eventPB(&evs[i])
			}
			if err := stream.Send(msg); err != nil {
				return err
			}
		}
		p = next
		if len(evs) == 0 && next == prev { // caught up
			s.waitEvents(ctx, p.Seq-1, eventsIdle)
		}
	}
}

// streamEnd is how a stream ends when its context does: the client's own cancellation,
// or Unavailable when the server is stopping.
func (s *Server) streamEnd(client context.Context) error {
	if err := client.Err(); err != nil {
		return errorOf(err)
	}
	return fail(ledger.CodeUnavailable, "the server is stopping; resume after the last event received")
}

func typeFilter(types []string) (events.Filter, error) {
	if len(types) == 0 {
		return nil, nil
	}
	want := map[string]bool{}
	for _, t := range types {
		if !events.ValidType(t) {
			return nil, invalid("types must be event types (docs/events.md); " + quote(t) + " is not one")
		}
		want[t] = true
	}
	return func(e *events.Event) bool { return want[e.Type] }, nil
}

// waitEvents waits until the journal may hold records after seq, or d passes, or ctx ends
// (as httpapi's waitEvents): on the hub on a leader, by polling the store's head on a
// standby.
func (s *Server) waitEvents(ctx context.Context, seq uint64, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for ctx.Err() == nil {
		if s.hub != nil && s.svc.IsLeader() {
			s.hub.Wait(ctx, seq, d)
			return
		}
		events.Wait(ctx, nil, 0, eventsPoll)
		if h, err := s.svc.Store().Head(ctx); err == nil && h.Seq > seq {
			return
		}
	}
}

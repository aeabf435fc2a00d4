package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/journal"
)

const (
	// maxEventsWait bounds ?wait=, well inside serve's default --write-timeout (60 s).
	maxEventsWait = 30 * time.Second
	// eventsPoll is how often a request waiting for events looks at the store when no hub
	// tells it of commits (a standby).
	eventsPoll = 250 * time.Millisecond
	// sseKeepAlive is how often an idle event stream sends a comment, so that proxies and
	// clients can tell it from a dead connection.
	sseKeepAlive = 15 * time.Second
)

// eventsQuery is what GET /v1/events was asked.
type eventsQuery struct {
	from   events.Position
	limit  int
	wait   time.Duration
	filter events.Filter
}

func parseEventsQuery(r *http.Request) (eventsQuery, error) {
	q := r.URL.Query()
	limit, _, err := page(r)
	if err != nil {
		return eventsQuery{}, err
	}
	out := eventsQuery{from: events.Start, limit: limit}
	after := q.Get("after")
	if after == "" {
		after = r.Header.Get("Last-Event-ID") // an EventSource reconnecting
	}
	if after != "" || q.Has("after") {
		if out.from, err = events.ParseAfter(after); err != nil {
			return eventsQuery{}, invalid("after must be a journal seq or an event id (<seq>-<index>)")
		}
	}
	if w := q.Get("wait"); w != "" || q.Has("wait") {
		n, err := strconv.Atoi(w)
		if err != nil || n < 0 || time.Duration(n)*time.Second > maxEventsWait || strconv.Itoa(n) != w {
			return eventsQuery{}, invalid("wait must be a whole number of seconds from 0 to %d", int(maxEventsWait/time.Second))
		}
		out.wait = time.Duration(n) * time.Second
	}
	if t := q.Get("types"); t != "" || q.Has("types") {
		want := map[string]bool{}
		for _, typ := range strings.Split(t, ",") {
			if !events.ValidType(typ) {
				return eventsQuery{}, invalid("types must be a comma-separated list of event types (docs/events.md); %q is not one", typ)
			}
			want[typ] = true
		}
		out.filter = func(e *events.Event) bool { return want[e.Type] }
	}
	return out, nil
}

// waitEvents waits until the journal may hold records after seq, or until d passes.
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

// listEvents serves GET /v1/events: a page of the journal's events from after, waiting up
// to ?wait= seconds for the first one (a long poll), or, when the client accepts
// text/event-stream, an endless Server-Sent Events stream.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	q, err := parseEventsQuery(r)
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		s.streamEvents(w, r, q)
		return
	}
	ctx := r.Context()
	deadline := time.Now().Add(q.wait)
	p := q.from
	var evs []events.Event
	for {
		more, next, _, err := events.Read(ctx, s.svc.Store(), p, q.limit-len(evs), q.filter)
		if err != nil {
			writeProblem(w, problemFromError(err))
			return
		}
		evs = append(evs, more...)
		advanced := next != p
		p = next
		if len(evs) == q.limit {
			break
		}
		if advanced {
			continue // more records may follow: a page holds up to limit events
		}
		left := time.Until(deadline)
		if len(evs) > 0 || left <= 0 || ctx.Err() != nil {
			break
		}
		s.waitEvents(ctx, p.Seq-1, left)
	}
	b := []byte(`{"items":[`)
	for i := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		b = events.AppendJSON(b, &evs[i], events.DefaultSource)
	}
	b = append(b, `],"next_cursor":`...)
	b = strconv.AppendQuote(b, p.Cursor())
	writeRaw(w, http.StatusOK, append(b, '}'), false)
}

// streamEvents writes events as Server-Sent Events until the client goes away: each with
// id (the event id, which an EventSource sends back as Last-Event-ID when it reconnects),
// event (the type) and data (the CloudEvent).
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request, q eventsQuery) {
	ctx := r.Context()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc.Flush() // the client learns at once that the stream is open
	p := q.from
	var b []byte
	lastWrite := time.Now()
	for ctx.Err() == nil {
		prev := p
		evs, next, _, err := events.Read(ctx, s.svc.Store(), p, q.limit, q.filter)
		if err != nil {
			b = append(b[:0], "event: error\ndata: "...)
			b = append(b, problemFromError(err).body()...)
			b = append(b, "\n\n"...)
		} else {
			b = b[:0]
			for i := range evs {
				b = append(b, "id: "...)
				b = append(b, evs[i].ID()...)
				b = append(b, "\nevent: "...)
				b = append(b, evs[i].Type...)
				b = append(b, "\ndata: "...)
				b = events.AppendJSON(b, &evs[i], events.DefaultSource)
				b = append(b, "\n\n"...)
			}
			p = next
		}
		if len(b) == 0 && time.Since(lastWrite) >= sseKeepAlive {
			b = append(b, ": keep-alive\n\n"...)
		}
		if len(b) > 0 {
			rc.SetWriteDeadline(time.Now().Add(maxEventsWait))
			if _, err := w.Write(b); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			lastWrite = time.Now()
		}
		if err != nil {
			s.waitEvents(ctx, ^uint64(0), time.Second) // back off a failing store
			continue
		}
		if len(evs) == 0 && next == prev { // caught up
			s.waitEvents(ctx, p.Seq-1, sseKeepAlive)
		}
	}
}

// listFollowers serves GET /v1/followers: every follower of the journal this instance
// runs (event publishers, webhook endpoints) with its position and lag.
func (s *Server) listFollowers(w http.ResponseWriter, r *http.Request) {
	var list []events.Status
	if s.follow != nil {
		list = s.follow.Statuses()
	}
	b := []byte(`{"items":[`)
	for i, st := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendFollowerJSON(b, &st)
	}
	writeRaw(w, http.StatusOK, append(b, "]}"...), false)
}

func appendFollowerJSON(b []byte, st *events.Status) []byte {
	b = append(b, `{"name":`...)
	b = journal.AppendJSONString(b, st.Name)
	b = append(b, `,"running":`...)
	b = strconv.AppendBool(b, st.Running)
	b = append(b, `,"position":`...)
	b = strconv.AppendQuote(b, st.Position.Cursor())
	b = append(b, `,"delivered":`...)
	b = strconv.AppendUint(b, st.Delivered, 10)
	b = append(b, `,"errors":`...)
	b = strconv.AppendUint(b, st.Errors, 10)
	b = append(b, `,"last_error":`...)
	b = journal.AppendJSONString(b, st.LastError)
	b = append(b, `,"lag_records":`...)
	b = strconv.AppendUint(b, st.LagRecords, 10)
	b = append(b, `,"lag_seconds":`...)
	b = strconv.AppendFloat(b, st.LagSeconds, 'f', 3, 64)
	return append(b, '}')
}

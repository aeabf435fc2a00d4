package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/httpapi"
	"github.com/tpwallet/tpwallet/internal/service"
	"github.com/tpwallet/tpwallet/internal/store"
)

type cloudEvent struct {
	SpecVersion  string          `json:"specversion"`
	ID           string          `json:"id"`
	Source       string          `json:"source"`
	Type         string          `json:"type"`
	Subject      string          `json:"subject"`
	Time         string          `json:"time"`
	JournalSeq   uint64          `json:"journalseq"`
	JournalIndex int             `json:"journalindex"`
	PartitionKey string          `json:"partitionkey"`
	Data         json.RawMessage `json:"data"`
}

type eventPage struct {
	Items      []cloudEvent `json:"items"`
	NextCursor string       `json:"next_cursor"`
}

// eventsStack is a stack whose engine feeds a hub that GET /v1/events waits on.
func eventsStack(t *testing.T) *stack {
	hub := events.NewHub()
	return openStackHTTP(t, t.TempDir(), engine.Options{Observer: hub}, service.Options{}, httpapi.Options{Hub: hub})
}

func (s *stack) events(t *testing.T, query string) eventPage {
	t.Helper()
	var p eventPage
	s.do(t, "GET", "/v1/events"+query, s.admin, nil).want(t, 200).into(t, &p)
	return p
}

// journalEvents is what GET /v1/journal says the events must be: one per change, with the
// change as data.
func (s *stack) journalEvents(t *testing.T) (ids []string, ops []string, data []string) {
	t.Helper()
	var pg struct {
		Items []struct {
			Seq     uint64            `json:"seq"`
			Changes []json.RawMessage `json:"changes"`
		} `json:"items"`
	}
	s.do(t, "GET", "/v1/journal?limit=1000", s.admin, nil).want(t, 200).into(t, &pg)
	recs := pg.Items
	for _, r := range recs {
		for i, c := range r.Changes {
			var op struct {
				Op string `json:"op"`
			}
			json.Unmarshal(c, &op)
			ids = append(ids, fmt.Sprintf("%d-%d", r.Seq, i))
			ops = append(ops, op.Op)
			data = append(data, string(c))
		}
	}
	return ids, ops, data
}

func TestEventsFollowTheJournal(t *testing.T) {
	s := eventsStack(t)
	s.openAccount(t, "treasury", "USD", true)
	s.openAccount(t, "alice", "USD", false)
	s.openAccount(t, "bob", "USD", false)
	s.pay(t, "treasury", "alice", "1000")
	h := s.hold(t, "alice", "bob", "300", 0)
	s.do(t, "POST", "/v1/transfers/"+h.ID+"/post", s.admin, obj{"amount": "100", "final": false}).want(t, 200)
	s.do(t, "POST", "/v1/transfers/"+h.ID+"/void", s.admin, nil).want(t, 200)
	s.do(t, "POST", "/v1/accounts/bob/freeze", s.admin, nil).want(t, 200)

	ids, ops, data := s.journalEvents(t)
	got := s.events(t, "?limit=1000")
	if len(got.Items) != len(ids) {
		t.Fatalf("got %d events, the journal has %d changes", len(got.Items), len(ids))
	}
	wantTypes := []string{"account.created", "account.created", "account.created", "transfer.posted",
		"transfer.pending", "transfer.partially_posted", "transfer.voided", "account.frozen"}
	for i, e := range got.Items {
		if e.ID != ids[i] || e.Type != wantTypes[i] || e.SpecVersion != "1.0" || e.Source != "/tpwallet" ||
			e.ID != fmt.Sprintf("%d-%d", e.JournalSeq, e.JournalIndex) {
			t.Errorf("event %d: %+v; want id %s, type %s (op %s)", i, e, ids[i], wantTypes[i], ops[i])
		}
		var a, b any
		json.Unmarshal(e.Data, &a)
		json.Unmarshal([]byte(data[i]), &b)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("event %s: data %s, journal change %s", e.ID, e.Data, data[i])
		}
	}
	if got.NextCursor != "8" { // the whole of record 8 was returned
		t.Errorf("next_cursor %q, want 8", got.NextCursor)
	}
	// Pages of 3 from the start give the same events; next_cursor resumes mid-record too.
	var paged []string
	cursor := "0"
	for range 20 {
		p := s.events(t, "?limit=3&after="+cursor)
		if len(p.Items) == 0 {
			break
		}
		for _, e := range p.Items {
			paged = append(paged, e.ID)
		}
		cursor = p.NextCursor
	}
	if !slices.Equal(paged, ids) {
		t.Errorf("paged events %v, want %v", paged, ids)
	}
	// An empty page keeps the cursor; ?types= filters.
	if p := s.events(t, "?after="+ids[len(ids)-1]); len(p.Items) != 0 || p.NextCursor != "8" {
		t.Errorf("after the last event: %+v", p)
	}
	p := s.events(t, "?types=transfer.pending,account.frozen")
	if len(p.Items) != 2 || p.Items[0].Type != "transfer.pending" || p.Items[1].Type != "account.frozen" {
		t.Errorf("types filter: %+v", p.Items)
	}
	// After a journal seq: the events of later records.
	if p := s.events(t, "?after=3"); len(p.Items) == 0 || p.Items[0].JournalSeq != 4 || p.Items[0].JournalIndex != 0 {
		t.Errorf("after=3: %+v", p.Items)
	}
	for _, bad := range []string{"?after=x", "?after=1-", "?after=-1", "?wait=31", "?wait=-1", "?wait=1.5",
		"?types=transfer.nope", "?types=", "?limit=0"} {
		s.do(t, "GET", "/v1/events"+bad, s.admin, nil).wantProblem(t, 400, "invalid_request")
	}
	reader := s.newKey(t, "reader", "read")
	s.do(t, "GET", "/v1/events", reader, nil).want(t, 200)
}

func TestEventsLongPoll(t *testing.T) {
	s := eventsStack(t)
	s.openAccount(t, "treasury", "USD", true)
	s.openAccount(t, "alice", "USD", false)
	head := s.head(t)
	type result struct {
		p   eventPage
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := s.send("GET", fmt.Sprintf("/v1/events?wait=30&after=%d", head.Seq), s.admin, nil)
		var p eventPage
		if err == nil {
			err = json.Unmarshal(r.Body, &p)
		}
		done <- result{p, err}
	}()
	tr := s.pay(t, "treasury", "alice", "5")
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	// Whether the request was waiting before the payment or not, it answers with it (and
	// without the wait it would have had nothing).
	if len(r.p.Items) != 1 || r.p.Items[0].Subject != tr.ID || r.p.Items[0].Type != "transfer.posted" {
		t.Fatalf("long poll got %+v, want the payment %s", r.p.Items, tr.ID)
	}
}

func TestEventsServerSentEvents(t *testing.T) {
	s := eventsStack(t)
	s.openAccount(t, "treasury", "USD", true)
	s.openAccount(t, "alice", "USD", false)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.srv.URL+"/v1/events?types=transfer.posted", nil)
	req.Header.Set("Authorization", "Bearer "+s.admin)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", "1-0") // resume mid-record: after the first account
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, ct)
	}
	var want []string
	for _, amount := range []string{"1", "2", "3"} {
		want = append(want, s.pay(t, "treasury", "alice", amount).ID)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	var got []string
	var id, typ string
	for len(got) < len(want) && sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "event: "):
			typ = line[7:]
		case strings.HasPrefix(line, "data: "):
			var e cloudEvent
			if err := json.Unmarshal([]byte(line[6:]), &e); err != nil {
				t.Fatalf("data line %q: %v", line, err)
			}
			if e.ID != id || e.Type != typ || typ != "transfer.posted" {
				t.Errorf("event %s (%s): data %+v", id, typ, e)
			}
			got = append(got, e.Subject)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("streamed transfers %v, want %v (%v)", got, want, sc.Err())
	}
}

func TestSubmitTransferCommand(t *testing.T) {
	s := newStack(t)
	api := s.srv.Config.Handler.(*httpapi.Server)
	s.openAccount(t, "treasury", "USD", true)
	s.openAccount(t, "alice", "USD", false)
	writer := "Bearer " + s.newKey(t, "broker", "write")
	body := []byte(`{"source":"treasury","destination":"alice","amount":"70"}`)
	first := api.SubmitTransfer(t.Context(), httpapi.Command{Authorization: writer, IdempotencyKey: "cmd-1", Body: body})
	again := api.SubmitTransfer(t.Context(), httpapi.Command{Authorization: writer, IdempotencyKey: "cmd-1", Body: body})
	if first.Status != 201 || first.Replayed || again.Status != 201 || !again.Replayed || string(again.Body) != string(first.Body) {
		t.Fatalf("first %d %t %s; again %d %t %s", first.Status, first.Replayed, first.Body, again.Status, again.Replayed, again.Body)
	}
	s.wantBalance(t, "alice", balance{Posted: "70", Available: "70", PendingDebits: "0", PendingCredits: "0"})
	// The same key over REST with the same body replays too: one scope per API key.
	var env struct {
		IdempotencyKey string          `json:"idempotency_key"`
		Status         int             `json:"status"`
		Replayed       bool            `json:"replayed"`
		Body           json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(first.AppendJSON(nil), &env); err != nil || env.Status != 201 || env.IdempotencyKey != "cmd-1" {
		t.Fatalf("envelope %s: %v", first.AppendJSON(nil), err)
	}
	reader := "Bearer " + s.newKey(t, "reader", "read")
	for _, tc := range []struct {
		c      httpapi.Command
		status int
		code   string
	}{
		{httpapi.Command{IdempotencyKey: "k", Body: body}, 401, "unauthenticated"},
		{httpapi.Command{Authorization: "Bearer nope", IdempotencyKey: "k", Body: body}, 401, "unauthenticated"},
		{httpapi.Command{Authorization: reader, IdempotencyKey: "k", Body: body}, 403, "forbidden"},
		{httpapi.Command{Authorization: writer, Body: body}, 400, "invalid_request"},
		{httpapi.Command{Authorization: writer, IdempotencyKey: "k\n", Body: body}, 400, "invalid_request"},
		{httpapi.Command{Authorization: writer, IdempotencyKey: "k2", Body: []byte(`{"source":1}`)}, 400, "invalid_request"},
		{httpapi.Command{Authorization: writer, IdempotencyKey: "k3"}, 400, "invalid_request"},
		{httpapi.Command{Authorization: writer, IdempotencyKey: "cmd-1", Body: []byte(`{"source":"treasury","destination":"alice","amount":"71"}`)}, 422, "idempotency_key_reused"},
		{httpapi.Command{Authorization: writer, IdempotencyKey: "k4", Body: []byte(`{"source":"alice","destination":"treasury","amount":"100"}`)}, 422, "insufficient_funds"},
	} {
		s.unchanged(t, func() {
			r := api.SubmitTransfer(t.Context(), tc.c)
			var p problem
			json.Unmarshal(r.Body, &p)
			if r.Status != tc.status || p.Code != tc.code || r.Retryable() {
				t.Errorf("%+v: got %d %s, want %d %s (not retryable)", tc.c, r.Status, r.Body, tc.status, tc.code)
			}
		})
	}
}

func TestFollowersList(t *testing.T) {
	hub := events.NewHub()
	set := events.NewSet(hub)
	dir := t.TempDir()
	s := openStackHTTP(t, dir, engine.Options{Observer: hub}, service.Options{}, httpapi.Options{Hub: hub, Followers: set})
	s.openAccount(t, "treasury", "USD", true)
	s.openAccount(t, "alice", "USD", false)
	var got struct {
		Items []struct {
			Name       string  `json:"name"`
			Running    bool    `json:"running"`
			Position   string  `json:"position"`
			LagRecords uint64  `json:"lag_records"`
			LagSeconds float64 `json:"lag_seconds"`
		} `json:"items"`
	}
	s.do(t, "GET", "/v1/followers", s.admin, nil).want(t, 200).into(t, &got)
	if len(got.Items) != 0 {
		t.Fatalf("followers before any: %+v", got.Items)
	}
	set.Add(&events.Follower{Name: "stopped", Source: s.svc.Store(), Meta: s.store.Store.(store.Meta),
		Sink: events.SinkFunc(func(_ context.Context, evs []events.Event) (int, error) { return len(evs), nil })})
	s.do(t, "GET", "/v1/followers", s.admin, nil).want(t, 200).into(t, &got)
	if len(got.Items) != 1 || got.Items[0].Name != "stopped" || got.Items[0].Running || got.Items[0].LagRecords != 2 ||
		got.Items[0].Position != "0" {
		t.Fatalf("a follower that has not run: %+v, want lag 2 at position 0", got.Items)
	}
	s.do(t, "GET", "/v1/followers", s.newKey(t, "reader", "read"), nil).wantProblem(t, 403, "forbidden")
}

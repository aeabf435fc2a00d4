package webhook_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientwebhook "github.com/tpwallet/tpwallet/client/webhook"
	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/webhook"
)

// TestWebhookDeliversSignedEventsInOrder registers an endpoint on a real HTTP receiver and
// checks that it gets every event committed after it was created, once each, in journal
// order, as CloudEvents signed with its secret.
func TestWebhookDeliversSignedEventsInOrder(t *testing.T) {
	b := openBook(t)
	b.account(t, "treasury", true) // before the endpoint: not delivered
	rc := newReceiver(t, nil)
	m := openManager(t, b.opts())
	ep, err := m.Create(t.Context(), webhook.Spec{URL: rc.srv.URL + "/hook", Description: "test receiver"})
	if err != nil {
		t.Fatal(err)
	}
	if !webhook.ValidID(ep.ID) || !strings.HasPrefix(ep.ID, "wh_") {
		t.Errorf("id %q", ep.ID)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(string(ep.Secret), "whsec_"))
	if !strings.HasPrefix(string(ep.Secret), "whsec_") || err != nil || len(key) < 24 {
		t.Fatalf("secret is not whsec_ and base64 of 24+ bytes: %v, %d bytes", err, len(key))
	}
	first := b.account(t, "alice", false)
	b.account(t, "bob", false)
	for i := 0; i < 10; i++ {
		b.pay(t, "treasury", "alice", 100)
		b.pay(t, "alice", "bob", 7)
	}
	want := journalEvents(t, b, first, nil)
	eventually(t, 10*time.Second, "every event delivered", func() bool { return len(rc.delivered()) >= len(want) })
	if got := rc.delivered(); !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	for _, r := range rc.requests() {
		id := r.header.Get("webhook-id")
		if err := clientwebhook.Verify(string(ep.Secret), r.header, r.body, time.Now(), 0); err != nil {
			t.Errorf("event %s: signature: %v", id, err)
		}
		other := "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 32))
		if err := clientwebhook.Verify(other, r.header, r.body, time.Now(), 0); !errors.Is(err, clientwebhook.ErrSignature) {
			t.Errorf("event %s verifies with another secret: %v", id, err)
		}
		var ce struct {
			SpecVersion string `json:"specversion"`
			ID          string `json:"id"`
			Type        string `json:"type"`
			Data        any    `json:"data"`
		}
		if err := json.Unmarshal(r.body, &ce); err != nil || ce.ID != id || ce.SpecVersion != "1.0" || ce.Data == nil {
			t.Errorf("event %s: body %s (%v)", id, r.body, err)
		}
		if ct, ua := r.header.Get("Content-Type"), r.header.Get("User-Agent"); ct != "application/json" || ua != webhook.UserAgent {
			t.Errorf("event %s: Content-Type %q, User-Agent %q", id, ct, ua)
		}
		if r.path != "/hook" {
			t.Errorf("event %s went to %s", id, r.path)
		}
	}
	head := b.eng.HeadSeq()
	eventually(t, 5*time.Second, "the cursor past the head", func() bool {
		st, err := m.Status(t.Context(), ep.ID, head)
		return err == nil && st.Position.Seq == head+1
	})
	st, err := m.Status(t.Context(), ep.ID, head)
	if err != nil || !st.Running || st.LagRecords != 0 || st.Breaker != "closed" || st.Delivered != uint64(len(want)) ||
		st.LastSuccessAt == 0 || st.LastError != "" {
		t.Errorf("status %+v, %v", st, err)
	}
	got, err := m.Get(t.Context(), ep.ID)
	if err != nil || got.Secret != "" || got.URL != ep.URL || got.Description != "test receiver" || got.CreatedAt != ep.CreatedAt {
		t.Errorf("Get: %+v, %v", got, err)
	}
}

// TestWebhookEventTypes checks that an endpoint gets only the types it asked for, that
// repeated types count once, and that an unknown type is refused.
func TestWebhookEventTypes(t *testing.T) {
	b := openBook(t)
	rc := newReceiver(t, nil)
	m := openManager(t, b.opts())
	if _, err := m.Create(t.Context(), webhook.Spec{URL: rc.srv.URL + "/posted", EventTypes: []string{events.TransferPosted}}); err != nil {
		t.Fatal(err)
	}
	accounts, err := m.Create(t.Context(), webhook.Spec{URL: rc.srv.URL + "/accounts",
		EventTypes: []string{events.AccountCreated, events.AccountCreated}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(accounts.EventTypes, []string{events.AccountCreated}) {
		t.Errorf("event types %v, want [account.created]", accounts.EventTypes)
	}
	_, err = m.Create(t.Context(), webhook.Spec{URL: rc.srv.URL, EventTypes: []string{"transfer.exploded"}})
	if codeOf(err) != ledger.CodeInvalidRequest {
		t.Errorf("unknown event type: %v, want invalid_request", err)
	}
	first := b.account(t, "treasury", true)
	b.account(t, "alice", false)
	b.pay(t, "treasury", "alice", 5)
	b.pay(t, "treasury", "alice", 6)
	byType := func(typ string) events.Filter { return func(e *events.Event) bool { return e.Type == typ } }
	wantPosted := journalEvents(t, b, first, byType(events.TransferPosted))
	wantAccounts := journalEvents(t, b, first, byType(events.AccountCreated))
	if len(wantPosted) != 2 || len(wantAccounts) != 2 {
		t.Fatalf("journal: %v %v", wantPosted, wantAccounts)
	}
	pathIDs := func(path string) []string {
		var ids []string
		for _, r := range rc.requests() {
			if r.path == path {
				ids = append(ids, r.header.Get("webhook-id"))
			}
		}
		return ids
	}
	eventually(t, 10*time.Second, "both endpoints caught up", func() bool {
		return len(pathIDs("/posted")) >= 2 && len(pathIDs("/accounts")) >= 2
	})
	if got := pathIDs("/posted"); !slices.Equal(got, wantPosted) {
		t.Errorf("transfer.posted endpoint got %v, want %v", got, wantPosted)
	}
	if got := pathIDs("/accounts"); !slices.Equal(got, wantAccounts) {
		t.Errorf("account.created endpoint got %v, want %v", got, wantAccounts)
	}
}

// TestWebhookRetriesInOrderAndBreaker fails a receiver until its breaker opens, checks the
// attempts are spaced by the backoff and that later events wait, then lets it recover:
// every event arrives once, in order, and the breaker closes.
func TestWebhookRetriesInOrderAndBreaker(t *testing.T) {
	b := openBook(t)
	var failing atomic.Bool
	failing.Store(true)
	rc := newReceiver(t, func(*http.Request, int) int {
		if failing.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	o := b.opts()
	o.BreakerAfter, o.MinBackoff, o.MaxBackoff = 3, 20*time.Millisecond, 40*time.Millisecond
	m := openManager(t, o)
	ep, err := m.Create(t.Context(), webhook.Spec{URL: rc.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	first := b.account(t, "treasury", true)
	b.account(t, "alice", false)
	for i := 0; i < 5; i++ {
		b.pay(t, "treasury", "alice", uint64(i+1))
	}
	want := journalEvents(t, b, first, nil)
	var st webhook.Status
	eventually(t, 10*time.Second, "the breaker open", func() bool {
		st, err = m.Status(t.Context(), ep.ID, b.eng.HeadSeq())
		return err == nil && st.Breaker == "open" && len(rc.requests()) >= 5
	})
	if st.ConsecutiveFailures < 3 || st.OpenedAt == 0 || st.RetryingEvent != want[0] || st.LastError != "HTTP 503" {
		t.Errorf("open status %+v", st)
	}
	reqs := rc.requests()
	for i, r := range reqs {
		if id := r.header.Get("webhook-id"); id != want[0] {
			t.Fatalf("attempt %d was at %s while %s was failing: order broken", i, id, want[0])
		}
		if i > 0 {
			if gap := r.at.Sub(reqs[i-1].at); gap < 15*time.Millisecond { // 3/4 of the 20 ms backoff
				t.Errorf("attempts %d and %d %v apart: a burst", i-1, i, gap)
			}
		}
	}
	failing.Store(false)
	eventually(t, 10*time.Second, "every event delivered", func() bool { return len(rc.delivered()) >= len(want) })
	if got := rc.delivered(); !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	eventually(t, 5*time.Second, "the breaker closed", func() bool {
		st, err = m.Status(t.Context(), ep.ID, b.eng.HeadSeq())
		return err == nil && st.Breaker == "closed" && st.LagRecords == 0
	})
	if st.ConsecutiveFailures != 0 || st.RetryingEvent != "" || st.LastError != "HTTP 503" || st.LastSuccessAt == 0 {
		t.Errorf("recovered status %+v", st)
	}
	// The log has every attempt at the first event, numbered, then its delivery.
	log, _, err := m.Deliveries(t.Context(), ep.ID, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var firstEvent []webhook.Delivery
	for i := len(log) - 1; i >= 0; i-- { // oldest first
		if log[i].EventID == want[0] {
			firstEvent = append(firstEvent, log[i])
		}
	}
	attempts := 0
	for _, r := range rc.requests() {
		if r.header.Get("webhook-id") == want[0] {
			attempts++
		}
	}
	if len(firstEvent) != attempts || attempts < 4 {
		t.Fatalf("first event: %d log entries, %d requests (at least 3 failed and 1 delivered)", len(firstEvent), attempts)
	}
	for i, d := range firstEvent {
		last := i == len(firstEvent)-1
		switch {
		case d.Attempt != i+1:
			t.Errorf("entry %d: attempt %d", i, d.Attempt)
		case last && (d.Outcome != webhook.OutcomeDelivered || d.Status != 204 || d.Error != ""):
			t.Errorf("last entry %+v, want delivered 204", d)
		case !last && (d.Outcome != webhook.OutcomeRetrying || d.Status != 503 || d.NextAttempt <= d.Time):
			t.Errorf("entry %d %+v, want retrying 503 with a later next attempt", i, d)
		}
	}
}

// TestWebhookDeadLetter fails one event for good: after the retry window it is dead-
// lettered and delivery moves on to the events after it, in order.
func TestWebhookDeadLetter(t *testing.T) {
	b := openBook(t)
	first := b.account(t, "treasury", true)
	b.account(t, "alice", false)
	victim := events.FormatID(b.pay(t, "treasury", "alice", 1), 0)
	rc := newReceiver(t, func(r *http.Request, _ int) int {
		if r.Header.Get("webhook-id") == victim {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	o := b.opts()
	o.RetryFor = 100 * time.Millisecond
	m := openManager(t, o)
	ep, err := m.Create(t.Context(), webhook.Spec{URL: rc.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Replay(t.Context(), ep.ID, first); err != nil { // from before it was created
		t.Fatal(err)
	}
	b.pay(t, "treasury", "alice", 2)
	b.pay(t, "treasury", "alice", 3)
	all := journalEvents(t, b, first, nil)
	want := slices.DeleteFunc(slices.Clone(all), func(id string) bool { return id == victim })
	eventually(t, 10*time.Second, "the events after the dead letter", func() bool { return len(rc.delivered()) >= len(want) })
	if got := rc.delivered(); !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	dls, next, err := m.DeadLetters(t.Context(), ep.ID, "", 10)
	if err != nil || len(dls) != 1 || next != "" {
		t.Fatalf("dead letters %+v next %q, %v", dls, next, err)
	}
	d := dls[0]
	if d.EventID != victim || d.EventType != events.TransferPosted || d.Attempts < 2 || d.LastStatus != 500 ||
		d.LastError != "HTTP 500" || time.Duration(d.Time-d.FirstAttempt) < o.RetryFor || events.FormatID(d.Seq, d.Index) != victim {
		t.Errorf("dead letter %+v", d)
	}
	log, _, err := m.Deliveries(t.Context(), ep.ID, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(log, func(x webhook.Delivery) bool { return x.EventID == victim }) // newest first
	if i < 0 || log[i].Outcome != webhook.OutcomeDeadLettered || log[i].Attempt != d.Attempts {
		t.Errorf("the victim's last log entry: %+v", log[max(i, 0)])
	}
	if n := len(rc.requests()) - len(want); n != d.Attempts {
		t.Errorf("%d failed requests, the dead letter says %d attempts", n, d.Attempts)
	}
}

// TestWebhookBreakerNoBurst keeps an endpoint down with a retry window shorter than the
// backoff: once the breaker is open each event gets one probe, spaced by the backoff even
// across dead letters (no burst), and the first success closes it.
func TestWebhookBreakerNoBurst(t *testing.T) {
	b := openBook(t)
	var up atomic.Bool
	rc := newReceiver(t, func(*http.Request, int) int {
		if up.Load() {
			return http.StatusOK
		}
		return http.StatusBadGateway
	})
	o := b.opts()
	o.BreakerAfter, o.RetryFor, o.MinBackoff, o.MaxBackoff = 2, 30*time.Millisecond, 40*time.Millisecond, 40*time.Millisecond
	m := openManager(t, o)
	ep, err := m.Create(t.Context(), webhook.Spec{URL: rc.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	b.account(t, "treasury", true)
	b.account(t, "alice", false)
	for i := 0; i < 4; i++ {
		b.pay(t, "treasury", "alice", 1)
	}
	eventually(t, 10*time.Second, "four dead letters", func() bool {
		dls, _, err := m.DeadLetters(t.Context(), ep.ID, "", 100)
		return err == nil && len(dls) >= 4
	})
	reqs := rc.requests()
	for i := 1; i < len(reqs); i++ {
		if gap := reqs[i].at.Sub(reqs[i-1].at); gap < 30*time.Millisecond { // 3/4 of 40 ms
			t.Errorf("attempts %d (%s) and %d (%s) %v apart: a burst", i-1, reqs[i-1].header.Get("webhook-id"),
				i, reqs[i].header.Get("webhook-id"), gap)
		}
	}
	st, err := m.Status(t.Context(), ep.ID, b.eng.HeadSeq())
	if err != nil || st.Breaker != "open" {
		t.Fatalf("status %+v, %v", st, err)
	}
	up.Store(true)
	b.pay(t, "treasury", "alice", 1)
	eventually(t, 10*time.Second, "the breaker closed by a success", func() bool {
		st, err := m.Status(t.Context(), ep.ID, b.eng.HeadSeq())
		return err == nil && st.Breaker == "closed" && len(rc.delivered()) > 0
	})
}

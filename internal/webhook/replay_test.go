package webhook_test

import (
	"bytes"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/webhook"
)

// TestWebhookReplay delivers events, replays them from their first record, and checks the
// receiver gets them again in order with the same ids and bodies; a bad from_seq and an
// unknown endpoint are refused.
func TestWebhookReplay(t *testing.T) {
	b := openBook(t)
	rc := newReceiver(t, nil)
	m := openManager(t, b.opts())
	ep, err := m.Create(t.Context(), webhook.Spec{URL: rc.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	first := b.account(t, "treasury", true)
	b.account(t, "alice", false)
	b.pay(t, "treasury", "alice", 3)
	want := journalEvents(t, b, first, nil)
	eventually(t, 10*time.Second, "the first delivery", func() bool { return len(rc.delivered()) >= len(want) })
	if err := m.Replay(t.Context(), ep.ID, first); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the replay", func() bool { return len(rc.delivered()) >= 2*len(want) })
	got := rc.requests()
	if ids := rc.delivered(); !slices.Equal(ids, slices.Concat(want, want)) {
		t.Fatalf("delivered %v, want %v twice", ids, want)
	}
	for i := range want {
		if !bytes.Equal(got[i].body, got[len(want)+i].body) {
			t.Errorf("event %s: replayed body differs:\n%s\n%s", want[i], got[i].body, got[len(want)+i].body)
		}
	}
	head := b.eng.HeadSeq()
	for _, seq := range []uint64{0, head + 2} {
		if err := m.Replay(t.Context(), ep.ID, seq); ledger.CodeOf(err) != ledger.CodeInvalidRequest {
			t.Errorf("replay from %d: %v, want invalid_request", seq, err)
		}
	}
	if err := m.Replay(t.Context(), ep.ID, head+1); err != nil { // nothing to replay, but allowed
		t.Errorf("replay from head+1: %v", err)
	}
	if err := m.Replay(t.Context(), "wh_0000000000000000", 1); ledger.CodeOf(err) != ledger.CodeWebhookNotFound {
		t.Errorf("replay of an unknown endpoint: %v, want webhook_not_found", err)
	}
}

// TestWebhookReplayCutsTheWait makes an endpoint fail once with an hour's backoff ahead,
// then replays: the event is tried again at once, not in an hour.
func TestWebhookReplayCutsTheWait(t *testing.T) {
	b := openBook(t)
	rc := newReceiver(t, func(_ *http.Request, n int) int {
		if n == 0 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	o := b.opts()
	o.MinBackoff, o.MaxBackoff = time.Hour, time.Hour
	m := openManager(t, o)
	ep, err := m.Create(t.Context(), webhook.Spec{URL: rc.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	seq := b.account(t, "alice", false)
	eventually(t, 10*time.Second, "the failed attempt", func() bool {
		st, err := m.Status(t.Context(), ep.ID, seq)
		return err == nil && st.Attempts == 1
	})
	st, _ := m.Status(t.Context(), ep.ID, seq)
	if wait := time.Until(time.Unix(0, st.NextAttemptAt)); wait < 30*time.Minute {
		t.Fatalf("next attempt in %v, want about an hour", wait)
	}
	if err := m.Replay(t.Context(), ep.ID, seq); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the replayed delivery", func() bool {
		st, err = m.Status(t.Context(), ep.ID, seq)
		return err == nil && st.LastSuccessAt != 0
	})
	if n := len(rc.delivered()); n != 1 || st.RetryingEvent != "" || st.NextAttemptAt != 0 || st.Breaker != "closed" {
		t.Errorf("after the replay: %d delivered, status %+v", n, st)
	}
}

// TestWebhookDeliveryLogPaging checks the delivery log keeps only the newest entries,
// pages newest first, and refuses a cursor it did not make.
func TestWebhookDeliveryLogPaging(t *testing.T) {
	b := openBook(t)
	rc := newReceiver(t, nil)
	o := b.opts()
	o.DeliveriesMax = 5
	m := openManager(t, o)
	ep, err := m.Create(t.Context(), webhook.Spec{URL: rc.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	first := b.account(t, "treasury", true)
	for i := 0; i < 7; i++ {
		b.account(t, "u"+string(rune('a'+i)), false)
	}
	want := journalEvents(t, b, first, nil) // 8 events, 8 attempts
	// The receiver answers before the attempt is logged: wait for the log itself.
	eventually(t, 10*time.Second, "every event delivered and logged", func() bool {
		newest, _, err := m.Deliveries(t.Context(), ep.ID, "", 1)
		return err == nil && len(newest) == 1 && newest[0].EventID == want[len(want)-1]
	})
	var ids []string
	cursor, pages := "", 0
	for {
		page, next, err := m.Deliveries(t.Context(), ep.ID, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 2 || (next != "" && len(page) != 2) {
			t.Fatalf("page of %d with next %q", len(page), next)
		}
		for _, d := range page {
			ids = append(ids, d.EventID)
			if d.Outcome != webhook.OutcomeDelivered || d.Attempt != 1 || d.Status != 200 || d.Time == 0 {
				t.Errorf("entry %+v", d)
			}
		}
		pages++
		if next == "" {
			break
		}
		cursor = next
	}
	newestFirst := slices.Clone(want[len(want)-5:])
	slices.Reverse(newestFirst)
	if !slices.Equal(ids, newestFirst) || pages != 3 {
		t.Errorf("log %v in %d pages, want the newest 5 %v in 3", ids, pages, newestFirst)
	}
	kvs, err := b.store.ScanMeta(t.Context(), webhook.NS, "d/"+ep.ID+"/", "", false, 100)
	if err != nil || len(kvs) != 5 {
		t.Errorf("%d log keys stored, want 5 (%v)", len(kvs), err)
	}
	for _, bad := range []string{"zz", "00000000000000001", "000000000000000G"} {
		if _, _, err := m.Deliveries(t.Context(), ep.ID, bad, 2); ledger.CodeOf(err) != ledger.CodeInvalidRequest {
			t.Errorf("cursor %q: %v, want invalid_request", bad, err)
		}
	}
	if _, _, err := m.Deliveries(t.Context(), "wh_0123456789abcdef", "", 2); ledger.CodeOf(err) != ledger.CodeWebhookNotFound {
		t.Errorf("log of an unknown endpoint: %v", err)
	}
	if _, _, err := m.DeadLetters(t.Context(), "nope", "", 2); ledger.CodeOf(err) != ledger.CodeWebhookNotFound {
		t.Errorf("dead letters of an unknown endpoint: %v", err)
	}
}

// TestWebhookList pages the endpoints in id order.
func TestWebhookList(t *testing.T) {
	b := openBook(t)
	m := openManager(t, b.opts())
	var ids []string
	for i := 0; i < 5; i++ {
		ep, err := m.Create(t.Context(), webhook.Spec{URL: "http://127.0.0.1:9/" + string(rune('a'+i))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ep.ID)
	}
	slices.Sort(ids)
	var got []string
	cursor := ""
	for {
		eps, next, err := m.List(t.Context(), cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, ep := range eps {
			if ep.Secret != "" {
				t.Errorf("List shows the secret of %s", ep.ID)
			}
			got = append(got, ep.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if !slices.Equal(got, ids) {
		t.Errorf("listed %v, want %v", got, ids)
	}
	if _, _, err := m.List(t.Context(), "wh_zz", 2); ledger.CodeOf(err) != ledger.CodeInvalidRequest {
		t.Errorf("bad cursor: %v", err)
	}
}

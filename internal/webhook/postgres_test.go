package webhook_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/pgtest"
	"github.com/tpwallet/tpwallet/internal/webhook"
)

// TestWebhookOnPostgres runs endpoints on the PostgreSQL store, whose Meta is a table
// (key order, reverse scans, deletes): delivery in order past a dead letter, the bounded
// log paged newest first, the endpoint list, delete leaving nothing, and a restart.
func TestWebhookOnPostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	b := openBookPG(t, dsn)
	first := b.account(t, "treasury", true)
	b.account(t, "alice", false)
	victim := events.FormatID(b.pay(t, "treasury", "alice", 1), 0)
	b.pay(t, "treasury", "alice", 2)
	b.pay(t, "treasury", "alice", 3)
	rc := newReceiver(t, func(r *http.Request, _ int) int {
		if r.Header.Get("webhook-id") == victim {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	o := b.opts()
	o.RetryFor, o.DeliveriesMax = 50*time.Millisecond, 3
	m := openManager(t, o)
	ep, err := m.Create(t.Context(), webhook.Spec{URL: rc.srv.URL + "/a"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := m.Create(t.Context(), webhook.Spec{URL: "http://127.0.0.1:9/", EventTypes: []string{events.AssetCreated}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Replay(t.Context(), ep.ID, first); err != nil {
		t.Fatal(err)
	}
	want := slices.DeleteFunc(journalEvents(t, b, first, nil), func(id string) bool { return id == victim })
	eventually(t, 10*time.Second, "the last event delivered and logged", func() bool {
		log, _, err := m.Deliveries(t.Context(), ep.ID, "", 1)
		return err == nil && len(log) == 1 && log[0].EventID == want[len(want)-1] && log[0].Outcome == webhook.OutcomeDelivered
	})
	if got := rc.delivered(); !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	var log []string
	for cursor := ""; ; {
		page, next, err := m.Deliveries(t.Context(), ep.ID, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page {
			log = append(log, d.EventID+" "+d.Outcome)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	// The newest 3 attempts: the two events after the victim, and its last attempt.
	newest := []string{want[len(want)-1] + " delivered", want[len(want)-2] + " delivered", victim + " dead_lettered"}
	if !slices.Equal(log, newest) {
		t.Errorf("log %v, want the newest 3 attempts %v", log, newest)
	}
	dls, _, err := m.DeadLetters(t.Context(), ep.ID, "", 10)
	if err != nil || len(dls) != 1 || dls[0].EventID != victim || dls[0].LastStatus != http.StatusBadGateway {
		t.Errorf("dead letters %+v, %v", dls, err)
	}
	var listed []string
	for cursor := ""; ; {
		eps, next, err := m.List(t.Context(), cursor, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range eps {
			listed = append(listed, e.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	wantListed := []string{ep.ID, other.ID}
	slices.Sort(wantListed)
	if !slices.Equal(listed, wantListed) {
		t.Errorf("listed %v, want %v", listed, wantListed)
	}
	if err := m.Delete(t.Context(), ep.ID); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{webhook.NS, events.CursorNS} {
		kvs, err := b.store.ScanMeta(t.Context(), ns, "", "", false, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range kvs {
			if strings.Contains(kv.Key, ep.ID) {
				t.Errorf("left in the store: %s %s", ns, kv.Key)
			}
		}
	}
	m.Close()
	b.close()
	b2 := openBookPG(t, dsn)
	m2 := openManager(t, b2.opts())
	eps, _, err := m2.List(t.Context(), "", 10)
	if err != nil || len(eps) != 1 || eps[0].ID != other.ID || b2.set.Get("webhook:"+other.ID) == nil {
		t.Errorf("after a restart: %+v, %v; want only %s, running", eps, err, other.ID)
	}
}

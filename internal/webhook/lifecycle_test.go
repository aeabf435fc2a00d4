package webhook_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/webhook"
)

// TestWebhookHTTPFailures checks the edges of one attempt: a redirect is a failure and is
// not followed, a slow receiver times out, and an endless 2xx body is read only so far.
func TestWebhookHTTPFailures(t *testing.T) {
	b := openBook(t)
	var okHits atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusFound)
	})
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { okHits.Add(1) })
	done := make(chan struct{}) // closed before the server: no handler outlives the test
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // the server notices a client hanging up only past the body
		select {
		case <-r.Context().Done():
		case <-done:
		}
	})
	mux.HandleFunc("/endless", func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 32<<10)
		for i := 0; i < 100<<5; i++ { // up to 100 MiB, until the client hangs up
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(done) })
	o := b.opts()
	o.Timeout = 300 * time.Millisecond
	m := openManager(t, o)
	eps := map[string]string{}
	for _, path := range []string{"/redirect", "/slow", "/endless"} {
		ep, err := m.Create(t.Context(), webhook.Spec{URL: srv.URL + path})
		if err != nil {
			t.Fatal(err)
		}
		eps[path] = ep.ID
	}
	b.account(t, "alice", false)
	last := func(path string) (webhook.Delivery, bool) {
		log, _, err := m.Deliveries(t.Context(), eps[path], "", 1000)
		if err != nil || len(log) == 0 {
			return webhook.Delivery{}, false
		}
		return log[len(log)-1], true // the first attempt
	}
	eventually(t, 10*time.Second, "a first attempt at each endpoint", func() bool {
		_, a := last("/redirect")
		_, b := last("/slow")
		_, c := last("/endless")
		return a && b && c
	})
	if d, _ := last("/redirect"); d.Status != http.StatusFound || d.Outcome != webhook.OutcomeRetrying ||
		d.Error != "HTTP 302: redirects are not followed" {
		t.Errorf("redirect: %+v", d)
	}
	if d, _ := last("/slow"); d.Status != 0 || d.Outcome != webhook.OutcomeRetrying || d.Error != "no answer within 300ms" ||
		d.DurationMs < 300 {
		t.Errorf("slow: %+v", d)
	}
	if d, _ := last("/endless"); d.Status != 200 || d.Outcome != webhook.OutcomeDelivered || d.DurationMs >= 300 {
		t.Errorf("endless body: %+v, want delivered well before the timeout", d)
	}
	if n := okHits.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
}

// TestWebhookDelete deletes an endpoint while an attempt hangs: the attempt is cut off,
// nothing more goes to it, nothing of it is left in the store, and a restart does not
// bring it back.
func TestWebhookDelete(t *testing.T) {
	b := openBook(t)
	var hung atomic.Int64
	cut := make(chan struct{}, 1)
	rc := newReceiver(t, func(r *http.Request, _ int) int {
		if r.URL.Path == "/doomed" {
			hung.Add(1)
			<-r.Context().Done() // until the attempt is cut off
			cut <- struct{}{}
			return 0
		}
		return http.StatusOK
	})
	m := openManager(t, b.opts())
	doomed, err := m.Create(t.Context(), webhook.Spec{URL: rc.srv.URL + "/doomed"})
	if err != nil {
		t.Fatal(err)
	}
	b.account(t, "alice", false)
	eventually(t, 10*time.Second, "an attempt in flight", func() bool { return hung.Load() == 1 })
	if err := m.Delete(t.Context(), doomed.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cut:
	case <-time.After(10 * time.Second):
		t.Fatal("the attempt in flight was not cut off by Delete")
	}
	if _, err := m.Get(t.Context(), doomed.ID); ledger.CodeOf(err) != ledger.CodeWebhookNotFound {
		t.Errorf("Get after Delete: %v", err)
	}
	if err := m.Delete(t.Context(), doomed.ID); ledger.CodeOf(err) != ledger.CodeWebhookNotFound {
		t.Errorf("second Delete: %v", err)
	}
	// Another endpoint on the same receiver sees the next event; the deleted one does not.
	other, err := m.Create(t.Context(), webhook.Spec{URL: rc.srv.URL + "/other"})
	if err != nil {
		t.Fatal(err)
	}
	seq := b.account(t, "bob", false)
	eventually(t, 10*time.Second, "the other endpoint's delivery", func() bool {
		return slices.Contains(rc.delivered(), events.FormatID(seq, 0))
	})
	if n := hung.Load(); n != 1 {
		t.Errorf("the deleted endpoint got %d requests, want the 1 cut off", n)
	}
	for _, p := range []struct{ ns, prefix string }{{webhook.NS, ""}, {events.CursorNS, "webhook:"}} {
		kvs, err := b.store.ScanMeta(t.Context(), p.ns, p.prefix, "", false, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range kvs {
			if strings.Contains(kv.Key, doomed.ID) {
				t.Errorf("left in the store: %s %s", p.ns, kv.Key)
			}
		}
	}
	m.Close()
	b.close()
	b2 := openBookAt(t, b.dir)
	m2 := openManager(t, b2.opts())
	eps, _, err := m2.List(t.Context(), "", 10)
	if err != nil || len(eps) != 1 || eps[0].ID != other.ID {
		t.Errorf("after a restart: %+v, %v; want only %s", eps, err, other.ID)
	}
	if b2.set.Get("webhook:"+doomed.ID) != nil || b2.set.Get("webhook:"+other.ID) == nil {
		t.Error("after a restart the followers are not those of the stored endpoints")
	}
}

// TestWebhookStateSurvivesRestart restarts a manager while an event is being retried:
// the attempt numbers and the event's retry window go on where they were.
func TestWebhookStateSurvivesRestart(t *testing.T) {
	b := openBook(t)
	var up atomic.Bool
	rc := newReceiver(t, func(*http.Request, int) int {
		if up.Load() {
			return http.StatusOK
		}
		return http.StatusInternalServerError
	})
	m := openManager(t, b.opts())
	ep, err := m.Create(t.Context(), webhook.Spec{URL: rc.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	seq := b.account(t, "alice", false)
	var before webhook.Status
	eventually(t, 10*time.Second, "three failed attempts", func() bool {
		before, err = m.Status(t.Context(), ep.ID, seq)
		return err == nil && before.Attempts >= 3
	})
	m.Close() // an attempt in flight is cut off: it has no outcome and is not logged
	b.close()
	up.Store(true)
	b2 := openBookAt(t, b.dir)
	// What the store holds, read by a manager whose followers do not run (a standby's).
	o := b2.opts()
	o.Set = events.NewSet(b2.hub)
	idle := openManager(t, o)
	logged, _, err := idle.Deliveries(t.Context(), ep.ID, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	failed := len(logged)
	st, err := idle.Status(t.Context(), ep.ID, seq)
	if err != nil || failed < 3 || st.RetryingEvent != events.FormatID(seq, 0) || st.Attempts != failed ||
		st.ConsecutiveFailures != failed || st.NextAttemptAt == 0 {
		t.Errorf("stored status %+v (%v), want %d attempts at %d-0", st, err, failed, seq)
	}
	idle.Close()
	m2 := openManager(t, b2.opts())
	var log []webhook.Delivery
	eventually(t, 10*time.Second, "the delivery logged", func() bool {
		log, _, err = m2.Deliveries(t.Context(), ep.ID, "", 100)
		return err == nil && len(log) > 0 && log[0].Outcome == webhook.OutcomeDelivered
	})
	if len(log) != failed+1 || log[0].Attempt != failed+1 || log[0].Outcome != webhook.OutcomeDelivered {
		t.Errorf("log after the restart: %+v; want attempt %d delivered on top of %d", log, failed+1, failed)
	}
	if log[0].Time < st.NextAttemptAt {
		t.Errorf("the first attempt after the restart came %v before its scheduled time",
			time.Duration(st.NextAttemptAt-log[0].Time))
	}
}

// TestWebhookSync runs two managers on one store, as two instances of a PostgreSQL group
// would: what one registers or deletes, the other picks up.
func TestWebhookSync(t *testing.T) {
	b := openBook(t)
	m1 := openManager(t, b.opts())
	standby := events.NewSet(b.hub) // not started: a standby runs no follower
	o := b.opts()
	o.Set = standby
	m2 := openManager(t, o)
	ep, err := m1.Create(t.Context(), webhook.Spec{URL: "http://127.0.0.1:9/"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the other instance to pick up the endpoint", func() bool {
		return standby.Get("webhook:"+ep.ID) != nil
	})
	st, err := m2.Status(t.Context(), ep.ID, b.eng.HeadSeq())
	if err != nil || st.Running || st.Position.Seq != b.eng.HeadSeq()+1 {
		t.Errorf("status on the standby %+v, %v", st, err)
	}
	if err := m1.Delete(t.Context(), ep.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the other instance to drop the endpoint", func() bool {
		return standby.Get("webhook:"+ep.ID) == nil
	})
}

func TestWebhookOptions(t *testing.T) {
	b := openBook(t)
	for _, bad := range []func(o *webhook.Options){
		func(o *webhook.Options) { o.Meta = nil },
		func(o *webhook.Options) { o.Set = nil },
		func(o *webhook.Options) { o.Timeout = -time.Second },
		func(o *webhook.Options) { o.MaxBackoff = o.MinBackoff / 2 },
		func(o *webhook.Options) { o.BreakerAfter = -1 },
		func(o *webhook.Options) { o.DeliveriesMax = -1 },
	} {
		o := b.opts()
		bad(&o)
		if _, err := webhook.Open(t.Context(), o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
	o := webhook.Options{Meta: b.store, Source: b.store, Set: b.set}
	o.EnsureDefaults()
	if o.Timeout != 10*time.Second || o.RetryFor != 24*time.Hour || o.MinBackoff != 5*time.Second ||
		o.MaxBackoff != time.Hour || o.BreakerAfter != 5 || o.DeliveriesMax != 1000 || o.Validate() != nil {
		t.Errorf("defaults %+v", o)
	}
}

package kafkabus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/httpapi"
	"github.com/tpwallet/tpwallet/internal/kafkabus"
	"github.com/tpwallet/tpwallet/internal/service"
	"github.com/tpwallet/tpwallet/internal/store/pebblestore"
)

// adminSecret is the admin key of every test ledger.
const adminSecret = "tpw_test-admin-key-0123456789abcdef"

// testLedger is the real stack as serve wires it: Pebble store → engine (feeding the
// events hub) → service → httpapi, called in process.
type testLedger struct {
	st  *pebblestore.Store
	eng *engine.Engine
	api *httpapi.Server
	hub *events.Hub
}

func openLedger(t *testing.T) *testLedger {
	t.Helper()
	ctx := t.Context()
	st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatalf("pebblestore.Open: %v", err)
	}
	hub := events.NewHub()
	eng, err := engine.Open(ctx, st, engine.Options{Observer: hub})
	if err != nil {
		st.Close()
		t.Fatalf("engine.Open: %v", err)
	}
	t.Cleanup(func() { eng.Close() }) // closes the store too
	hub.Committed(eng.HeadSeq())
	svc, err := service.New(ctx, eng, st, service.Options{})
	if err != nil {
		t.Fatalf("service.New: %v", err)
	}
	if _, err := svc.EnsureAdminKey(ctx, adminSecret); err != nil {
		t.Fatalf("EnsureAdminKey: %v", err)
	}
	return &testLedger{st: st, eng: eng, api: httpapi.New(svc, httpapi.Options{}), hub: hub}
}

// call runs one REST request in process and decodes the answer into out (when not nil).
func (l *testLedger) call(t *testing.T, method, path string, body, out any) int {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+adminSecret)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	l.api.ServeHTTP(rec, req)
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, rec.Body, err)
		}
	}
	return rec.Code
}

func (l *testLedger) mustCall(t *testing.T, method, path string, body, out any, want int) {
	t.Helper()
	if got := l.call(t, method, path, body, out); got != want {
		t.Fatalf("%s %s: got status %d, want %d", method, path, got, want)
	}
}

// fundUsers opens treasury (may go negative) and u0..u(n-1), each funded with 1,000,000.
func (l *testLedger) fundUsers(t *testing.T, n int) {
	t.Helper()
	l.mustCall(t, "POST", "/v1/accounts", map[string]any{"id": "treasury", "asset": "USD",
		"kind": "system", "allow_negative": true}, nil, 201)
	for i := range n {
		id := "u" + strconv.Itoa(i)
		l.mustCall(t, "POST", "/v1/accounts", map[string]any{"id": id, "asset": "USD"}, nil, 201)
		l.mustCall(t, "POST", "/v1/transfers", map[string]any{"source": "treasury",
			"destination": id, "amount": "1000000"}, nil, 201)
	}
}

// transfers makes n transfers between the users, from goroutines so that the engine
// batches them (several changes to a journal record).
func (l *testLedger) transfers(t *testing.T, users, n, from int) {
	t.Helper()
	const workers = 8
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := from + w; i < from+n; i += workers {
				src, dst := i%users, (i*7+1)%users
				if src == dst {
					dst = (dst + 1) % users
				}
				code := l.call(t, "POST", "/v1/transfers", map[string]any{"source": "u" + strconv.Itoa(src),
					"destination": "u" + strconv.Itoa(dst), "amount": strconv.Itoa(i%50 + 1)}, nil)
				if code != 201 {
					errs <- fmt.Errorf("transfer %d: status %d", i, code)
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// journalEvents returns every event of the journal, in journal order.
func (l *testLedger) journalEvents(t *testing.T) []events.Event {
	t.Helper()
	var out []events.Event
	for after := uint64(0); ; {
		recs, err := l.st.Journal(t.Context(), after, 256)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return out
		}
		for _, r := range recs {
			out = events.Of(out, r, 0)
			after = r.Seq
		}
	}
}

// newCluster starts an in-process Kafka (kfake) with one broker and topics of 4 partitions.
func newCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(4)}, opts...)...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func config(c *kfake.Cluster) kafkabus.Config {
	return kafkabus.Fast(kafkabus.Config{Brokers: c.ListenAddrs()})
}

// follow runs a follower of l delivering to sink; stop ends it and waits.
func follow(t *testing.T, l *testLedger, sink events.Sink) (f *events.Follower, stop func()) {
	t.Helper()
	f = &events.Follower{Name: kafkabus.FollowerName, Source: l.st, Meta: l.st, Hub: l.hub, Sink: sink,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return f, stop
}

// waitFor polls cond until it holds, failing t after d. what names the condition.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond) // polling an observable condition with a deadline
	}
}

// caughtUp reports whether f has delivered everything up to the engine's head.
func caughtUp(l *testLedger, f *events.Follower) func() bool {
	return func() bool {
		head := l.eng.HeadSeq()
		return f.Status(head).Position.Seq > head
	}
}

// consume reads topic from the start until done says it has enough, failing t after d.
func consume(t *testing.T, c *kfake.Cluster, topic string, d time.Duration, done func([]*kgo.Record) bool) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	var out []*kgo.Record
	for !done(out) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume %s: %d records after %s, not yet enough", topic, len(out), d)
		}
		for _, e := range fs.Errors() {
			t.Logf("consume %s: %v", topic, e.Err)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// header returns the value of the first header named key, and whether there is one.
func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// checkEvents checks records of the events topic against the journal: every event is
// there at least once with its key, headers and CloudEvent; copies (same ce_id) are
// byte-identical; each key stays in one partition; and within a partition the first copy
// of each event comes in journal order per key. It returns how many copies it saw.
func checkEvents(t *testing.T, want []events.Event, recs []*kgo.Record) (dups int) {
	t.Helper()
	byID := make(map[string]*events.Event, len(want))
	for i := range want {
		byID[want[i].ID()] = &want[i]
	}
	seen := map[string][]byte{}
	keyPart := map[string]int32{}
	last := map[string]events.Position{} // per key: the last event seen first
	for _, r := range recs {
		id, _ := header(r, "ce_id")
		e := byID[id]
		if e == nil {
			t.Fatalf("record %s/%d@%d: ce_id %q is no journal event", r.Topic, r.Partition, r.Offset, id)
		}
		if v, ok := seen[id]; ok {
			if !bytes.Equal(v, r.Value) {
				t.Errorf("event %s: copies differ:\n%s\n%s", id, v, r.Value)
			}
			dups++
			continue
		}
		seen[id] = r.Value
		if string(r.Key) != e.Key() {
			t.Errorf("event %s: key %q, want %q", id, r.Key, e.Key())
		}
		if p, ok := keyPart[e.Key()]; ok && p != r.Partition {
			t.Errorf("key %q in partitions %d and %d", e.Key(), p, r.Partition)
		}
		keyPart[e.Key()] = r.Partition
		for k, v := range map[string]string{"ce_type": e.Type, "ce_specversion": "1.0",
			"content-type": kafkabus.ContentType} {
			if got, _ := header(r, k); got != v {
				t.Errorf("event %s: header %s = %q, want %q", id, k, got, v)
			}
		}
		if wantJSON := events.AppendJSON(nil, e, events.DefaultSource); !bytes.Equal(r.Value, wantJSON) {
			t.Errorf("event %s: value\n%s\nwant\n%s", id, r.Value, wantJSON)
		}
		pos := events.Position{Seq: e.Seq, Index: e.Index}
		if prev, ok := last[e.Key()]; ok && !prev.Less(pos) {
			t.Errorf("key %q: event %s after %s", e.Key(), id, events.FormatID(prev.Seq, prev.Index))
		}
		last[e.Key()] = pos
	}
	for id := range byID {
		if _, ok := seen[id]; !ok {
			t.Errorf("event %s never delivered", id)
		}
	}
	return dups
}

// distinct counts the distinct ce_ids of recs.
func distinct(recs []*kgo.Record) int {
	ids := map[string]bool{}
	for _, r := range recs {
		id, _ := header(r, "ce_id")
		ids[id] = true
	}
	return len(ids)
}

package natsbus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/natsbus"
)

// workload makes events of every kind: accounts, posted transfers, holds posted in part
// and in full, increased and voided, a freeze and an unfreeze, an asset; and, with expire,
// a hold that expires (a second's wait).
func workload(t *testing.T, l *ledger, users, transfers int, expire bool) {
	t.Helper()
	l.accounts(t, users)
	l.mustDo(t, "POST", "/v1/assets", map[string]any{"code": "TPWT", "scale": 2}, 201)
	for i := range transfers {
		src, dst := "u"+itoa(i%users), "u"+itoa((i*7+1)%users)
		if src == dst {
			dst = "treasury"
		}
		l.mustDo(t, "POST", "/v1/transfers", map[string]any{"source": src, "destination": dst, "amount": itoa(i%50 + 1)}, 201)
	}
	l.mustDo(t, "POST", "/v1/transfers", map[string]any{"id": "h1", "source": "u1", "destination": "u2",
		"amount": "100", "hold": map[string]any{"timeout_seconds": 0}}, 201)
	l.mustDo(t, "POST", "/v1/transfers/h1/increase", map[string]any{"amount": "20"}, 200)
	l.mustDo(t, "POST", "/v1/transfers/h1/post", map[string]any{"amount": "30", "final": false}, 200)
	l.mustDo(t, "POST", "/v1/transfers/h1/post", nil, 200)
	l.mustDo(t, "POST", "/v1/transfers", map[string]any{"id": "h2", "source": "u2", "destination": "u3",
		"amount": "5", "hold": map[string]any{"timeout_seconds": 0}}, 201)
	l.mustDo(t, "POST", "/v1/transfers/h2/void", nil, 200)
	l.mustDo(t, "POST", "/v1/accounts/u4/freeze", nil, 200)
	l.mustDo(t, "POST", "/v1/accounts/u4/unfreeze", nil, 200)
	if !expire {
		return
	}
	l.mustDo(t, "POST", "/v1/transfers", map[string]any{"id": "h3", "source": "u3", "destination": "u4",
		"amount": "5", "hold": map[string]any{"timeout_seconds": 1}}, 201)
	waitFor(t, "hold h3 to expire", func() bool {
		return bytes.Contains(l.mustDo(t, "GET", "/v1/transfers/h3", nil, 200), []byte(`"status":"expired"`))
	})
}

// checkMessage checks one stream message against the journal event it must carry.
func checkMessage(t *testing.T, prefix string, m jetstream.Msg, e *events.Event) {
	t.Helper()
	id := e.ID()
	if want := prefix + "." + e.Type; m.Subject() != want {
		t.Fatalf("event %s: subject %q, want %q", id, m.Subject(), want)
	}
	h := m.Headers()
	for k, want := range map[string]string{"Nats-Msg-Id": id, "Ce-Id": id, "Ce-Type": e.Type,
		"Content-Type": "application/cloudevents+json"} {
		if got := h.Get(k); got != want {
			t.Fatalf("event %s: header %s = %q, want %q", id, k, got, want)
		}
	}
	if want := events.AppendJSON(nil, e, events.DefaultSource); !bytes.Equal(m.Data(), want) {
		t.Fatalf("event %s: payload\n%s\nwant\n%s", id, m.Data(), want)
	}
	var ce struct {
		SpecVersion  string `json:"specversion"`
		ID           string `json:"id"`
		PartitionKey string `json:"partitionkey"`
	}
	if err := json.Unmarshal(m.Data(), &ce); err != nil || ce.SpecVersion != "1.0" || ce.ID != id || ce.PartitionKey != e.Key() {
		t.Fatalf("event %s: CloudEvent %+v (err %v), want specversion 1.0, its id and key %q", id, ce, err, e.Key())
	}
}

// bigBatch is an atomic batch request of n transfers among users u0..u(users-1).
func bigBatch(users, n int) map[string]any {
	ts := make([]map[string]any, n)
	for i := range ts {
		ts[i] = map[string]any{"source": "u" + itoa(i%users), "destination": "u" + itoa((i+1)%users), "amount": "1"}
	}
	return map[string]any{"atomic": true, "transfers": ts}
}

// TestNatsPublisherFollowsJournal runs the "nats" follower of a real ledger into JetStream while
// transfers go on, some in records ten times its batch: the stream ends up with exactly the
// journal's events, in journal order, each with its subject, headers and CloudEvent
// payload, and the follower reports no lag.
func TestNatsPublisherFollowsJournal(t *testing.T) {
	nc, js := connect(t)
	prefix, stream := names(t, js)
	l := openLedger(t)
	workload(t, l, 10, 50, true)
	pub, err := natsbus.NewPublisher(nc, natsbus.PublisherOptions{Stream: stream, SubjectPrefix: prefix, Head: l.hub.Head})
	if err != nil {
		t.Fatal(err)
	}
	f := l.follow(t, pub, 100) // batches smaller than the large records below
	for i := range 200 {       // while the follower runs
		l.mustDo(t, "POST", "/v1/transfers", map[string]any{"source": "u" + itoa(i%10),
			"destination": "u" + itoa((i+3)%10), "amount": "1"}, 201)
		if i%50 == 0 { // a record of 1,000 changes, delivered in parts
			l.mustDo(t, "POST", "/v1/transfers/batch", bigBatch(10, 1000), 201)
		}
	}
	want := l.journal(t)
	msgs := streamMsgs(t, js, stream, len(want))
	if len(msgs) != len(want) {
		t.Fatalf("stream holds %d messages, want the journal's %d events", len(msgs), len(want))
	}
	types := map[string]bool{}
	for i := range want {
		checkMessage(t, prefix, msgs[i], &want[i])
		types[want[i].Type] = true
	}
	if len(types) != len(events.Types) {
		t.Errorf("the workload made %d event types, want all %d: %v", len(types), len(events.Types), types)
	}
	head := l.eng.HeadSeq()
	waitFor(t, "the follower to catch up", func() bool { return f.Status(head).LagRecords == 0 })
	if st := f.Status(head); st.Delivered != uint64(len(want)) || st.Position != (events.Position{Seq: head + 1}) {
		t.Fatalf("follower status %+v, want %d delivered and position %d-0", st, len(want), head+1)
	}
}

// TestNatsPublisherDropsDuplicates replays the whole journal into a stream that has it already
// (as a restart from an older cursor would): JetStream drops every copy by Nats-Msg-Id.
func TestNatsPublisherDropsDuplicates(t *testing.T) {
	nc, js := connect(t)
	prefix, stream := names(t, js)
	l := openLedger(t)
	workload(t, l, 5, 20, false)
	want := l.journal(t)
	pub, err := natsbus.NewPublisher(nc, natsbus.PublisherOptions{Stream: stream, SubjectPrefix: prefix, Head: l.hub.Head})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for round := range 2 { // the second round is all duplicates
		if n, err := pub.Deliver(ctx, want); n != len(want) || err != nil {
			t.Fatalf("round %d: Deliver = %d, %v; want %d, nil", round, n, err, len(want))
		}
	}
	f := l.follow(t, pub, 0) // from Start: a third copy of everything
	waitFor(t, "the follower to deliver the journal", func() bool { return f.Status(0).Delivered == uint64(len(want)) })
	if err := f.Seek(ctx, events.Start); err != nil { // and a fourth
		t.Fatal(err)
	}
	waitFor(t, "the replay", func() bool { return f.Status(0).Delivered == 2*uint64(len(want)) })
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(want)) {
		t.Fatalf("stream holds %d messages after four copies of %d events, want %d", info.State.Msgs, len(want), len(want))
	}
	msgs := streamMsgs(t, js, stream, len(want))
	for i := range want {
		checkMessage(t, prefix, msgs[i], &want[i])
	}
}

// TestNatsPublisherStream checks the stream the publisher makes, and that it refuses an
// existing stream that does not take its subjects, or subjects another stream has.
func TestNatsPublisherStream(t *testing.T) {
	nc, js := connect(t)
	prefix, stream := names(t, js)
	ctx := context.Background()
	ensure := func(name string) error {
		pub, err := natsbus.NewPublisher(nc, natsbus.PublisherOptions{Stream: name, SubjectPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return pub.Ensure(ctx)
	}

	if err := ensure(stream + "_NEW"); err != nil {
		t.Fatalf("a new stream: %v", err)
	}
	s, err := js.Stream(ctx, stream+"_NEW")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	wantSubjects := []string{prefix + ".transfer.>", prefix + ".account.>", prefix + ".asset.>"}
	if strings.Join(cfg.Subjects, " ") != strings.Join(wantSubjects, " ") || cfg.Storage != jetstream.FileStorage ||
		cfg.Duplicates != natsbus.DefaultDuplicates {
		t.Fatalf("stream made with %v, %v, duplicates %v; want %v, file storage, %v",
			cfg.Subjects, cfg.Storage, cfg.Duplicates, wantSubjects, natsbus.DefaultDuplicates)
	}
	if err := ensure(stream + "_NEW"); err != nil { // it exists now: checked, not made
		t.Fatalf("the same stream again: %v", err)
	}
	if err := js.DeleteStream(ctx, stream+"_NEW"); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name     string
		subjects []string
		ok       bool
	}{
		{"_WIDE", []string{prefix + ".>"}, true},
		{"_EXACT", []string{prefix + ".asset.>", prefix + ".account.>", prefix + ".transfer.>", prefix + ".other"}, true},
		{"_STAR", []string{prefix + ".*.>"}, true},
		{"_SHALLOW", []string{prefix + ".transfer.*", prefix + ".account.>", prefix + ".asset.>"}, false},
		{"_NOASSET", []string{prefix + ".transfer.>", prefix + ".account.>"}, false},
		{"_ELSEWHERE", []string{prefix + "x.>"}, false},
	} {
		name := stream + c.name
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: c.subjects, Storage: jetstream.MemoryStorage}); err != nil {
			t.Fatal(err)
		}
		err := ensure(name)
		if c.ok != (err == nil) || !c.ok && !errors.Is(err, natsbus.ErrStreamConflict) {
			t.Errorf("existing stream with %v: Ensure = %v, want ok %v (or ErrStreamConflict)", c.subjects, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), name) {
			t.Errorf("the error %q does not name the stream %s", err, name)
		}
		if err := js.DeleteStream(ctx, name); err != nil { // its subjects would overlap the next
			t.Fatal(err)
		}
	}
	// A new stream over prefix.transfer.> would overlap one that has prefix.transfer.*.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream + "_OTHER",
		Subjects: []string{prefix + ".transfer.*"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	err = ensure(stream + "_OVERLAP")
	if !errors.Is(err, natsbus.ErrStreamConflict) {
		t.Fatalf("a new stream whose subjects another stream has: %v, want ErrStreamConflict", err)
	}
}

// TestNatsPublisherPartialBatch has the stream refuse one event of a batch (too large for it):
// Deliver counts the events before it as delivered and reports it, never more.
func TestNatsPublisherPartialBatch(t *testing.T) {
	nc, js := connect(t)
	prefix, stream := names(t, js)
	ctx := context.Background()
	pub, err := natsbus.NewPublisher(nc, natsbus.PublisherOptions{Stream: stream, SubjectPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{prefix + ".>"},
		MaxMsgSize: 4096, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	l := openLedger(t)
	l.accounts(t, 3)
	big := map[string]string{}
	for i := range 10 {
		big["k"+itoa(i)] = strings.Repeat("v", 500)
	}
	l.mustDo(t, "POST", "/v1/transfers", map[string]any{"source": "u0", "destination": "u1", "amount": "1", "metadata": big}, 201)
	l.mustDo(t, "POST", "/v1/transfers", map[string]any{"source": "u1", "destination": "u2", "amount": "1"}, 201)
	evs := l.journal(t)
	at := len(evs) - 2 // the large one
	if len(events.AppendJSON(nil, &evs[at], events.DefaultSource)) <= 4096 {
		t.Fatal("the large event is not larger than the stream's limit")
	}
	n, err := pub.Deliver(ctx, evs)
	if n != at || err == nil || !strings.Contains(err.Error(), evs[at].ID()) {
		t.Fatalf("Deliver = %d, %v; want %d and an error naming %s", n, err, at, evs[at].ID())
	}
	if n, err := pub.Deliver(ctx, evs[:at]); n != at || err != nil {
		t.Fatalf("Deliver of the events before it = %d, %v; want %d, nil", n, err, at)
	}
}

// TestNatsPublisherStreamDeleted deletes the stream under a running follower: the publisher
// makes it again and the events after the follower's cursor arrive, in order.
func TestNatsPublisherStreamDeleted(t *testing.T) {
	nc, js := connect(t)
	prefix, stream := names(t, js)
	ctx := context.Background()
	l := openLedger(t)
	l.accounts(t, 4)
	pub, err := natsbus.NewPublisher(nc, natsbus.PublisherOptions{Stream: stream, SubjectPrefix: prefix, Head: l.hub.Head})
	if err != nil {
		t.Fatal(err)
	}
	f := l.follow(t, pub, 0)
	before := len(l.journal(t))
	waitFor(t, "the first events", func() bool { return f.Status(0).Delivered == uint64(before) })
	if err := js.DeleteStream(ctx, stream); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		l.mustDo(t, "POST", "/v1/transfers", map[string]any{"source": "u" + itoa(i%4), "destination": "u" + itoa((i+1)%4), "amount": "2"}, 201)
	}
	all := l.journal(t)
	msgs := streamMsgs(t, js, stream, len(all)-before)
	if len(msgs) != len(all)-before {
		t.Fatalf("the new stream holds %d messages, want the %d events after the deletion", len(msgs), len(all)-before)
	}
	for i, m := range msgs {
		checkMessage(t, prefix, m, &all[before+i])
	}
	if st := f.Status(0); st.Errors == 0 {
		t.Errorf("follower status %+v: want the failed delivery counted", st)
	}
}

// TestNatsConnectKeepsSecrets connects with credentials in the URL (the test server takes any):
// neither the log nor an error shows them.
func TestNatsConnectKeepsSecrets(t *testing.T) {
	log := new(lockedBuffer)
	logger := slog.New(slog.NewTextHandler(log, nil))
	u := strings.Replace(natsURL(), "nats://", "nats://tpwuser:hunter2secret@", 1)
	nc, err := natsbus.Connect(u, "tpwallet-test", logger)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	waitFor(t, "the connection logged", func() bool { return strings.Contains(log.String(), "nats connected") })
	_, err = natsbus.Connect("nats://tpwuser:hunter2secret@127.0.0.1:notaport", "tpwallet-test", logger)
	if err == nil {
		t.Fatal("Connect accepted a URL with a bad port")
	}
	nc.Close()
	for _, s := range []string{log.String(), err.Error()} {
		if strings.Contains(s, "hunter2secret") {
			t.Fatalf("a secret is shown: %s", s)
		}
	}
}

// lockedBuffer is a bytes.Buffer that nats.go's callback goroutine and the test may share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestNatsPublisherLinger: after a small batch that reached the journal's head, Deliver
// pauses (so the next read gathers more); after one that did not, it returns at once.
func TestNatsPublisherLinger(t *testing.T) {
	nc, js := connect(t)
	prefix, stream := names(t, js)
	l := openLedger(t)
	l.accounts(t, 2)
	evs := l.journal(t)
	head := evs[len(evs)-1].Seq
	var reported atomic.Uint64
	pub, err := natsbus.NewPublisher(nc, natsbus.PublisherOptions{Stream: stream, SubjectPrefix: prefix,
		Linger: time.Hour, Head: reported.Load})
	if err != nil {
		t.Fatal(err)
	}
	reported.Store(head + 1) // behind: more records wait
	done := make(chan struct{})
	go func() {
		defer close(done)
		if n, err := pub.Deliver(context.Background(), evs); n != len(evs) || err != nil {
			t.Errorf("Deliver behind the head = %d, %v; want %d, nil", n, err, len(evs))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Deliver behind the head did not return: it lingered")
	}
	reported.Store(head) // caught up
	const wait = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	start := time.Now()
	if n, err := pub.Deliver(ctx, evs); n != len(evs) || err != nil {
		t.Fatalf("Deliver at the head = %d, %v; want %d, nil", n, err, len(evs))
	}
	if took := time.Since(start); took < wait {
		t.Fatalf("Deliver at the head returned after %v: it did not linger (until ctx ended at %v)", took, wait)
	}
}

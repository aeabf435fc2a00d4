package main_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsTestURL is the shared test NATS server (scripts/services.sh starts it).
func natsTestURL() string {
	if u := os.Getenv("TPWALLET_TEST_NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

// natsJS connects the test itself to url, failing (never skipping) if NATS is down.
func natsJS(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatalf("NATS at %s (scripts/services.sh starts it): %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// natsRig names what one test uses on the shared server, so that parallel runs never meet:
// a subject prefix and streams whose names start with stream, deleted at the end.
type natsRig struct {
	url    string
	js     jetstream.JetStream
	prefix string
	stream string
}

func newNatsRig(t *testing.T, url string) *natsRig {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	s := hex.EncodeToString(b[:])
	r := &natsRig{url: url, js: natsJS(t, url), prefix: "tpwtest_" + s, stream: "TPWTEST_" + strings.ToUpper(s)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var mine []string
		for name := range r.js.StreamNames(ctx).Name() {
			if strings.HasPrefix(name, r.stream) {
				mine = append(mine, name)
			}
		}
		for _, name := range mine {
			if err := r.js.DeleteStream(ctx, name); err != nil {
				t.Errorf("delete stream %s: %v", name, err)
			}
		}
	})
	return r
}

// args are serve's flags for this rig (the URL separately: a flag or the environment).
func (r *natsRig) args() []string {
	return []string{"--nats-stream", r.stream, "--nats-subject-prefix", r.prefix,
		"--nats-commands-stream", r.stream + "_COMMANDS"}
}

// natsJournalEvent is one change of GET /v1/journal: what its event must carry.
type natsJournalEvent struct {
	id   string
	pos  [2]uint64 // seq, index
	key  string    // partition key: the transfer's source, the account, the asset
	data []byte    // the change as served, compacted
}

// natsJournalEvents reads the whole journal through the API, one event per change.
func natsJournalEvents(t *testing.T, p *proc) []natsJournalEvent {
	t.Helper()
	var out []natsJournalEvent
	after := "0"
	for {
		var page struct {
			Items []struct {
				Seq     uint64            `json:"seq"`
				Changes []json.RawMessage `json:"changes"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		p.mustCall(t, "GET", "/v1/journal?limit=1000&after="+after, nil, &page, 200)
		for _, r := range page.Items {
			for i, raw := range r.Changes {
				var c struct {
					Transfer *struct{ Source string } `json:"transfer"`
					Account  *struct{ ID string }     `json:"account"`
					Asset    *struct{ Code string }   `json:"asset"`
				}
				if err := json.Unmarshal(raw, &c); err != nil {
					t.Fatal(err)
				}
				e := natsJournalEvent{id: fmt.Sprintf("%d-%d", r.Seq, i), pos: [2]uint64{r.Seq, uint64(i)}, data: natsCompact(t, raw)}
				switch {
				case c.Transfer != nil:
					e.key = c.Transfer.Source
				case c.Account != nil:
					e.key = c.Account.ID
				case c.Asset != nil:
					e.key = c.Asset.Code
				}
				out = append(out, e)
			}
		}
		if len(page.Items) == 0 || page.NextCursor == "" {
			return out
		}
		after = page.NextCursor
	}
}

func natsCompact(t *testing.T, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// natsCloudEvent is a message of the events stream, decoded.
type natsCloudEvent struct {
	ID           string          `json:"id"`
	Type         string          `json:"type"`
	Seq          uint64          `json:"journalseq"`
	Index        uint64          `json:"journalindex"`
	PartitionKey string          `json:"partitionkey"`
	Data         json.RawMessage `json:"data"`
	subject      string
	msgID        string
}

// streamEvents reads the events stream from the start until it has seen the event with id
// last (polling: the follower may still be catching up), failing after 60 s.
func (r *natsRig) streamEvents(t *testing.T, last string) []natsCloudEvent {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	var c jetstream.Consumer
	for c == nil {
		var err error
		if c, err = r.js.OrderedConsumer(ctx, r.stream, jetstream.OrderedConsumerConfig{}); err != nil {
			if time.Now().After(deadline) {
				t.Fatalf("events stream %s: %v", r.stream, err)
			}
			time.Sleep(50 * time.Millisecond) // the stream is made by serve's follower: poll for it
		}
	}
	var out []natsCloudEvent
	for {
		b, err := c.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			var e natsCloudEvent
			if err := json.Unmarshal(m.Data(), &e); err != nil {
				t.Fatalf("message %s: %v", m.Data(), err)
			}
			e.subject, e.msgID = m.Subject(), m.Headers().Get("Nats-Msg-Id")
			out = append(out, e)
			if e.ID == last {
				return out
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("event %s not in stream %s after 60 s (%d events read)", last, r.stream, len(out))
		}
	}
}

// checkDelivered compares the events stream with the journal: every change delivered (at
// least once), with its data, subject and id; per partition key in journal order once
// copies are dropped by id; and no copy at all, since JetStream drops them by Nats-Msg-Id
// within its duplicate window (two minutes, longer than the test).
func (r *natsRig) checkDelivered(t *testing.T, p *proc) int {
	t.Helper()
	journal := natsJournalEvents(t, p)
	got := r.streamEvents(t, journal[len(journal)-1].id)
	byID := map[string]*natsJournalEvent{}
	for i := range journal {
		byID[journal[i].id] = &journal[i]
	}
	seen := map[string]bool{}
	last := map[string][2]uint64{}
	copies := 0
	for _, e := range got {
		j := byID[e.ID]
		switch {
		case j == nil:
			t.Fatalf("event %s in the stream is not in the journal", e.ID)
		case e.msgID != e.ID || e.subject != r.prefix+"."+e.Type || e.PartitionKey != j.key || e.Seq != j.pos[0] || e.Index != j.pos[1]:
			t.Fatalf("event %s: Nats-Msg-Id %q subject %q key %q position %d-%d; want the id, %s.%s, %q, %d-%d",
				e.ID, e.msgID, e.subject, e.PartitionKey, e.Seq, e.Index, r.prefix, e.Type, j.key, j.pos[0], j.pos[1])
		case !bytes.Equal(natsCompact(t, e.Data), j.data):
			t.Fatalf("event %s: data %s, want the journal's %s", e.ID, e.Data, j.data)
		}
		if seen[e.ID] {
			copies++
			continue // a consumer drops a copy by its id
		}
		seen[e.ID] = true
		if prev, ok := last[e.PartitionKey]; ok && !(prev[0] < j.pos[0] || prev[0] == j.pos[0] && prev[1] < j.pos[1]) {
			t.Fatalf("key %s: event %s after %d-%d: out of journal order", e.PartitionKey, e.ID, prev[0], prev[1])
		}
		last[e.PartitionKey] = j.pos
	}
	for _, j := range journal {
		if !seen[j.id] {
			t.Fatalf("journal event %s was never delivered", j.id)
		}
	}
	if copies > 0 {
		t.Fatalf("%d copies in the stream: JetStream should have dropped them by Nats-Msg-Id", copies)
	}
	return len(journal)
}

// natsLoad sends p2p transfers from workers until stop is closed or the server stops
// answering, recording each; acked counts the 201s.
type natsLoad struct {
	users int
	next  atomic.Int64
	acked atomic.Int64
	mu    sync.Mutex
	all   map[string]*sent
}

func (l *natsLoad) run(t *testing.T, p *proc, workers int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := l.next.Add(1)
				src, dst := int(n)%l.users, int(n*7+int64(w))%l.users
				if src == dst {
					dst = (dst + 1) % l.users
				}
				id := "n" + strconv.FormatInt(n, 10)
				body := map[string]any{"id": id, "source": "u" + strconv.Itoa(src),
					"destination": "u" + strconv.Itoa(dst), "amount": strconv.FormatInt(n%89+1, 10)}
				l.mu.Lock()
				l.all[id] = &sent{body: body}
				l.mu.Unlock()
				code, err := p.call("POST", "/v1/transfers", body, nil)
				if err != nil {
					return // the server died
				}
				if code != 201 {
					t.Errorf("transfer %s: status %d", id, code)
					return
				}
				l.mu.Lock()
				l.all[id].acked = true
				l.mu.Unlock()
				l.acked.Add(1)
			}
		}()
	}
	return &wg
}

// until runs the load until acks more transfers are acknowledged, then calls then (which
// may kill the server) and stops.
func (l *natsLoad) until(t *testing.T, p *proc, acks int64, then func()) {
	t.Helper()
	stop := make(chan struct{})
	from := l.acked.Load()
	wg := l.run(t, p, 8, stop)
	for l.acked.Load() < from+acks && !t.Failed() {
		time.Sleep(2 * time.Millisecond) // polling the load's progress
	}
	if then != nil {
		then()
	}
	close(stop)
	wg.Wait()
}

// TestNatsEventsSurviveKill runs serve with --nats-url under load, SIGKILLs it while its
// follower publishes, restarts it, and reads the stream back: every journal event is there,
// in order per partition key, each once (JetStream dropped the republished copies).
func TestNatsEventsSurviveKill(t *testing.T) {
	r := newNatsRig(t, natsTestURL())
	dir := t.TempDir()
	args := append([]string{"--nats-url", r.url}, r.args()...)
	p := startServe(t, dir, args...)
	const users = 20
	fundUsers(t, p, users)
	l := &natsLoad{users: users, all: map[string]*sent{}}
	seed := time.Now().UnixNano()
	rng := mrand.New(mrand.NewPCG(uint64(seed), 0))
	for round := range 2 {
		killAt := int64(300 + rng.IntN(1500))
		l.until(t, p, killAt, func() { p.kill(t) })
		inStream := r.streamCount(t) // final: its publisher is dead
		p = startServe(t, dir, args...)
		events := len(natsJournalEvents(t, p))
		natsWaitFollower(t, p, func(lag, _, _ uint64) bool { return lag == 0 })
		_, _, resent := natsFollowerStatus(t, p)
		t.Logf("round %d (seed %d): killed after %d more acks with %d of %d events in the stream; "+
			"the restarted follower sent %d, %d of them already there",
			round, seed, killAt, inStream, events, resent, int(resent)-(events-int(inStream)))
	}
	l.until(t, p, 500, nil)
	checkAcked(t, p, l.all, &l.mu)
	n := r.checkDelivered(t, p)
	t.Logf("%d journal events delivered; %d transfers acknowledged", n, l.acked.Load())
}

// privateNats is a nats-server of the test's own, on a free port with JetStream in a
// temporary directory, that the test stops and starts to make outages.
type privateNats struct {
	url, port, dir string
	cmd            *exec.Cmd
	done           chan struct{}
	out            bytes.Buffer
}

func newPrivateNats(t *testing.T) *privateNats {
	t.Helper()
	_, port, _ := net.SplitHostPort(freeAddr(t))
	return &privateNats{url: "nats://127.0.0.1:" + port, port: port, dir: t.TempDir()}
}

func (s *privateNats) start(t *testing.T) {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		bin = "/usr/sbin/nats-server" // where the Debian package puts it (scripts/services.sh)
	}
	s.cmd = exec.Command(bin, "-a", "127.0.0.1", "-p", s.port, "-js", "-sd", s.dir)
	s.out.Reset()
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	done := make(chan struct{})
	s.done = done
	cmd := s.cmd
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", "127.0.0.1:"+s.port); err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("nats-server exited:\n%s", s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server not listening after 10 s:\n%s", s.out.String())
		}
		time.Sleep(20 * time.Millisecond) // polling a child process's port
	}
}

func (s *privateNats) kill() {
	s.cmd.Process.Kill()
	<-s.done
}

// natsFollowerStatus is the "nats" follower in GET /v1/followers: its lag in records, its
// errors and the events it delivered since the process started.
func natsFollowerStatus(t *testing.T, p *proc) (lag, errs, delivered uint64) {
	t.Helper()
	var out struct {
		Items []struct {
			Name       string `json:"name"`
			LagRecords uint64 `json:"lag_records"`
			Errors     uint64 `json:"errors"`
			Delivered  uint64 `json:"delivered"`
		} `json:"items"`
	}
	p.mustCall(t, "GET", "/v1/followers", nil, &out, 200)
	for _, f := range out.Items {
		if f.Name == "nats" {
			return f.LagRecords, f.Errors, f.Delivered
		}
	}
	t.Fatal("no nats follower in GET /v1/followers")
	return 0, 0, 0
}

// natsWaitFollower polls the "nats" follower until cond holds, failing after 60 s.
func natsWaitFollower(t *testing.T, p *proc, cond func(lag, errs, delivered uint64) bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond(natsFollowerStatus(t, p)) {
		if time.Now().After(deadline) {
			t.Fatal("the nats follower did not get there in 60 s")
		}
		time.Sleep(10 * time.Millisecond) // polling the server's follower status
	}
}

// streamCount is how many messages the events stream holds.
func (r *natsRig) streamCount(t *testing.T) uint64 {
	t.Helper()
	s, err := r.js.Stream(context.Background(), r.stream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.Msgs
}

// TestNatsOutage starts serve while NATS is down, then takes NATS down again under load:
// transfers never fail, the follower lags and reports errors, and once NATS is back every
// event arrives, once, in order.
func TestNatsOutage(t *testing.T) {
	ns := newPrivateNats(t)
	dir := t.TempDir()
	rig := &natsRig{url: ns.url, prefix: "tpwallet", stream: "TPWALLET"} // the server is ours alone
	p := startServe(t, dir, "--nats-url", ns.url)
	const users = 10
	fundUsers(t, p, users) // with NATS down
	l := &natsLoad{users: users, all: map[string]*sent{}}
	l.until(t, p, 300, nil)
	lag, errs, _ := natsFollowerStatus(t, p)
	if lag == 0 || errs == 0 {
		t.Fatalf("NATS down: follower lag %d records, %d errors; want both above 0", lag, errs)
	}
	ns.start(t)
	rig.js = natsJS(t, ns.url)
	rig.checkDelivered(t, p)

	l.until(t, p, 300, ns.kill) // NATS dies under load
	l.until(t, p, 300, nil)     // and stays down
	ns.start(t)                 // same store: the stream and its duplicate window survive
	rig.js = natsJS(t, ns.url)
	l.until(t, p, 200, nil)
	n := rig.checkDelivered(t, p)
	checkAcked(t, p, l.all, &l.mu)
	t.Logf("%d events delivered across two outages; %d transfers acknowledged, none refused", n, l.acked.Load())
}

// TestNatsCommands sends transfer commands through NATS to the real binary, a quarter of
// them twice: one result per message on the reply subject, each transfer applied once (the
// balances add up). The URL, with credentials, comes from TPWALLET_NATS_URL, and the log
// never shows them.
func TestNatsCommands(t *testing.T) {
	r := newNatsRig(t, natsTestURL())
	secretURL := strings.Replace(r.url, "nats://", "nats://tpwuser:nats-secret-pw@", 1)
	t.Setenv("TPWALLET_NATS_URL", secretURL)
	p := startServe(t, t.TempDir(), r.args()...)
	const users = 6
	fundUsers(t, p, users)
	ctx := context.Background()
	if _, err := r.js.CreateStream(ctx, jetstream.StreamConfig{Name: r.stream + "_RESULTS",
		Subjects: []string{r.prefix + ".results.>"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	const n = 80
	want := map[string]*big.Int{}
	messages := 0
	for i := range n {
		src, dst, amount := i%users, (i+1+i/users)%users, int64(i+1)
		if src == dst {
			dst = (dst + 1) % users
		}
		for _, a := range []struct {
			id    string
			delta int64
		}{{"u" + strconv.Itoa(src), -amount}, {"u" + strconv.Itoa(dst), amount}} {
			if want[a.id] == nil {
				want[a.id] = big.NewInt(1000000)
			}
			want[a.id].Add(want[a.id], big.NewInt(a.delta))
		}
		body := fmt.Sprintf(`{"source":"u%d","destination":"u%d","amount":"%d"}`, src, dst, amount)
		for range 1 + natsBtoi(i%4 == 0) {
			m := nats.NewMsg(r.prefix + ".commands.transfers")
			m.Header.Set("Authorization", "Bearer "+adminKey)
			m.Header.Set("Idempotency-Key", "c-"+strconv.Itoa(i))
			if i%2 == 1 {
				m.Header.Set("Reply-To", r.prefix+".results.mine")
			}
			m.Data = []byte(body)
			if _, err := r.js.PublishMsg(ctx, m); err != nil {
				t.Fatal(err)
			}
			messages++
		}
	}
	results := map[string][]map[string]any{}
	c, err := r.js.OrderedConsumer(ctx, r.stream+"_RESULTS", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for got := 0; got < messages; {
		b, err := c.Fetch(messages-got, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			var res map[string]any
			if err := json.Unmarshal(m.Data(), &res); err != nil {
				t.Fatal(err)
			}
			key := m.Headers().Get("Idempotency-Key")
			wantSubject := r.prefix + ".results.transfers"
			if i, _ := strconv.Atoi(strings.TrimPrefix(key, "c-")); i%2 == 1 {
				wantSubject = r.prefix + ".results.mine"
			}
			if res["status"] != 201.0 || res["idempotency_key"] != key || m.Subject() != wantSubject {
				t.Fatalf("result on %s: %v, want 201 for %s on %s", m.Subject(), res, key, wantSubject)
			}
			results[key] = append(results[key], res)
			got++
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d results after 60 s", got, messages)
		}
	}
	for i := range n {
		key := "c-" + strconv.Itoa(i)
		if rs := results[key]; len(rs) != 1+natsBtoi(i%4 == 0) {
			t.Fatalf("%s: %d results, want one per message sent", key, len(rs))
		} else if len(rs) == 2 && rs[0]["replayed"] == rs[1]["replayed"] {
			t.Fatalf("%s sent twice: replayed %v and %v, want one of each", key, rs[0]["replayed"], rs[1]["replayed"])
		}
	}
	for id, w := range want {
		var a accountOut
		p.mustCall(t, "GET", "/v1/accounts/"+id, nil, &a, 200)
		if a.Balance.Posted != w.String() {
			t.Fatalf("%s: posted %s, want %s (each command applied once)", id, a.Balance.Posted, w)
		}
	}
	p.stop(t)
	if strings.Contains(p.out.String(), "nats-secret-pw") {
		t.Fatalf("the log shows the NATS password:\n%s", p.out.String())
	}
	if !strings.Contains(p.out.String(), "nats commands consumer ready") {
		t.Fatalf("the log does not show the consumer starting:\n%s", p.out.String())
	}
}

// TestNatsStreamConflict: serve refuses to start when the configured stream exists and
// does not take its subjects, or when a name is one JetStream would refuse.
func TestNatsStreamConflict(t *testing.T) {
	r := newNatsRig(t, natsTestURL())
	if _, err := r.js.CreateStream(context.Background(), jetstream.StreamConfig{Name: r.stream,
		Subjects: []string{r.prefix + ".transfer.*"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{append([]string{"--nats-url", r.url}, r.args()...), "stream conflict"},
		{[]string{"--nats-url", r.url, "--nats-subject-prefix", "a.*"}, "subject prefix"},
		{[]string{"--nats-url", r.url, "--nats-stream", "A.B"}, "stream name"},
	} {
		p := launch(t, t.TempDir(), c.args...)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("serve %v still runs after 30 s", c.args)
		}
		if code := p.cmd.ProcessState.ExitCode(); code == 0 || !strings.Contains(p.out.String(), c.want) {
			t.Fatalf("serve %v: exit %d, output:\n%s\nwant a failure mentioning %q", c.args, code, p.out.String(), c.want)
		}
	}
}

func natsBtoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

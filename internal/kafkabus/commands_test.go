package kafkabus_test

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tpwallet/tpwallet/internal/httpapi"
	"github.com/tpwallet/tpwallet/internal/kafkabus"
)

// flaky answers 503 overloaded to the first tries of the commands with key flakyKey, as an
// engine with a full queue would, and passes everything to the ledger otherwise.
type flaky struct {
	next  kafkabus.Submitter
	mu    sync.Mutex
	tries map[string]int
	order []string // idempotency keys in the order the ledger decided them
}

const flakyKey, flakyTries = "k-flaky", 3

func (f *flaky) SubmitTransfer(ctx context.Context, c httpapi.Command) httpapi.CommandResult {
	f.mu.Lock()
	f.tries[c.IdempotencyKey]++
	n := f.tries[c.IdempotencyKey]
	f.mu.Unlock()
	if c.IdempotencyKey == flakyKey && n < flakyTries {
		return httpapi.CommandResult{IdempotencyKey: c.IdempotencyKey, Status: 503,
			Body: []byte(`{"status":503,"code":"overloaded"}`)}
	}
	res := f.next.SubmitTransfer(ctx, c)
	f.mu.Lock()
	f.order = append(f.order, c.IdempotencyKey)
	f.mu.Unlock()
	return res
}

// runCommands runs a Commands consumer until the returned stop is called (or the test ends).
func runCommands(t *testing.T, c *kfake.Cluster, submit kafkabus.Submitter) (stop func()) {
	t.Helper()
	cmds, err := kafkabus.NewCommands(kafkabus.CommandsOptions{Config: config(c), Submit: submit,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); cmds.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// command is a record of the commands topic.
type command struct {
	key, auth, idem, reply string // empty: header left out
	body                   string
}

func (c command) record() *kgo.Record {
	r := &kgo.Record{Topic: kafkabus.DefaultCommandsTopic, Key: []byte(c.key), Value: []byte(c.body)}
	for _, h := range [][2]string{{"authorization", c.auth}, {"idempotency-key", c.idem}, {"reply-topic", c.reply}} {
		if h[1] != "" {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
		}
	}
	return r
}

func produce(t *testing.T, c *kfake.Cluster, cmds ...command) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(cmds))
	for i, cmd := range cmds {
		recs[i] = cmd.record()
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatalf("produce commands: %v", err)
	}
}

// result is a record of a results topic, decoded.
type result struct {
	IdempotencyKey string          `json:"idempotency_key"`
	Status         int             `json:"status"`
	Replayed       bool            `json:"replayed"`
	Body           json.RawMessage `json:"body"`
	header         string          // the idempotency-key header
	key            string          // the record key
}

func decodeResults(t *testing.T, recs []*kgo.Record) []result {
	t.Helper()
	out := make([]result, len(recs))
	for i, r := range recs {
		if err := json.Unmarshal(r.Value, &out[i]); err != nil {
			t.Fatalf("result %s: %v", r.Value, err)
		}
		out[i].header, _ = header(r, "idempotency-key")
		out[i].key = string(r.Key)
	}
	return out
}

// committed returns the offsets group has committed on topic, summed over partitions.
func committed(t *testing.T, c *kfake.Cluster, group, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	os, err := kadm.NewClient(cl).FetchOffsets(t.Context(), group)
	if err != nil {
		return -1 // the group may not exist yet
	}
	var sum int64
	os.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil {
			sum += o.At
		}
	})
	return sum
}

// endOffsets returns the number of records in topic, summed over partitions.
func endOffsets(t *testing.T, c *kfake.Cluster, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ls, err := kadm.NewClient(cl).ListEndOffsets(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	ls.Each(func(o kadm.ListedOffset) { sum += o.Offset })
	return sum
}

func transferBody(src, dst string, amount int) string {
	return `{"source":"` + src + `","destination":"` + dst + `","amount":"` + strconv.Itoa(amount) + `"}`
}

// TestKafkaCommands sends transfers as commands, some twice, some malformed, one that the
// ledger first answers retryably, and checks each result, that every transfer applied
// once (balances), that a retried command holds back the ones behind it in its partition,
// and that offsets are committed: a restarted consumer runs nothing again.
func TestKafkaCommands(t *testing.T) {
	const custom = "custom.replies"
	c := newCluster(t, kfake.SeedTopics(4, kafkabus.DefaultCommandsTopic, kafkabus.DefaultResultsTopic, custom))
	l := openLedger(t)
	const users = 4
	l.fundUsers(t, users)
	for _, id := range []string{"a", "b"} {
		l.mustCall(t, "POST", "/v1/accounts", map[string]any{"id": id, "asset": "USD"}, nil, 201)
	}
	f := &flaky{next: l.api, tries: map[string]int{}}
	stop := runCommands(t, c, f)

	auth := "Bearer " + adminSecret
	var cmds []command
	want := map[string]int{} // idempotency key → status of each of its results
	balance := map[string]int{"u0": 1e6, "u1": 1e6, "u2": 1e6, "u3": 1e6, "a": 0, "b": 500}
	const transfers = 20
	for i := range transfers {
		k := "t-" + strconv.Itoa(i)
		src, dst := "u"+strconv.Itoa(i%users), "u"+strconv.Itoa((i+1)%users)
		cmds = append(cmds, command{key: k, auth: auth, idem: k, body: transferBody(src, dst, i+1)})
		want[k] = 201
		balance[src] -= i + 1
		balance[dst] += i + 1
	}
	dups := cmds[:10:10] // sent again, same key and body: applied once
	// k-after spends what k-flaky credits, in the same partition (same record key): it can
	// only succeed if k-flaky, answered 503 twice first, is not skipped.
	cmds = append(cmds,
		command{key: "seq", auth: auth, idem: flakyKey, body: transferBody("treasury", "a", 500)},
		command{key: "seq", auth: auth, idem: "k-after", body: transferBody("a", "b", 500)},
		command{key: "x", auth: auth, idem: "k-json", body: `{"source":`},
		command{key: "x", auth: auth, idem: "k-field", body: `{"source":"u0","destination":"u1","amount":"1","colour":"red"}`},
		command{key: "x", idem: "k-noauth", body: transferBody("u0", "u1", 1)},
		command{key: "x", auth: "Bearer tpw_not-a-key-0000000000000000", idem: "k-badauth", body: transferBody("u0", "u1", 1)},
		command{key: "x", auth: auth, body: transferBody("u0", "u1", 1)},
		command{key: "x", auth: auth, idem: "k-reply", reply: "no such topic!", body: transferBody("u0", "u1", 1)},
		command{key: "x", auth: auth, idem: "k-poor", body: transferBody("u0", "u1", 1e9)},
		command{key: "t-0", auth: auth, idem: "t-0", body: transferBody("u0", "u1", 2)}, // t-0's key, another body
		command{key: "y", auth: auth, idem: "k-custom", reply: custom, body: transferBody("u2", "u3", 7)},
		// A reply topic that does not exist: the result comes on the results topic.
		command{key: "y", auth: auth, idem: "k-missing", reply: "no.such.topic", body: transferBody("u3", "u2", 5)},
	)
	for k, s := range map[string]int{flakyKey: 201, "k-after": 201, "k-json": 400, "k-field": 400,
		"k-noauth": 401, "k-badauth": 401, "": 400, "k-reply": 400, "k-poor": 422, "k-missing": 201} {
		want[k] = s
	}
	balance["u2"], balance["u3"] = balance["u2"]-7+5, balance["u3"]+7-5
	produce(t, c, cmds...)
	produce(t, c, dups...)
	total := len(cmds) + len(dups)

	recs := consume(t, c, kafkabus.DefaultResultsTopic, 20*time.Second, func(r []*kgo.Record) bool { return len(r) >= total-1 })
	results := decodeResults(t, recs)
	byKey := map[string][]result{}
	for _, r := range results {
		byKey[r.IdempotencyKey] = append(byKey[r.IdempotencyKey], r)
		if r.header != r.IdempotencyKey || r.key != r.IdempotencyKey {
			t.Errorf("result of %q: header %q, record key %q", r.IdempotencyKey, r.header, r.key)
		}
	}
	for k, status := range want {
		copies := 1
		if k == "t-0" {
			copies = 3 // and one 422 for the other body, below
		} else if len(k) > 2 && k[:2] == "t-" && mustAtoi(t, k[2:]) < len(dups) {
			copies = 2
		}
		rs := byKey[k]
		if len(rs) != copies {
			t.Errorf("%q: %d results, want %d: %+v", k, len(rs), copies, rs)
			continue
		}
		var ids []string
		for _, r := range rs {
			if k == "t-0" && r.Status == 422 {
				if !json.Valid(r.Body) || !containsCode(r.Body, "idempotency_key_reused") {
					t.Errorf("t-0 with another body: %s", r.Body)
				}
				continue
			}
			if r.Status != status {
				t.Errorf("%q: status %d, want %d: %s", k, r.Status, status, r.Body)
			}
			if status == 201 {
				var tr struct{ ID string }
				json.Unmarshal(r.Body, &tr)
				ids = append(ids, tr.ID)
			}
		}
		for _, id := range ids[min(1, len(ids)):] {
			if id != ids[0] {
				t.Errorf("%q: copies answered different transfers %v", k, ids)
			}
		}
		if copies > 1 && (rs[0].Replayed || !rs[len(rs)-1].Replayed) {
			t.Errorf("%q: replayed flags %v then %v, want false then true", k, rs[0].Replayed, rs[len(rs)-1].Replayed)
		}
	}
	custRecs := consume(t, c, custom, 10*time.Second, func(r []*kgo.Record) bool { return len(r) >= 1 })
	if cr := decodeResults(t, custRecs); cr[0].IdempotencyKey != "k-custom" || cr[0].Status != 201 {
		t.Errorf("custom reply topic: %+v", cr[0])
	}
	for acc, b := range balance {
		var out struct{ Balance struct{ Posted string } }
		l.mustCall(t, "GET", "/v1/accounts/"+acc, nil, &out, 200)
		if out.Balance.Posted != strconv.Itoa(b) {
			t.Errorf("%s: posted %s, want %d", acc, out.Balance.Posted, b)
		}
	}
	f.mu.Lock()
	if f.tries[flakyKey] != flakyTries {
		t.Errorf("%s tried %d times, want %d", flakyKey, f.tries[flakyKey], flakyTries)
	}
	if i, j := index(f.order, flakyKey), index(f.order, "k-after"); i < 0 || j < i {
		t.Errorf("decided in order %v: k-after before %s", f.order, flakyKey)
	}
	f.mu.Unlock()

	// Every command's offset is committed once its result is out: a new consumer (a
	// restart) takes only what comes next.
	waitFor(t, 10*time.Second, "all offsets committed", func() bool {
		return committed(t, c, kafkabus.DefaultGroup, kafkabus.DefaultCommandsTopic) == int64(total)
	})
	stop()
	runCommands(t, c, f)
	produce(t, c, command{key: "z", auth: auth, idem: "k-late", body: transferBody("u0", "u1", 1)})
	waitFor(t, 10*time.Second, "the new command committed", func() bool {
		return committed(t, c, kafkabus.DefaultGroup, kafkabus.DefaultCommandsTopic) == int64(total+1)
	})
	if n := endOffsets(t, c, kafkabus.DefaultResultsTopic); n != int64(total) { // total-1 + k-late
		t.Errorf("results topic holds %d results after the restart, want %d", n, total)
	}
}

func mustAtoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func containsCode(body []byte, code string) bool {
	var p struct{ Code string }
	return json.Unmarshal(body, &p) == nil && p.Code == code
}

func index(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

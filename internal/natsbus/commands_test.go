package natsbus_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tpwallet/tpwallet/internal/httpapi"
	"github.com/tpwallet/tpwallet/internal/natsbus"
)

// result is a published command result, decoded.
type result struct {
	IdempotencyKey string `json:"idempotency_key"`
	Status         int    `json:"status"`
	Replayed       bool   `json:"replayed"`
	Body           struct {
		ID     string `json:"id"`
		Amount string `json:"amount"`
		Code   string `json:"code"`
	} `json:"body"`
	subject string
	header  nats.Header
}

// commandsRig is a ledger taking commands from NATS, and a stream that keeps the results.
type commandsRig struct {
	l       *ledger
	nc      *nats.Conn
	js      jetstream.JetStream
	opts    natsbus.CommandsOptions
	results string // the stream of <prefix>.results.>
	cmds    *natsbus.Commands
}

// startCommands runs Commands over a fresh ledger (users u0..u(users-1)) until the test
// ends; sub, when not nil, wraps the ledger's API.
func startCommands(t *testing.T, users int, wrap func(natsbus.Submitter) natsbus.Submitter, active func() bool) *commandsRig {
	t.Helper()
	nc, js := connect(t)
	prefix, stream := names(t, js)
	r := &commandsRig{l: openLedger(t), nc: nc, js: js, results: stream + "_RESULTS"}
	r.l.accounts(t, users)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: r.results,
		Subjects: []string{prefix + ".results.>"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	r.opts = natsbus.CommandsOptions{Stream: stream + "_COMMANDS", SubjectPrefix: prefix, Consumer: "tpwallet",
		Workers: 8, RetryDelay: 20 * time.Millisecond, Active: active}
	var sub natsbus.Submitter = r.l.api
	if wrap != nil {
		sub = wrap(sub)
	}
	cmds, err := natsbus.NewCommands(nc, sub, r.opts)
	if err != nil {
		t.Fatal(err)
	}
	r.cmds = cmds
	if err := cmds.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); cmds.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	r.opts.EnsureDefaults()
	return r
}

// send publishes a command to the commands stream; empty header values are left out.
func (r *commandsRig) send(t *testing.T, auth, key, replyTo string, body []byte) {
	t.Helper()
	m := nats.NewMsg(r.opts.Subject())
	for k, v := range map[string]string{"Authorization": auth, "Idempotency-Key": key, "Reply-To": replyTo} {
		if v != "" {
			m.Header.Set(k, v)
		}
	}
	m.Data = body
	if _, err := r.js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

// results waits until the results stream holds n results and returns them.
func (r *commandsRig) resultsN(t *testing.T, n int) []result {
	t.Helper()
	msgs := streamMsgs(t, r.js, r.results, n)
	out := make([]result, len(msgs))
	for i, m := range msgs {
		if err := json.Unmarshal(m.Data(), &out[i]); err != nil {
			t.Fatalf("result %s: %v", m.Data(), err)
		}
		out[i].subject, out[i].header = m.Subject(), m.Headers()
	}
	return out
}

func transferBody(src, dst string, amount int) []byte {
	return []byte(`{"source":"` + src + `","destination":"` + dst + `","amount":"` + strconv.Itoa(amount) + `"}`)
}

// TestNatsCommandsApplyOnce sends 60 transfer commands, a third of them twice: every command
// message gets one result, each transfer applies once (the balances say so), a duplicate's
// second result is the replayed first, and the work queue ends empty (all acknowledged).
func TestNatsCommandsApplyOnce(t *testing.T) {
	r := startCommands(t, 4, nil, nil)
	const n = 60
	sent := 0
	want := map[string]int{} // balance change per account
	for i := range n {
		src, dst, amount := "u"+itoa(i%4), "u"+itoa((i+1)%4), i+1
		want[src] -= amount
		want[dst] += amount
		reply := ""
		if i%5 == 0 {
			reply = r.opts.SubjectPrefix + ".results.custom"
		}
		copies := 1 + btoi(i%3 == 0)
		for range copies {
			r.send(t, "Bearer "+adminKey, "cmd-"+itoa(i), reply, transferBody(src, dst, amount))
			sent++
		}
	}
	res := r.resultsN(t, sent)
	if len(res) != sent {
		t.Fatalf("%d results for %d command messages", len(res), sent)
	}
	byKey := map[string][]result{}
	ids := map[string]bool{}
	for _, x := range res {
		byKey[x.IdempotencyKey] = append(byKey[x.IdempotencyKey], x)
		i, _ := strconv.Atoi(strings.TrimPrefix(x.IdempotencyKey, "cmd-"))
		wantSubject := r.opts.SubjectPrefix + ".results.transfers"
		if i%5 == 0 {
			wantSubject = r.opts.SubjectPrefix + ".results.custom"
		}
		if x.subject != wantSubject || x.header.Get("Idempotency-Key") != x.IdempotencyKey {
			t.Errorf("result of %s on %q with key header %q, want %q and the key", x.IdempotencyKey, x.subject,
				x.header.Get("Idempotency-Key"), wantSubject)
		}
		id := x.header.Get("Nats-Msg-Id")
		if !strings.HasPrefix(id, "result-"+r.opts.Stream+"-") || ids[id] {
			t.Errorf("result of %s: Nats-Msg-Id %q, want result-%s-<seq>, one per command message", x.IdempotencyKey, id, r.opts.Stream)
		}
		ids[id] = true
		if x.Status != http.StatusCreated || x.Body.Amount != itoa(i+1) {
			t.Errorf("result of %s: status %d amount %q, want 201 and %d", x.IdempotencyKey, x.Status, x.Body.Amount, i+1)
		}
	}
	for i := range n {
		key := "cmd-" + itoa(i)
		rs := byKey[key]
		if len(rs) != 1+btoi(i%3 == 0) {
			t.Fatalf("%s: %d results, want one per copy sent", key, len(rs))
		}
		if len(rs) == 2 && (rs[0].Replayed == rs[1].Replayed || rs[0].Body.ID != rs[1].Body.ID) {
			t.Errorf("%s sent twice: results %+v and %+v, want the same transfer, replayed once", key, rs[0], rs[1])
		}
	}
	for acct, delta := range want {
		if got, w := r.l.balance(t, acct), strconv.Itoa(1000000+delta); got != w {
			t.Errorf("%s: balance %s, want %s (each transfer once)", acct, got, w)
		}
	}
	waitFor(t, "the commands stream to empty", func() bool {
		s, err := r.js.Stream(context.Background(), r.opts.Stream)
		return err == nil && s.CachedInfo().State.Msgs == 0
	})
}

// TestNatsCommandsInvalid sends malformed and refused commands: each gets its 4xx result (the
// consumer goes on), nothing is applied, and a valid command afterwards still works.
func TestNatsCommandsInvalid(t *testing.T) {
	r := startCommands(t, 2, nil, nil)
	var readKey struct{ Key string }
	if err := json.Unmarshal(r.l.mustDo(t, "POST", "/v1/api-keys", map[string]any{"name": "ro", "scopes": []string{"read"}}, 201), &readKey); err != nil {
		t.Fatal(err)
	}
	admin := "Bearer " + adminKey
	ok := transferBody("u0", "u1", 5)
	cases := []struct {
		key, auth, replyTo string
		body               []byte
		status             int
		code               string
	}{
		{"", admin, "", ok, 400, "invalid_request"},                                          // no key
		{"k-noauth", "", "", ok, 401, "unauthenticated"},                                     // no Authorization
		{"k-badauth", "Bearer nope", "", ok, 401, "unauthenticated"},                         // unknown key
		{"k-ro", "Bearer " + readKey.Key, "", ok, 403, "forbidden"},                          // read scope
		{"k-json", admin, "", []byte(`{"source":`), 400, "invalid_request"},                  // bad JSON
		{"k-field", admin, "", []byte(`{"sauce":"u0"}`), 400, "invalid_request"},             // unknown field
		{"k-empty", admin, "", nil, 400, "invalid_request"},                                  // no body
		{"k-funds", admin, "", transferBody("u0", "u1", 2000000), 422, "insufficient_funds"}, // rejected
		{"k-reply", admin, r.opts.SubjectPrefix + ".results.*", ok, 400, "invalid_request"},  // wildcard reply
		{"k-acct", admin, "", transferBody("u0", "nobody", 1), 404, "account_not_found"},     // unknown account
		{strings.Repeat("k", 300), admin, "", ok, 400, "invalid_request"},                    // key too long
	}
	for _, c := range cases {
		r.send(t, c.auth, c.key, c.replyTo, c.body)
	}
	r.send(t, admin, "k-good", "", ok)
	res := r.resultsN(t, len(cases)+1)
	if len(res) != len(cases)+1 {
		t.Fatalf("%d results, want %d", len(res), len(cases)+1)
	}
	byKey := map[string]result{}
	for _, x := range res {
		byKey[x.IdempotencyKey] = x
	}
	for _, c := range cases {
		x, found := byKey[c.key]
		if !found || x.Status != c.status || x.Body.Code != c.code || x.subject != r.opts.ResultsSubject() {
			t.Errorf("command %.20q: result %+v (found %v), want %d %s on %s", c.key, x, found, c.status, c.code, r.opts.ResultsSubject())
		}
	}
	if x := byKey["k-good"]; x.Status != 201 {
		t.Errorf("the valid command after the bad ones: %+v, want 201", x)
	}
	if got := r.l.balance(t, "u1"); got != "1000005" {
		t.Errorf("u1 balance %s, want 1000005: only the valid command applied", got)
	}
}

// retryFirst answers every command's first attempt 503 not_leader, as a standby would,
// and passes later attempts on: a fault injected in front of the real API.
type retryFirst struct {
	natsbus.Submitter
	mu      sync.Mutex
	seen    map[string]bool
	retried atomic.Int64
}

func (f *retryFirst) SubmitTransfer(ctx context.Context, c httpapi.Command) httpapi.CommandResult {
	f.mu.Lock()
	first := !f.seen[c.IdempotencyKey]
	f.seen[c.IdempotencyKey] = true
	f.mu.Unlock()
	if first {
		f.retried.Add(1)
		return httpapi.CommandResult{IdempotencyKey: c.IdempotencyKey, Status: 503,
			Body: []byte(`{"status":503,"code":"not_leader"}`)}
	}
	return f.Submitter.SubmitTransfer(ctx, c)
}

// TestNatsCommandsRetry: a command answered 503 is not answered but comes back (Nak with a
// delay) and is then applied, once, with one result.
func TestNatsCommandsRetry(t *testing.T) {
	f := &retryFirst{seen: map[string]bool{}}
	r := startCommands(t, 2, func(s natsbus.Submitter) natsbus.Submitter { f.Submitter = s; return f }, nil)
	const n = 10
	for i := range n {
		r.send(t, "Bearer "+adminKey, "retry-"+itoa(i), "", transferBody("u0", "u1", 1))
	}
	res := r.resultsN(t, n)
	if len(res) != n || f.retried.Load() != n {
		t.Fatalf("%d results and %d first attempts refused, want %d of each", len(res), f.retried.Load(), n)
	}
	for _, x := range res {
		if x.Status != 201 || x.Replayed {
			t.Errorf("result %+v, want 201 not replayed: the refused attempt applied nothing", x)
		}
	}
	if got := r.l.balance(t, "u1"); got != strconv.Itoa(1000000+n) {
		t.Errorf("u1 balance %s, want %d", got, 1000000+n)
	}
}

// TestNatsCommandsInactive: an instance that is not active (a standby) takes no command; once
// active it does.
func TestNatsCommandsInactive(t *testing.T) {
	var active atomic.Bool
	var looked atomic.Int64
	r := startCommands(t, 2, nil, func() bool { looked.Add(1); return active.Load() })
	r.send(t, "Bearer "+adminKey, "inactive-1", "", transferBody("u0", "u1", 7))
	from := looked.Load()
	waitFor(t, "Run to look three times", func() bool { return looked.Load() >= from+3 })
	ci, err := r.js.Consumer(context.Background(), r.opts.Stream, r.opts.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := ci.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumPending != 1 || info.NumAckPending != 0 || info.Delivered.Consumer != 0 {
		t.Fatalf("inactive: consumer pending %d, ack pending %d, delivered %d; want 1, 0, 0",
			info.NumPending, info.NumAckPending, info.Delivered.Consumer)
	}
	active.Store(true)
	if res := r.resultsN(t, 1); res[0].Status != 201 {
		t.Fatalf("once active: %+v, want 201", res[0])
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

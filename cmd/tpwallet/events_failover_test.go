package main_test

import (
	"slices"
	"strconv"
	"testing"
	"time"
)

type followersOut struct {
	Items []struct {
		Name       string `json:"name"`
		Running    bool   `json:"running"`
		LagRecords uint64 `json:"lag_records"`
	} `json:"items"`
}

// TestEventsFailoverPostgres runs a PostgreSQL group with a webhook endpoint: only the
// leader delivers (the standby lists the follower as not running) and the standby serves
// GET /v1/events from the database; the leader is killed with webhooks in flight, the
// standby takes over, goes on from the stored cursor, and the receiver gets every event
// since the endpoint was registered, first copies in journal order.
func TestEventsFailoverPostgres(t *testing.T) {
	url := freshDatabase(t)
	dir := t.TempDir()
	args := []string{"--store", url, "--lease-ttl", "2s", "--webhook-allow-private"}
	a := startServe(t, dir, args...)
	b := launch(t, dir, args...)
	b.waitReady(t, isStandby(a.base))
	rc := newHookLog(t)
	const users = 6
	fundUsers(t, a, users)
	var head struct {
		Seq uint64 `json:"seq"`
	}
	a.mustCall(t, "GET", "/v1/journal/head", nil, &head, 200)
	var ep struct {
		ID string `json:"id"`
	}
	a.mustCall(t, "POST", "/v1/webhooks", map[string]any{"url": rc.srv.URL}, &ep, 201)
	name := "webhook:" + ep.ID
	follower := func(p *proc) (running, known bool) {
		var f followersOut
		p.mustCall(t, "GET", "/v1/followers", nil, &f, 200)
		for _, it := range f.Items {
			if it.Name == name {
				return it.Running, true
			}
		}
		return false, false
	}
	if running, known := follower(a); !running || !known {
		t.Fatalf("leader: follower %s running %v known %v, want running", name, running, known)
	}
	waitFor(t, 30*time.Second, "the standby to learn of the endpoint", func() bool { _, known := follower(b); return known })
	if running, _ := follower(b); running {
		t.Fatalf("the standby runs %s: two instances would deliver at once", name)
	}

	pay := func(p *proc, i int) int {
		code, _ := p.call("POST", "/v1/transfers", map[string]any{"id": "ev" + strconv.Itoa(i),
			"source": "u" + strconv.Itoa(i%users), "destination": "u" + strconv.Itoa((i+1)%users), "amount": "1"}, nil)
		return code
	}
	for i := range 60 {
		if code := pay(a, i); code != 201 {
			t.Fatalf("transfer %d on the leader: %d", i, code)
		}
	}
	// The standby serves the same events, read from the database.
	if ea, eb := allEvents(t, a, head.Seq), allEvents(t, b, head.Seq); !slices.Equal(ea, eb) || len(ea) != 60 {
		t.Fatalf("events on the leader (%d) and the standby (%d) differ, or are not the 60 transfers", len(ea), len(eb))
	}
	waitFor(t, 30*time.Second, "a first webhook", func() bool { return len(rc.requests()) > 0 })
	a.kill(t)
	b.waitReady(t, func(status int, _ []byte) bool { return status == 200 })
	waitFor(t, 30*time.Second, "the new leader to run the follower", func() bool { running, _ := follower(b); return running })
	for i := 60; i < 80; i++ {
		if code := pay(b, i); code != 201 {
			t.Fatalf("transfer %d on the new leader: %d", i, code)
		}
	}
	want := allEvents(t, b, head.Seq)
	firsts := func() []string {
		seen := map[string]bool{}
		var out []string
		for _, r := range rc.requests() {
			if id := r.header.Get("webhook-id"); !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
		return out
	}
	waitFor(t, 60*time.Second, "every event delivered", func() bool { return len(firsts()) >= len(want) })
	if got := firsts(); !slices.Equal(got, want) {
		t.Fatalf("delivered (first copies) %v\nwant the journal's %v", got, want)
	}
	t.Logf("%d events, %d requests across the failover", len(want), len(rc.requests()))
}

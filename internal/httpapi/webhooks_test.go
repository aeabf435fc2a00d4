package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientwebhook "github.com/tpwallet/tpwallet/client/webhook"
	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/httpapi"
	"github.com/tpwallet/tpwallet/internal/service"
	"github.com/tpwallet/tpwallet/internal/webhook"
)

type webhookStatus struct {
	Running  bool `json:"running"`
	Position struct {
		Seq   uint64 `json:"seq"`
		Index int    `json:"index"`
	} `json:"position"`
	LagRecords          uint64  `json:"lag_records"`
	Breaker             string  `json:"breaker"`
	ConsecutiveFailures int     `json:"consecutive_failures"`
	RetryingEventID     *string `json:"retrying_event_id"`
	LastError           *string `json:"last_error"`
	LastSuccessAt       *string `json:"last_success_at"`
}

type webhookEndpoint struct {
	ID          string        `json:"id"`
	URL         string        `json:"url"`
	EventTypes  []string      `json:"event_types"`
	Description string        `json:"description"`
	Secret      string        `json:"secret"`
	CreatedAt   string        `json:"created_at"`
	Status      webhookStatus `json:"status"`
}

type webhookDelivery struct {
	EventID string `json:"event_id"`
	Attempt int    `json:"attempt"`
	Outcome string `json:"outcome"`
	Status  *int   `json:"status"`
}

type webhookDeadLetter struct {
	EventID    string `json:"event_id"`
	JournalSeq uint64 `json:"journal_seq"`
	Attempts   int    `json:"attempts"`
	LastStatus *int   `json:"last_status"`
}

// hookReceiver records the webhooks it gets by path; answer decides each status.
type hookReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    map[string][]*http.Request
	bodies map[string][][]byte
}

func newHookReceiver(t *testing.T, answer func(r *http.Request) int) *hookReceiver {
	h := &hookReceiver{got: map[string][]*http.Request{}, bodies: map[string][][]byte{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		status := answer(r)
		h.mu.Lock()
		if status/100 == 2 {
			h.got[r.URL.Path] = append(h.got[r.URL.Path], r)
			h.bodies[r.URL.Path] = append(h.bodies[r.URL.Path], b)
		}
		h.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// ids returns the webhook-ids delivered (answered 2xx) at path, in order.
func (h *hookReceiver) ids(path string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.got[path] {
		out = append(out, r.Header.Get("webhook-id"))
	}
	return out
}

// hookStack is a server whose webhooks may go to 127.0.0.1 and retry within milliseconds.
func hookStack(t *testing.T, retryFor time.Duration) *stack {
	return openStackFull(t, t.TempDir(), engine.Options{}, service.Options{}, httpapi.Options{},
		webhook.Options{AllowPrivate: true, MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
			RetryFor: retryFor, SyncEvery: time.Second})
}

// TestWebhookAPI goes through the life of an endpoint over REST: create (the secret
// once), get and list (with status, without the secret), signed deliveries of its types,
// the delivery log, replay, and delete.
func TestWebhookAPI(t *testing.T) {
	s := hookStack(t, time.Hour)
	rc := newHookReceiver(t, func(*http.Request) int { return http.StatusNoContent })
	var ep webhookEndpoint
	s.do(t, "POST", "/v1/webhooks", s.admin, obj{"url": rc.srv.URL + "/posted",
		"event_types": []string{"transfer.posted"}, "description": "ledger feed"}).want(t, 201).into(t, &ep)
	if ep.Secret == "" || ep.Description != "ledger feed" || !slices.Equal(ep.EventTypes, []string{"transfer.posted"}) ||
		ep.Status.Breaker != "closed" {
		t.Fatalf("created %+v", ep)
	}
	get := s.do(t, "GET", "/v1/webhooks/"+ep.ID, s.admin, nil).want(t, 200)
	list := s.do(t, "GET", "/v1/webhooks", s.admin, nil).want(t, 200)
	for _, r := range []reply{get, list} {
		if strings.Contains(string(r.Body), ep.Secret) || strings.Contains(string(r.Body), `"secret"`) {
			t.Errorf("%s shows the secret", r.Path)
		}
	}
	var eps page[webhookEndpoint]
	list.into(t, &eps)
	if len(eps.Items) != 1 || eps.Items[0].ID != ep.ID || eps.NextCursor != "" {
		t.Errorf("list %s", list.Body)
	}

	s.openAccount(t, "treasury", "USD", true)
	s.openAccount(t, "alice", "USD", false)
	var paid []string
	for i := 0; i < 3; i++ {
		paid = append(paid, s.pay(t, "treasury", "alice", strconv.Itoa(i+1)).ID)
	}
	eventually(t, 10*time.Second, "three transfer.posted webhooks", func() bool { return len(rc.ids("/posted")) >= 3 })
	rc.mu.Lock()
	for i, r := range rc.got["/posted"] {
		if err := clientwebhook.Verify(ep.Secret, r.Header, rc.bodies["/posted"][i], time.Now(), 0); err != nil {
			t.Errorf("webhook %d: %v", i, err)
		}
		if !strings.Contains(string(rc.bodies["/posted"][i]), `"subject":"`+paid[i]+`"`) {
			t.Errorf("webhook %d is not about transfer %s: %s", i, paid[i], rc.bodies["/posted"][i])
		}
	}
	rc.mu.Unlock()
	delivered := rc.ids("/posted")

	// The delivery log, newest first, one entry per page (the receiver answers before the
	// attempt is logged: wait for the log itself).
	eventually(t, 10*time.Second, "the third delivery logged", func() bool {
		var p page[webhookDelivery]
		s.do(t, "GET", "/v1/webhooks/"+ep.ID+"/deliveries?limit=1", s.admin, nil).want(t, 200).into(t, &p)
		return len(p.Items) == 1 && p.Items[0].EventID == delivered[2]
	})
	var log []webhookDelivery
	cursor := ""
	for {
		var p page[webhookDelivery]
		s.do(t, "GET", "/v1/webhooks/"+ep.ID+"/deliveries?limit=1&cursor="+cursor, s.admin, nil).want(t, 200).into(t, &p)
		log = append(log, p.Items...)
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if len(log) != 3 || log[0].EventID != delivered[2] || log[2].EventID != delivered[0] ||
		log[0].Outcome != "delivered" || log[0].Status == nil || *log[0].Status != 204 {
		t.Errorf("delivery log %+v, want %v newest first", log, delivered)
	}

	var replay struct {
		ID      string `json:"id"`
		FromSeq uint64 `json:"from_seq"`
	}
	s.do(t, "POST", "/v1/webhooks/"+ep.ID+"/replay", s.admin, obj{"from_seq": 1}).want(t, 202).into(t, &replay)
	if replay.ID != ep.ID || replay.FromSeq != 1 {
		t.Errorf("replay answer %+v", replay)
	}
	eventually(t, 10*time.Second, "the replay", func() bool { return len(rc.ids("/posted")) >= 6 })
	if got := rc.ids("/posted"); !slices.Equal(got, slices.Concat(delivered, delivered)) {
		t.Errorf("after the replay: %v, want %v twice", got, delivered)
	}

	s.do(t, "DELETE", "/v1/webhooks/"+ep.ID, s.admin, nil).want(t, 204)
	s.do(t, "GET", "/v1/webhooks/"+ep.ID, s.admin, nil).wantProblem(t, 404, "webhook_not_found")
	s.do(t, "DELETE", "/v1/webhooks/"+ep.ID, s.admin, nil).wantProblem(t, 404, "webhook_not_found")
}

// TestWebhookAPIDeadLetters lets an endpoint fail past a short retry window: its status
// shows the open breaker, the dead letters list the events, and a success closes it.
func TestWebhookAPIDeadLetters(t *testing.T) {
	s := hookStack(t, 50*time.Millisecond)
	var mu sync.Mutex
	up := false
	rc := newHookReceiver(t, func(*http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		if up {
			return 200
		}
		return 500
	})
	var ep webhookEndpoint
	s.do(t, "POST", "/v1/webhooks", s.admin, obj{"url": rc.srv.URL + "/down"}).want(t, 201).into(t, &ep)
	s.openAccount(t, "treasury", "USD", true)
	s.openAccount(t, "alice", "USD", false)
	var dead page[webhookDeadLetter]
	eventually(t, 10*time.Second, "two dead letters", func() bool {
		s.do(t, "GET", "/v1/webhooks/"+ep.ID+"/dead-letters", s.admin, nil).want(t, 200).into(t, &dead)
		return len(dead.Items) >= 2
	})
	for _, d := range dead.Items {
		if d.Attempts < 1 || d.LastStatus == nil || *d.LastStatus != 500 || d.JournalSeq == 0 {
			t.Errorf("dead letter %+v", d)
		}
	}
	if dead.Items[0].JournalSeq < dead.Items[1].JournalSeq {
		t.Errorf("dead letters not newest first: %+v", dead.Items)
	}
	var got webhookEndpoint
	s.do(t, "GET", "/v1/webhooks/"+ep.ID, s.admin, nil).want(t, 200).into(t, &got)
	if got.Status.Breaker != "open" || got.Status.ConsecutiveFailures < 5 || got.Status.LastError == nil ||
		*got.Status.LastError != "HTTP 500" {
		t.Errorf("status of a failing endpoint %+v", got.Status)
	}
	mu.Lock()
	up = true
	mu.Unlock()
	s.pay(t, "treasury", "alice", "1")
	eventually(t, 10*time.Second, "the breaker closed", func() bool {
		s.do(t, "GET", "/v1/webhooks/"+ep.ID, s.admin, nil).want(t, 200).into(t, &got)
		return got.Status.Breaker == "closed" && len(rc.ids("/down")) > 0
	})
}

// TestWebhookAPIErrors checks the refusals: malformed requests 400, forbidden URLs 422,
// unknown endpoints 404, keys without the admin scope 403, and that none of them changes
// anything.
func TestWebhookAPIErrors(t *testing.T) {
	s := newStack(t) // private addresses refused, as serve's default
	var ep webhookEndpoint
	s.do(t, "POST", "/v1/webhooks", s.admin, obj{"url": "https://93.184.216.34/hook"}).want(t, 201).into(t, &ep)
	for _, bad := range []string{
		`{}`,
		`{"url":""}`,
		`{"url":"ftp://93.184.216.34/"}`,
		`{"url":"https://user:pw@93.184.216.34/"}`,
		`{"url":"https://93.184.216.34/","event_types":["transfer.exploded"]}`,
		`{"url":"https://93.184.216.34/","event_types":"transfer.posted"}`,
		`{"url":"https://93.184.216.34/","secret":"whsec_mine"}`,
		`{"url":"https://93.184.216.34/","URL":"https://93.184.216.34/"}`,
		`{"url":"https://93.184.216.34/","description":"` + strings.Repeat("x", 513) + `"}`,
		`{"url":"https://93.184.216.34/"} {}`,
	} {
		s.do(t, "POST", "/v1/webhooks", s.admin, bad).wantProblem(t, 400, "invalid_request")
	}
	s.do(t, "POST", "/v1/webhooks", s.admin, `{"url":"https://93.184.216.34/"}`, hdr("Content-Type", "text/plain")).
		wantProblem(t, 415, "unsupported_media_type")
	for _, u := range []string{"http://127.0.0.1:8080/", "http://localhost/", "http://[::1]/", "http://10.0.0.1/",
		"http://169.254.169.254/", "http://100.64.0.1/"} {
		s.do(t, "POST", "/v1/webhooks", s.admin, obj{"url": u}).wantProblem(t, 422, "webhook_url_forbidden")
	}
	for _, bad := range []string{`{}`, `{"from_seq":0}`, `{"from_seq":-1}`, `{"from_seq":"1"}`, `{"from_seq":999999}`, `{"from":1}`} {
		s.do(t, "POST", "/v1/webhooks/"+ep.ID+"/replay", s.admin, bad).wantProblem(t, 400, "invalid_request")
	}
	for _, q := range []string{"?limit=0", "?limit=1001", "?cursor=zz"} {
		s.do(t, "GET", "/v1/webhooks/"+ep.ID+"/deliveries"+q, s.admin, nil).wantProblem(t, 400, "invalid_request")
		s.do(t, "GET", "/v1/webhooks/"+ep.ID+"/dead-letters"+q, s.admin, nil).wantProblem(t, 400, "invalid_request")
	}
	s.do(t, "GET", "/v1/webhooks?cursor=wh_x", s.admin, nil).wantProblem(t, 400, "invalid_request")
	for _, id := range []string{"wh_0123456789abcdef", "no-such-id"} {
		s.do(t, "GET", "/v1/webhooks/"+id, s.admin, nil).wantProblem(t, 404, "webhook_not_found")
		s.do(t, "DELETE", "/v1/webhooks/"+id, s.admin, nil).wantProblem(t, 404, "webhook_not_found")
		s.do(t, "GET", "/v1/webhooks/"+id+"/deliveries", s.admin, nil).wantProblem(t, 404, "webhook_not_found")
		s.do(t, "GET", "/v1/webhooks/"+id+"/dead-letters", s.admin, nil).wantProblem(t, 404, "webhook_not_found")
		s.do(t, "POST", "/v1/webhooks/"+id+"/replay", s.admin, obj{"from_seq": 1}).wantProblem(t, 404, "webhook_not_found")
	}
	writer := s.newKey(t, "writer", "write")
	s.do(t, "POST", "/v1/webhooks", writer, obj{"url": "https://93.184.216.34/"}).wantProblem(t, 403, "forbidden")
	s.do(t, "GET", "/v1/webhooks", writer, nil).wantProblem(t, 403, "forbidden")
	s.do(t, "GET", "/v1/webhooks/"+ep.ID+"/deliveries", writer, nil).wantProblem(t, 403, "forbidden")
	s.do(t, "DELETE", "/v1/webhooks/"+ep.ID, writer, nil).wantProblem(t, 403, "forbidden")
	var eps page[webhookEndpoint]
	s.do(t, "GET", "/v1/webhooks", s.admin, nil).want(t, 200).into(t, &eps)
	if len(eps.Items) != 1 || eps.Items[0].ID != ep.ID {
		t.Errorf("after the refusals the endpoints are %+v, want only %s", eps.Items, ep.ID)
	}
}

// TestWebhookEventTypesDocumented checks openapi.yaml's EventType lists exactly the
// event types.
func TestWebhookEventTypesDocumented(t *testing.T) {
	et, err := spec(t).deref(map[string]any{"$ref": "#/components/schemas/EventType"})
	if err != nil {
		t.Fatal(err)
	}
	var enum []string
	for _, e := range asList(et["enum"]) {
		enum = append(enum, e.(string))
	}
	if !slices.Equal(enum, events.Types) {
		t.Errorf("EventType enum %v, want %v", enum, events.Types)
	}
}

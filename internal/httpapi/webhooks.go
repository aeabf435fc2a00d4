package httpapi

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/service"
	"github.com/tpwallet/tpwallet/internal/webhook"
)

// The webhook endpoints (docs/webhooks.md): admin only, configuration kept in the store's
// Meta space by webhook.Manager rather than ledger writes, so they take no Idempotency-Key
// (as API keys do not). Writes go to the leader, which runs the deliveries.

type webhookCreateJSON struct {
	URL         string   `json:"url"`
	EventTypes  []string `json:"event_types"`
	Description string   `json:"description"`
}

type webhookReplayJSON struct {
	FromSeq *uint64 `json:"from_seq"`
}

type positionOut struct {
	Seq   uint64 `json:"seq"`
	Index int    `json:"index"`
}

type webhookStatusOut struct {
	Running             bool        `json:"running"`
	Position            positionOut `json:"position"`
	LagRecords          uint64      `json:"lag_records"`
	LagSeconds          float64     `json:"lag_seconds"`
	Delivered           uint64      `json:"delivered"`
	Breaker             string      `json:"breaker"`
	ConsecutiveFailures int         `json:"consecutive_failures"`
	OpenedAt            *string     `json:"opened_at"`
	NextAttemptAt       *string     `json:"next_attempt_at"`
	RetryingEventID     *string     `json:"retrying_event_id"`
	Attempts            int         `json:"attempts"`
	LastError           *string     `json:"last_error"`
	LastErrorAt         *string     `json:"last_error_at"`
	LastSuccessAt       *string     `json:"last_success_at"`
}

type webhookOut struct {
	ID          string           `json:"id"`
	URL         string           `json:"url"`
	EventTypes  []string         `json:"event_types"`
	Description string           `json:"description"`
	Secret      string           `json:"secret,omitempty"` // only in the answer to create
	CreatedAt   string           `json:"created_at"`
	Status      webhookStatusOut `json:"status"`
}

type deliveryOut struct {
	EventID       string  `json:"event_id"`
	EventType     string  `json:"event_type"`
	Attempt       int     `json:"attempt"`
	Outcome       string  `json:"outcome"`
	Status        *int    `json:"status"`
	Error         *string `json:"error"`
	Time          string  `json:"time"`
	DurationMs    float64 `json:"duration_ms"`
	NextAttemptAt *string `json:"next_attempt_at"`
}

type deadLetterOut struct {
	EventID        string `json:"event_id"`
	EventType      string `json:"event_type"`
	JournalSeq     uint64 `json:"journal_seq"`
	JournalIndex   int    `json:"journal_index"`
	Attempts       int    `json:"attempts"`
	FirstAttemptAt string `json:"first_attempt_at"`
	DeadLetteredAt string `json:"dead_lettered_at"`
	LastStatus     *int   `json:"last_status"`
	LastError      string `json:"last_error"`
}

// optTime is an api.md timestamp, or null for 0.
func optTime(ns int64) *string {
	if ns == 0 {
		return nil
	}
	s := journal.FormatTime(ns)
	return &s
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optInt(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}

func renderWebhook(ep webhook.Endpoint, st webhook.Status) webhookOut {
	types := ep.EventTypes
	if types == nil {
		types = []string{}
	}
	return webhookOut{ID: ep.ID, URL: ep.URL, EventTypes: types, Description: ep.Description,
		Secret: string(ep.Secret), CreatedAt: journal.FormatTime(ep.CreatedAt),
		Status: webhookStatusOut{Running: st.Running, Position: positionOut{st.Position.Seq, st.Position.Index},
			LagRecords: st.LagRecords, LagSeconds: st.LagSeconds, Delivered: st.Delivered, Breaker: st.Breaker,
			ConsecutiveFailures: st.ConsecutiveFailures, OpenedAt: optTime(st.OpenedAt),
			NextAttemptAt: optTime(st.NextAttemptAt), RetryingEventID: optString(st.RetryingEvent),
			Attempts: st.Attempts, LastError: optString(st.LastError), LastErrorAt: optTime(st.LastErrorAt),
			LastSuccessAt: optTime(st.LastSuccessAt)}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	writeRaw(w, status, b, false)
}

// hooks returns the manager, or answers 404 when the server has none.
func (s *Server) hooks(w http.ResponseWriter) *webhook.Manager {
	if s.webhooks == nil {
		writeProblem(w, problemOf(ledger.CodeNotFound, "webhooks are not enabled on this server"))
	}
	return s.webhooks
}

// leading answers 503 not_leader on a standby, whose changes the leader's running
// deliveries would not see.
func (s *Server) leading(w http.ResponseWriter) bool {
	if s.svc.IsLeader() {
		return true
	}
	writeProblem(w, problemFromError(&service.NotLeaderError{Leader: s.svc.Leader()}))
	return false
}

func webhookStatus(ctx context.Context, m *webhook.Manager, ep webhook.Endpoint, head uint64) (webhookOut, error) {
	st, err := m.Status(ctx, ep.ID, head)
	return renderWebhook(ep, st), err
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) {
	m := s.hooks(w)
	if m == nil || !s.leading(w) {
		return
	}
	body, err := readBody(w, r, bodyMax, false)
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	var in webhookCreateJSON
	if err := decodeStrict(body, &in); err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	ep, err := m.Create(r.Context(), webhook.Spec{URL: in.URL, EventTypes: in.EventTypes, Description: in.Description})
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	// The status is a courtesy here: if it cannot be read, the endpoint exists all the same
	// and the answer must still carry its secret.
	out := renderWebhook(ep, webhook.Status{Breaker: "closed"})
	if head, err := m.Head(r.Context()); err == nil {
		if st, err := m.Status(r.Context(), ep.ID, head); err == nil {
			out = renderWebhook(ep, st)
		}
	}
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) {
	m := s.hooks(w)
	if m == nil {
		return
	}
	limit, cursor, err := page(r)
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	eps, next, err := m.List(r.Context(), cursor, limit)
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	head, err := m.Head(r.Context())
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	items := make([]webhookOut, len(eps))
	for i, ep := range eps {
		if items[i], err = webhookStatus(r.Context(), m, ep, head); err != nil {
			writeProblem(w, problemFromError(err))
			return
		}
	}
	writeJSON(w, http.StatusOK, pageOut[webhookOut]{Items: items, NextCursor: next})
}

type pageOut[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request) {
	m := s.hooks(w)
	if m == nil {
		return
	}
	ep, err := m.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	head, err := m.Head(r.Context())
	var out webhookOut
	if err == nil {
		out, err = webhookStatus(r.Context(), m, ep, head)
	}
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	m := s.hooks(w)
	if m == nil || !s.leading(w) {
		return
	}
	if err := m.Delete(r.Context(), r.PathValue("id")); err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) replayWebhook(w http.ResponseWriter, r *http.Request) {
	m := s.hooks(w)
	if m == nil || !s.leading(w) {
		return
	}
	body, err := readBody(w, r, bodyMax, false)
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	var in webhookReplayJSON
	if err := decodeStrict(body, &in); err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	if in.FromSeq == nil {
		writeProblem(w, problemOf(ledger.CodeInvalidRequest, "from_seq is required"))
		return
	}
	id := r.PathValue("id")
	if err := m.Replay(r.Context(), id, *in.FromSeq); err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	writeJSON(w, http.StatusAccepted, struct {
		ID      string `json:"id"`
		FromSeq uint64 `json:"from_seq"`
	}{id, *in.FromSeq})
}

func (s *Server) webhookDeliveries(w http.ResponseWriter, r *http.Request) {
	m := s.hooks(w)
	if m == nil {
		return
	}
	webhookPage(w, r, m.Deliveries, func(d webhook.Delivery) deliveryOut {
		return deliveryOut{EventID: d.EventID, EventType: d.EventType, Attempt: d.Attempt, Outcome: d.Outcome,
			Status: optInt(d.Status), Error: optString(d.Error), Time: journal.FormatTime(d.Time),
			DurationMs: d.DurationMs, NextAttemptAt: optTime(d.NextAttempt)}
	})
}

func (s *Server) webhookDeadLetters(w http.ResponseWriter, r *http.Request) {
	m := s.hooks(w)
	if m == nil {
		return
	}
	webhookPage(w, r, m.DeadLetters, func(d webhook.DeadLetter) deadLetterOut {
		return deadLetterOut{EventID: d.EventID, EventType: d.EventType, JournalSeq: d.Seq, JournalIndex: d.Index,
			Attempts: d.Attempts, FirstAttemptAt: journal.FormatTime(d.FirstAttempt),
			DeadLetteredAt: journal.FormatTime(d.Time), LastStatus: optInt(d.LastStatus), LastError: d.LastError}
	})
}

// webhookPage answers a page of one endpoint's list (deliveries, dead letters): ?limit=
// and ?cursor= as every list has them, each item rendered by out.
func webhookPage[T, O any](w http.ResponseWriter, r *http.Request,
	list func(ctx context.Context, id, cursor string, limit int) ([]T, string, error), out func(T) O) {
	limit, cursor, err := page(r)
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	got, next, err := list(r.Context(), r.PathValue("id"), cursor, limit)
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	items := make([]O, len(got))
	for i, v := range got {
		items[i] = out(v)
	}
	writeJSON(w, http.StatusOK, pageOut[O]{Items: items, NextCursor: next})
}

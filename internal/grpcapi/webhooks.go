package grpcapi

import (
	"context"

	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/service"
	"github.com/tpwallet/tpwallet/internal/webhook"
	tpwalletv1 "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

// The webhook endpoints (docs/webhooks.md) and the journal's followers, as REST serves
// them (internal/httpapi/webhooks.go, listFollowers): admin only, with no idempotency-key,
// the writes on the leader only.

// hooks returns the manager, or not_found when the server has none (as REST).
func (s *Server) hooks() (*webhook.Manager, error) {
	if s.webhooks == nil {
		return nil, fail(ledger.CodeNotFound, "webhooks are not enabled on this server")
	}
	return s.webhooks, nil
}

// leading is not_leader on a standby, whose changes the leader's running deliveries
// would not see.
func (s *Server) leading() error {
	if s.svc.IsLeader() {
		return nil
	}
	return errorOf(&service.NotLeaderError{Leader: s.svc.Leader()})
}

// hooksToWrite is hooks, and leading, in REST's order.
func (s *Server) hooksToWrite() (*webhook.Manager, error) {
	m, err := s.hooks()
	if err == nil {
		err = s.leading()
	}
	return m, err
}

func webhookPB(ep webhook.Endpoint, st webhook.Status) *tpwalletv1.Webhook {
	return &tpwalletv1.Webhook{Id: ep.ID, Url: ep.URL, EventTypes: ep.EventTypes, Description: ep.Description,
		Secret: string(ep.Secret), CreatedAt: journal.FormatTime(ep.CreatedAt),
		Status: &tpwalletv1.WebhookStatus{Running: st.Running,
			Position:   &tpwalletv1.WebhookPosition{Seq: st.Position.Seq, Index: int32(st.Position.Index)},
			LagRecords: st.LagRecords, LagSeconds: st.LagSeconds, Delivered: st.Delivered, Breaker: st.Breaker,
			ConsecutiveFailures: int32(st.ConsecutiveFailures), OpenedAt: optTime(st.OpenedAt),
			NextAttemptAt: optTime(st.NextAttemptAt), RetryingEventId: st.RetryingEvent,
			Attempts: int32(st.Attempts), LastError: st.LastError, LastErrorAt: optTime(st.LastErrorAt),
			LastSuccessAt: optTime(st.LastSuccessAt)}}
}

func webhookWithStatus(ctx context.Context, m *webhook.Manager, ep webhook.Endpoint, head uint64) (*tpwalletv1.Webhook, error) {
	st, err := m.Status(ctx, ep.ID, head)
	if err != nil {
		return nil, errorOf(err)
	}
	return webhookPB(ep, st), nil
}

func (s webhooks) CreateWebhook(ctx context.Context, req *tpwalletv1.CreateWebhookRequest) (*tpwalletv1.Webhook, error) {
	m, err := s.hooksToWrite()
	if err != nil {
		return nil, err
	}
	ep, err := m.Create(ctx, webhook.Spec{URL: req.Url, EventTypes: req.EventTypes, Description: req.Description})
	if err != nil {
		return nil, errorOf(err)
	}
	// The status is a courtesy here: if it cannot be read, the endpoint exists all the same
	// and the answer must still carry its secret.
	out := webhookPB(ep, webhook.Status{Breaker: "closed"})
	if head, err := m.Head(ctx); err == nil {
		if st, err := m.Status(ctx, ep.ID, head); err == nil {
			out = webhookPB(ep, st)
		}
	}
	return out, nil
}

func (s webhooks) ListWebhooks(ctx context.Context, req *tpwalletv1.ListWebhooksRequest) (*tpwalletv1.ListWebhooksResponse, error) {
	m, err := s.hooks()
	if err != nil {
		return nil, err
	}
	limit, err := pageLimit(req.Limit)
	if err != nil {
		return nil, err
	}
	eps, next, err := m.List(ctx, req.Cursor, limit)
	if err != nil {
		return nil, errorOf(err)
	}
	head, err := m.Head(ctx)
	if err != nil {
		return nil, errorOf(err)
	}
	out := &tpwalletv1.ListWebhooksResponse{Items: make([]*tpwalletv1.Webhook, len(eps)), NextCursor: next}
	for i, ep := range eps {
		if out.Items[i], err = webhookWithStatus(ctx, m, ep, head); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s webhooks) GetWebhook(ctx context.Context, req *tpwalletv1.GetWebhookRequest) (*tpwalletv1.Webhook, error) {
	m, err := s.hooks()
	if err != nil {
		return nil, err
	}
	ep, err := m.Get(ctx, req.Id)
	if err != nil {
		return nil, errorOf(err)
	}
	head, err := m.Head(ctx)
	if err != nil {
		return nil, errorOf(err)
	}
	return webhookWithStatus(ctx, m, ep, head)
}

func (s webhooks) DeleteWebhook(ctx context.Context, req *tpwalletv1.DeleteWebhookRequest) (*tpwalletv1.DeleteWebhookResponse, error) {
	m, err := s.hooksToWrite()
	if err != nil {
		return nil, err
	}
	if err := m.Delete(ctx, req.Id); err != nil {
		return nil, errorOf(err)
	}
	return &tpwalletv1.DeleteWebhookResponse{}, nil
}

func (s webhooks) ReplayWebhook(ctx context.Context, req *tpwalletv1.ReplayWebhookRequest) (*tpwalletv1.ReplayWebhookResponse, error) {
	m, err := s.hooksToWrite()
	if err != nil {
		return nil, err
	}
	if req.FromSeq == nil {
		return nil, invalid("from_seq is required")
	}
	if err := m.Replay(ctx, req.Id, *req.FromSeq); err != nil {
		return nil, errorOf(err)
	}
	return &tpwalletv1.ReplayWebhookResponse{Id: req.Id, FromSeq: *req.FromSeq}, nil
}

func (s webhooks) ListWebhookDeliveries(ctx context.Context, req *tpwalletv1.ListWebhookDeliveriesRequest) (*tpwalletv1.ListWebhookDeliveriesResponse, error) {
	m, err := s.hooks()
	if err != nil {
		return nil, err
	}
	items, next, err := webhookPage(ctx, req.Limit, req.Id, req.Cursor, m.Deliveries,
		func(d webhook.Delivery) *tpwalletv1.WebhookDelivery {
			return &tpwalletv1.WebhookDelivery{EventId: d.EventID, EventType: d.EventType, Attempt: int32(d.Attempt),
				Outcome: d.Outcome, Status: int32(d.Status), Error: d.Error, Time: journal.FormatTime(d.Time),
				DurationMs: d.DurationMs, NextAttemptAt: optTime(d.NextAttempt)}
		})
	if err != nil {
		return nil, err
	}
	return &tpwalletv1.ListWebhookDeliveriesResponse{Items: items, NextCursor: next}, nil
}

func (s webhooks) ListWebhookDeadLetters(ctx context.Context, req *tpwalletv1.ListWebhookDeadLettersRequest) (*tpwalletv1.ListWebhookDeadLettersResponse, error) {
	m, err := s.hooks()
	if err != nil {
		return nil, err
	}
	items, next, err := webhookPage(ctx, req.Limit, req.Id, req.Cursor, m.DeadLetters,
		func(d webhook.DeadLetter) *tpwalletv1.WebhookDeadLetter {
			return &tpwalletv1.WebhookDeadLetter{EventId: d.EventID, EventType: d.EventType, JournalSeq: d.Seq,
				JournalIndex: int32(d.Index), Attempts: int32(d.Attempts), FirstAttemptAt: journal.FormatTime(d.FirstAttempt),
				DeadLetteredAt: journal.FormatTime(d.Time), LastStatus: int32(d.LastStatus), LastError: d.LastError}
		})
	if err != nil {
		return nil, err
	}
	return &tpwalletv1.ListWebhookDeadLettersResponse{Items: items, NextCursor: next}, nil
}

// webhookPage reads a page of one endpoint's list (deliveries, dead letters), as REST's
// ?limit= and ?cursor= do, each item converted by out.
func webhookPage[T, O any](ctx context.Context, reqLimit int32, id, cursor string,
	list func(ctx context.Context, id, cursor string, limit int) ([]T, string, error), out func(T) O) ([]O, string, error) {
	limit, err := pageLimit(reqLimit)
	if err != nil {
		return nil, "", err
	}
	got, next, err := list(ctx, id, cursor, limit)
	if err != nil {
		return nil, "", errorOf(err)
	}
	items := make([]O, len(got))
	for i, v := range got {
		items[i] = out(v)
	}
	return items, next, nil
}

// ListFollowers is GET /v1/followers.
func (s followers) ListFollowers(context.Context, *tpwalletv1.ListFollowersRequest) (*tpwalletv1.ListFollowersResponse, error) {
	var list []events.Status
	if s.follow != nil {
		list = s.follow.Statuses()
	}
	out := &tpwalletv1.ListFollowersResponse{Items: make([]*tpwalletv1.Follower, len(list))}
	for i, st := range list {
		out.Items[i] = &tpwalletv1.Follower{Name: st.Name, Running: st.Running, Position: st.Position.Cursor(),
			Delivered: st.Delivered, Errors: st.Errors, LastError: st.LastError, LagRecords: st.LagRecords,
			LagSeconds: st.LagSeconds}
	}
	return out, nil
}

package grpcapi_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	tpwalletv1 "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

// TestWebhooksOnStandby: on a standby the webhook writes answer not_leader, as REST's
// do, and the reads still answer.
func TestWebhooksOnStandby(t *testing.T) {
	s := newStack(t)
	c := tpwalletv1.NewWebhookServiceClient(s.conn)
	ctx := authCtx(t.Context(), s.admin)
	ep, err := c.CreateWebhook(ctx, &tpwalletv1.CreateWebhookRequest{Url: "https://hooks.example.com/a"})
	if err != nil {
		t.Fatal(err)
	}
	if ep.Secret == "" || ep.Status.GetBreaker() != "closed" {
		t.Fatalf("created %v", ep)
	}
	eng := s.svc.Demote("http://10.0.0.2:8080")
	defer func() {
		if err := s.svc.Promote(t.Context(), eng); err != nil {
			t.Error(err)
		}
	}()
	from := uint64(1)
	writes := map[string]error{}
	_, writes["create"] = c.CreateWebhook(ctx, &tpwalletv1.CreateWebhookRequest{Url: "https://hooks.example.com/b"})
	_, writes["delete"] = c.DeleteWebhook(ctx, &tpwalletv1.DeleteWebhookRequest{Id: ep.Id})
	_, writes["replay"] = c.ReplayWebhook(ctx, &tpwalletv1.ReplayWebhookRequest{Id: ep.Id, FromSeq: &from})
	for name, err := range writes {
		if st := wantCode(t, err, "not_leader"); st.Code() != codes.Unavailable {
			t.Errorf("%s on a standby: %v, want Unavailable", name, st.Code())
		}
	}
	if code, _, body := s.restDo(t, "POST", "/v1/webhooks", s.admin, `{"url":"https://hooks.example.com/b"}`); code != 503 ||
		!strings.Contains(string(body), "not_leader") {
		t.Errorf("REST create on a standby: %d %s, want 503 not_leader", code, body)
	}
	if got, err := c.GetWebhook(ctx, &tpwalletv1.GetWebhookRequest{Id: ep.Id}); err != nil || got.Secret != "" || got.Id != ep.Id {
		t.Errorf("get on a standby: %v, %v (without the secret)", got, err)
	}
	if l, err := c.ListWebhooks(ctx, &tpwalletv1.ListWebhooksRequest{}); err != nil || len(l.Items) != 1 {
		t.Errorf("list on a standby: %v, %v", l, err)
	}
	if _, err := tpwalletv1.NewFollowerServiceClient(s.conn).ListFollowers(ctx, &tpwalletv1.ListFollowersRequest{}); err != nil {
		t.Errorf("followers on a standby: %v", err)
	}
}

package grpcapi_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"

	tpwalletv1 "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

// eventStream opens StreamEvents and returns a function that reads the next event,
// however the server groups them into messages.
func eventStream(t *testing.T, ctx context.Context, s *stack, req *tpwalletv1.StreamEventsRequest) func() (*tpwalletv1.Event, error) {
	t.Helper()
	st, err := tpwalletv1.NewEventServiceClient(s.conn).StreamEvents(authCtx(ctx, s.admin), req)
	if err != nil {
		t.Fatal(err)
	}
	var buf []*tpwalletv1.Event
	return func() (*tpwalletv1.Event, error) {
		for len(buf) == 0 {
			m, err := st.Recv()
			if err != nil {
				return nil, err
			}
			buf = m.Events
		}
		e := buf[0]
		buf = buf[1:]
		return e, nil
	}
}

// TestStreamEvents checks the event stream against GET /v1/events: the same events with
// the same attributes and data, in order; then that a stream that is caught up gets a new
// commit's events, that a stream resumes after an event id, and that types filter.
func TestStreamEvents(t *testing.T) {
	s := newStack(t)
	users := fundUsers(t, s, 3)
	s.pay(t, users[0], users[1], "7")
	if _, err := s.accounts().FreezeAccount(authCtx(t.Context(), s.admin), &tpwalletv1.FreezeAccountRequest{Id: users[2]}); err != nil {
		t.Fatal(err)
	}
	code, _, body := s.restDo(t, "GET", "/v1/events?limit=1000", s.admin, "")
	if code != 200 {
		t.Fatalf("GET /v1/events: %d %s", code, body)
	}
	var page struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 9 { // treasury, 3 × (account, funding), the payment, the freeze
		t.Fatalf("REST has %d events, want 9", len(page.Items))
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	next := eventStream(t, ctx, s, &tpwalletv1.StreamEventsRequest{})
	var last *tpwalletv1.Event
	for i, want := range page.Items {
		e, err := next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		j, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := json.Marshal(want)
		delete(want, "datacontenttype") // the data is a message here, not JSON
		if got, want := normalize(t, j, nil), normalize(t, mustJSON(t, want), nil); !reflect.DeepEqual(got, want) {
			t.Errorf("event %d:\nREST %s\ngRPC %s", i, w, j)
		}
		last = e
	}

	// Caught up: the next commit's event arrives on the open stream.
	tr := s.pay(t, users[1], users[0], "3")
	e, err := next()
	if err != nil {
		t.Fatal(err)
	}
	if e.Type != "transfer.posted" || e.Subject != tr.Id || e.Data.GetTransfer().GetAmount() != "3" {
		t.Errorf("the new commit: got %v, want transfer.posted of %s", e, tr.Id)
	}

	// Resume after an event id, inside a record or at its end.
	resumed := eventStream(t, ctx, s, &tpwalletv1.StreamEventsRequest{After: last.Id})
	if e2, err := resumed(); err != nil || e2.Id != e.Id {
		t.Errorf("resumed after %s: got %v %v, want %s", last.Id, e2, err, e.Id)
	}
	// Only account events.
	accounts := eventStream(t, ctx, s, &tpwalletv1.StreamEventsRequest{Types: []string{"account.created", "account.frozen"}})
	for i, want := range []string{"account.created", "account.created", "account.created", "account.created", "account.frozen"} {
		if e, err := accounts(); err != nil || e.Type != want {
			t.Fatalf("filtered event %d: got %v %v, want %s", i, e, err, want)
		}
	}

	for _, req := range []*tpwalletv1.StreamEventsRequest{{After: "x"}, {Types: []string{"transfer.nope"}}} {
		_, err := eventStream(t, ctx, s, req)()
		wantCode(t, err, "invalid_request")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStreamEventsStop: a caught-up event stream ends Unavailable when the server stops,
// and does not hold up the stop.
func TestStreamEventsStop(t *testing.T) {
	s := newStack(t)
	s.openAccount(t, "a", true)
	next := eventStream(t, t.Context(), s, &tpwalletv1.StreamEventsRequest{})
	if _, err := next(); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s.grpc.Stop(ctx)
		close(stopped)
	}()
	_, err := next()
	if st := wantCode(t, err, "unavailable"); st.Code() != codes.Unavailable {
		t.Errorf("got %v, want Unavailable", st.Code())
	}
	<-stopped
}

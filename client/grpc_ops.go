package client

import (
	"context"
	"fmt"
	"math"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	pb "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

// grpcMethods maps each operation gRPC has to its RPC (docs/grpc.md, "Services"). The
// operations missing here — the long polls of GET /v1/events (StreamEvents is the gRPC
// way to follow events) — are REST only, and the gRPC transport refuses them with
// errors.ErrUnsupported.
var grpcMethods = map[*operation]grpcMethod{
	opCreateAPIKey: unary(func(c *call) (*pb.CreateAPIKeyRequest, error) {
		in := c.in.(*CreateAPIKeyRequest)
		return &pb.CreateAPIKeyRequest{Name: in.Name, Scopes: scopeStrings(in.Scopes)}, nil
	}, func(g *grpcTransport) rpc[*pb.CreateAPIKeyRequest, *pb.APIKey] { return g.apiKeys.CreateAPIKey },
		func(m *pb.APIKey, out any) error {
			o := out.(*APIKeyCreated)
			o.Key = m.Key
			return decodeAPIKey(m, &o.APIKey)
		}),
	opListAPIKeys: unary(func(c *call) (*pb.ListAPIKeysRequest, error) {
		p := c.in.(ListParams)
		return &pb.ListAPIKeysRequest{Limit: int32(p.Limit), Cursor: p.Cursor}, nil
	}, func(g *grpcTransport) rpc[*pb.ListAPIKeysRequest, *pb.ListAPIKeysResponse] {
		return g.apiKeys.ListAPIKeys
	},
		func(m *pb.ListAPIKeysResponse, out any) error {
			return decodePage(m.Items, m.NextCursor, out.(*Page[APIKey]), decodeAPIKey)
		}),
	opDeleteAPIKey: unary(func(c *call) (*pb.DeleteAPIKeyRequest, error) {
		return &pb.DeleteAPIKeyRequest{Id: c.id}, nil
	}, func(g *grpcTransport) rpc[*pb.DeleteAPIKeyRequest, *pb.DeleteAPIKeyResponse] {
		return g.apiKeys.DeleteAPIKey
	},
		func(*pb.DeleteAPIKeyResponse, any) error { return nil }),

	opListAssets: unary(func(*call) (*pb.ListAssetsRequest, error) { return &pb.ListAssetsRequest{}, nil },
		func(g *grpcTransport) rpc[*pb.ListAssetsRequest, *pb.ListAssetsResponse] { return g.assets.ListAssets },
		func(m *pb.ListAssetsResponse, out any) error {
			o := out.(*items[Asset])
			o.Items = make([]Asset, len(m.Items))
			for i, a := range m.Items {
				o.Items[i] = Asset{Code: a.Code, Scale: int(a.Scale)}
			}
			return nil
		}),
	opCreateAsset: unary(func(c *call) (*pb.CreateAssetRequest, error) {
		a := c.in.(*Asset)
		if a.Scale < 0 {
			return nil, fmt.Errorf("scale %d is negative", a.Scale)
		}
		return &pb.CreateAssetRequest{Code: a.Code, Scale: proto.Uint32(uint32(a.Scale))}, nil
	}, func(g *grpcTransport) rpc[*pb.CreateAssetRequest, *pb.Asset] { return g.assets.CreateAsset },
		func(m *pb.Asset, out any) error {
			*out.(*Asset) = Asset{Code: m.Code, Scale: int(m.Scale)}
			return nil
		}),

	opCreateAccount: unary(func(c *call) (*pb.CreateAccountRequest, error) {
		in := c.in.(*CreateAccountRequest)
		m := &pb.CreateAccountRequest{Owner: in.Owner, Asset: in.Asset, Kind: string(in.Kind),
			AllowNegative: in.AllowNegative, Metadata: in.Metadata}
		if in.ID != "" { // as REST's omitempty: "" asks the server for an id
			m.Id = proto.String(in.ID)
		}
		return m, nil
	}, func(g *grpcTransport) rpc[*pb.CreateAccountRequest, *pb.Account] { return g.accounts.CreateAccount },
		decodeInto(decodeAccount)),
	opGetAccount: unary(func(c *call) (*pb.GetAccountRequest, error) { return &pb.GetAccountRequest{Id: c.id}, nil },
		func(g *grpcTransport) rpc[*pb.GetAccountRequest, *pb.Account] { return g.accounts.GetAccount },
		decodeInto(decodeAccount)),
	opListAccounts: unary(func(c *call) (*pb.ListAccountsRequest, error) {
		p := c.in.(ListAccountsParams)
		return &pb.ListAccountsRequest{Owner: p.Owner, Limit: int32(p.Limit), Cursor: p.Cursor}, nil
	}, func(g *grpcTransport) rpc[*pb.ListAccountsRequest, *pb.ListAccountsResponse] {
		return g.accounts.ListAccounts
	},
		func(m *pb.ListAccountsResponse, out any) error {
			return decodePage(m.Items, m.NextCursor, out.(*Page[Account]), decodeAccount)
		}),
	opFreezeAccount: unary(func(c *call) (*pb.FreezeAccountRequest, error) { return &pb.FreezeAccountRequest{Id: c.id}, nil },
		func(g *grpcTransport) rpc[*pb.FreezeAccountRequest, *pb.Account] { return g.accounts.FreezeAccount },
		decodeInto(decodeAccount)),
	opUnfreezeAccount: unary(func(c *call) (*pb.UnfreezeAccountRequest, error) {
		return &pb.UnfreezeAccountRequest{Id: c.id}, nil
	}, func(g *grpcTransport) rpc[*pb.UnfreezeAccountRequest, *pb.Account] { return g.accounts.UnfreezeAccount },
		decodeInto(decodeAccount)),
	opListEntries: unary(func(c *call) (*pb.ListEntriesRequest, error) {
		p := c.in.(ListParams)
		return &pb.ListEntriesRequest{AccountId: c.id, Limit: int32(p.Limit), Cursor: p.Cursor}, nil
	}, func(g *grpcTransport) rpc[*pb.ListEntriesRequest, *pb.ListEntriesResponse] {
		return g.accounts.ListEntries
	},
		func(m *pb.ListEntriesResponse, out any) error {
			return decodePage(m.Items, m.NextCursor, out.(*Page[Entry]), decodeEntry)
		}),
	opGetBalance: unary(func(c *call) (*pb.GetBalanceRequest, error) {
		m := &pb.GetBalanceRequest{AccountId: c.id}
		if at := c.in.(balanceParams).At; !at.IsZero() {
			m.At = at.UTC().Format(time.RFC3339Nano)
		}
		return m, nil
	}, func(g *grpcTransport) rpc[*pb.GetBalanceRequest, *pb.BalanceAt] { return g.accounts.GetBalance },
		func(m *pb.BalanceAt, out any) error {
			var d decoder
			*out.(*PostedBalance) = PostedBalance{AccountID: m.AccountId, At: d.time(m.At), Posted: d.signed(m.Posted)}
			return d.err
		}),

	opCreateTransfer: unary(func(c *call) (*pb.CreateTransferRequest, error) {
		return transferRequestPB(c.in.(*CreateTransferRequest))
	}, func(g *grpcTransport) rpc[*pb.CreateTransferRequest, *pb.Transfer] { return g.transfers.CreateTransfer },
		decodeInto(decodeTransfer)),
	opGetTransfer: unary(func(c *call) (*pb.GetTransferRequest, error) { return &pb.GetTransferRequest{Id: c.id}, nil },
		func(g *grpcTransport) rpc[*pb.GetTransferRequest, *pb.Transfer] { return g.transfers.GetTransfer },
		decodeInto(decodeTransfer)),
	opListTransfers: unary(func(c *call) (*pb.ListTransfersRequest, error) {
		p := c.in.(ListTransfersParams)
		return &pb.ListTransfersRequest{Account: p.Account, Limit: int32(p.Limit), Cursor: p.Cursor}, nil
	}, func(g *grpcTransport) rpc[*pb.ListTransfersRequest, *pb.ListTransfersResponse] {
		return g.transfers.ListTransfers
	},
		func(m *pb.ListTransfersResponse, out any) error {
			return decodePage(m.Items, m.NextCursor, out.(*Page[Transfer]), decodeTransfer)
		}),
	opPostTransfer: unary(func(c *call) (*pb.PostTransferRequest, error) {
		m := &pb.PostTransferRequest{Id: c.id}
		if p, ok := c.in.(PostTransferRequest); ok {
			if !p.Amount.IsZero() {
				m.Amount = p.Amount.String()
			}
			if p.NotFinal {
				m.Final = proto.Bool(false)
			}
		}
		return m, nil
	}, func(g *grpcTransport) rpc[*pb.PostTransferRequest, *pb.Transfer] { return g.transfers.PostTransfer },
		decodeInto(decodeTransfer)),
	opIncrease: unary(func(c *call) (*pb.IncreaseTransferRequest, error) {
		return &pb.IncreaseTransferRequest{Id: c.id, Amount: c.in.(*increaseRequest).Amount.String()}, nil
	}, func(g *grpcTransport) rpc[*pb.IncreaseTransferRequest, *pb.Transfer] {
		return g.transfers.IncreaseTransfer
	},
		decodeInto(decodeTransfer)),
	opVoidTransfer: unary(func(c *call) (*pb.VoidTransferRequest, error) { return &pb.VoidTransferRequest{Id: c.id}, nil },
		func(g *grpcTransport) rpc[*pb.VoidTransferRequest, *pb.Transfer] { return g.transfers.VoidTransfer },
		decodeInto(decodeTransfer)),
	opCreateBatch: unary(func(c *call) (*pb.CreateTransferBatchRequest, error) {
		in := c.in.(*batchRequest)
		m := &pb.CreateTransferBatchRequest{Atomic: proto.Bool(in.Atomic),
			Transfers: make([]*pb.CreateTransferRequest, len(in.Transfers))}
		for i := range in.Transfers {
			t, err := transferRequestPB(&in.Transfers[i])
			if err != nil {
				return nil, fmt.Errorf("transfers[%d]: %w", i, err)
			}
			m.Transfers[i] = t
		}
		return m, nil
	}, func(g *grpcTransport) rpc[*pb.CreateTransferBatchRequest, *pb.CreateTransferBatchResponse] {
		return g.transfers.CreateTransferBatch
	}, decodeBatch),

	opListJournal: unary(func(c *call) (*pb.ListRecordsRequest, error) {
		p := c.in.(JournalParams)
		return &pb.ListRecordsRequest{After: p.After, Limit: int32(p.Limit)}, nil
	}, func(g *grpcTransport) rpc[*pb.ListRecordsRequest, *pb.ListRecordsResponse] {
		return g.journal.ListRecords
	},
		func(m *pb.ListRecordsResponse, out any) error {
			return decodePage(m.Items, m.NextCursor, out.(*Page[Record]), decodeRecord)
		}),
	opJournalHead: unary(func(*call) (*pb.GetHeadRequest, error) { return &pb.GetHeadRequest{}, nil },
		func(g *grpcTransport) rpc[*pb.GetHeadRequest, *pb.JournalHead] { return g.journal.GetHead },
		func(m *pb.JournalHead, out any) error {
			*out.(*JournalHead) = JournalHead{Seq: m.Seq, Hash: m.Hash}
			return nil
		}),

	opCreateWebhook: unary(func(c *call) (*pb.CreateWebhookRequest, error) {
		in := c.in.(*CreateWebhookRequest)
		m := &pb.CreateWebhookRequest{Url: in.URL, Description: in.Description}
		for _, t := range in.EventTypes {
			m.EventTypes = append(m.EventTypes, string(t))
		}
		return m, nil
	}, func(g *grpcTransport) rpc[*pb.CreateWebhookRequest, *pb.Webhook] { return g.webhooks.CreateWebhook },
		func(m *pb.Webhook, out any) error {
			o := out.(*WebhookCreated)
			o.Secret = m.Secret
			return decodeWebhook(m, &o.Webhook)
		}),
	opListWebhooks: unary(func(c *call) (*pb.ListWebhooksRequest, error) {
		p := c.in.(ListParams)
		return &pb.ListWebhooksRequest{Limit: int32(p.Limit), Cursor: p.Cursor}, nil
	}, func(g *grpcTransport) rpc[*pb.ListWebhooksRequest, *pb.ListWebhooksResponse] {
		return g.webhooks.ListWebhooks
	},
		func(m *pb.ListWebhooksResponse, out any) error {
			return decodePage(m.Items, m.NextCursor, out.(*Page[Webhook]), decodeWebhook)
		}),
	opGetWebhook: unary(func(c *call) (*pb.GetWebhookRequest, error) { return &pb.GetWebhookRequest{Id: c.id}, nil },
		func(g *grpcTransport) rpc[*pb.GetWebhookRequest, *pb.Webhook] { return g.webhooks.GetWebhook },
		decodeInto(decodeWebhook)),
	opDeleteWebhook: unary(func(c *call) (*pb.DeleteWebhookRequest, error) {
		return &pb.DeleteWebhookRequest{Id: c.id}, nil
	}, func(g *grpcTransport) rpc[*pb.DeleteWebhookRequest, *pb.DeleteWebhookResponse] {
		return g.webhooks.DeleteWebhook
	},
		func(*pb.DeleteWebhookResponse, any) error { return nil }),
	opWebhookDeliveries: unary(func(c *call) (*pb.ListWebhookDeliveriesRequest, error) {
		p := c.in.(ListParams)
		return &pb.ListWebhookDeliveriesRequest{Id: c.id, Limit: int32(p.Limit), Cursor: p.Cursor}, nil
	}, func(g *grpcTransport) rpc[*pb.ListWebhookDeliveriesRequest, *pb.ListWebhookDeliveriesResponse] {
		return g.webhooks.ListWebhookDeliveries
	},
		func(m *pb.ListWebhookDeliveriesResponse, out any) error {
			return decodePage(m.Items, m.NextCursor, out.(*Page[WebhookDelivery]), decodeDelivery)
		}),
	opWebhookDeadLetters: unary(func(c *call) (*pb.ListWebhookDeadLettersRequest, error) {
		p := c.in.(ListParams)
		return &pb.ListWebhookDeadLettersRequest{Id: c.id, Limit: int32(p.Limit), Cursor: p.Cursor}, nil
	}, func(g *grpcTransport) rpc[*pb.ListWebhookDeadLettersRequest, *pb.ListWebhookDeadLettersResponse] {
		return g.webhooks.ListWebhookDeadLetters
	},
		func(m *pb.ListWebhookDeadLettersResponse, out any) error {
			return decodePage(m.Items, m.NextCursor, out.(*Page[WebhookDeadLetter]), decodeDeadLetter)
		}),
	opReplayWebhook: unary(func(c *call) (*pb.ReplayWebhookRequest, error) {
		return &pb.ReplayWebhookRequest{Id: c.id, FromSeq: proto.Uint64(c.in.(*replayRequest).FromSeq)}, nil
	}, func(g *grpcTransport) rpc[*pb.ReplayWebhookRequest, *pb.ReplayWebhookResponse] {
		return g.webhooks.ReplayWebhook
	},
		func(*pb.ReplayWebhookResponse, any) error { return nil }),
	opListFollowers: unary(func(*call) (*pb.ListFollowersRequest, error) { return &pb.ListFollowersRequest{}, nil },
		func(g *grpcTransport) rpc[*pb.ListFollowersRequest, *pb.ListFollowersResponse] {
			return g.followers.ListFollowers
		},
		func(m *pb.ListFollowersResponse, out any) error {
			o := out.(*items[Follower])
			o.Items = make([]Follower, len(m.Items))
			for i, f := range m.Items {
				o.Items[i] = Follower{Name: f.Name, Running: f.Running, Position: f.Position, Delivered: f.Delivered,
					Errors: f.Errors, LastError: f.LastError, LagRecords: f.LagRecords, Lag: seconds(f.LagSeconds)}
			}
			return nil
		}),

	// GET /readyz is grpc.health.v1 Check of the whole server: SERVING exactly when
	// /readyz answers 200. NOT_SERVING does not say why (standby or failed commit), so
	// it reads as unavailable.
	opReadyz: unary(func(*call) (*healthpb.HealthCheckRequest, error) { return &healthpb.HealthCheckRequest{}, nil },
		func(g *grpcTransport) rpc[*healthpb.HealthCheckRequest, *healthpb.HealthCheckResponse] {
			return g.health.Check
		},
		func(m *healthpb.HealthCheckResponse, _ any) error { return nil }),
}

// rpc is a generated client method.
type rpc[Req, Resp proto.Message] func(ctx context.Context, in Req, opts ...grpc.CallOption) (Resp, error)

// unary makes a grpcMethod of typed parts.
func unary[Req, Resp proto.Message](build func(*call) (Req, error), method func(*grpcTransport) rpc[Req, Resp],
	decode func(Resp, any) error) grpcMethod {
	return grpcMethod{
		build: func(c *call) (proto.Message, error) { return build(c) },
		invoke: func(g *grpcTransport, ctx context.Context, req proto.Message, opts ...grpc.CallOption) (proto.Message, error) {
			resp, err := method(g)(ctx, req.(Req), opts...)
			if err != nil {
				return nil, err
			}
			if h, ok := any(resp).(*healthpb.HealthCheckResponse); ok && h.Status != healthpb.HealthCheckResponse_SERVING {
				return nil, &Error{Status: 503, Code: CodeUnavailable, Title: "Service Unavailable",
					Detail: "grpc health: " + h.Status.String()}
			}
			return resp, nil
		},
		decode: func(resp proto.Message, out any) error { return decode(resp.(Resp), out) },
	}
}

// decodeInto decodes a resource message into *T.
func decodeInto[M any, T any](f func(M, *T) error) func(M, any) error {
	return func(m M, out any) error { return f(m, out.(*T)) }
}

func decodePage[M any, T any](ms []M, next string, out *Page[T], f func(M, *T) error) error {
	out.Items, out.NextCursor = make([]T, len(ms)), next
	for i, m := range ms {
		if err := f(m, &out.Items[i]); err != nil {
			return err
		}
	}
	return nil
}

func scopeStrings(s []Scope) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = string(v)
	}
	return out
}

// transferRequestPB is the message of a CreateTransferRequest, with REST's rules: an
// empty ID asks the server for one, and a hold's timeout is whole seconds.
func transferRequestPB(in *CreateTransferRequest) (*pb.CreateTransferRequest, error) {
	m := &pb.CreateTransferRequest{Source: in.Source, Destination: in.Destination, Amount: in.Amount.String(),
		Asset: in.Asset, Kind: string(in.Kind), Reference: in.Reference, Metadata: in.Metadata}
	if in.ID != "" {
		m.Id = proto.String(in.ID)
	}
	if h := in.Hold; h != nil {
		if h.Timeout < 0 || h.Timeout%time.Second != 0 {
			return nil, fmt.Errorf("client: hold timeout %v must be zero or whole seconds", h.Timeout)
		}
		m.Hold = &pb.Hold{TimeoutSeconds: int64(h.Timeout / time.Second)}
	}
	return m, nil
}

// decoder parses a message's strings, keeping the first error.
type decoder struct{ err error }

func (d *decoder) fail(what, s string, err error) {
	if d.err == nil {
		d.err = fmt.Errorf("%s %q: %w", what, s, err)
	}
}

func (d *decoder) amount(s string) Amount {
	a, err := ParseAmount(s)
	if err != nil {
		d.fail("amount", s, err)
	}
	return a
}

func (d *decoder) signed(s string) SignedAmount {
	a, err := ParseSignedAmount(s)
	if err != nil {
		d.fail("amount", s, err)
	}
	return a
}

func (d *decoder) time(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		d.fail("time", s, err)
	}
	return t
}

// optTime is a time that REST writes as null and gRPC as "".
func (d *decoder) optTime(s string) *time.Time {
	if s == "" {
		return nil
	}
	t := d.time(s)
	return &t
}

// metadata is REST's metadata: an object, {} when empty.
func metadataOf(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func decodeAPIKey(m *pb.APIKey, k *APIKey) error {
	var d decoder
	*k = APIKey{ID: m.Id, Name: m.Name, Scopes: make([]Scope, len(m.Scopes)), CreatedAt: d.time(m.CreatedAt)}
	for i, s := range m.Scopes {
		k.Scopes[i] = Scope(s)
	}
	return d.err
}

func decodeAccount(m *pb.Account, a *Account) error {
	var d decoder
	b := m.GetBalance()
	*a = Account{ID: m.Id, Owner: m.Owner, Asset: m.Asset, Kind: AccountKind(m.Kind), AllowNegative: m.AllowNegative,
		Status: AccountStatus(m.Status),
		Balance: Balance{Posted: d.signed(b.GetPosted()), Available: d.signed(b.GetAvailable()),
			PendingDebits: d.amount(b.GetPendingDebits()), PendingCredits: d.amount(b.GetPendingCredits())},
		DebitsPosted: d.amount(m.DebitsPosted), CreditsPosted: d.amount(m.CreditsPosted),
		Metadata: metadataOf(m.Metadata), CreatedAt: d.time(m.CreatedAt)}
	return d.err
}

func decodeTransfer(m *pb.Transfer, t *Transfer) error {
	var d decoder
	*t = Transfer{ID: m.Id, Source: m.Source, Destination: m.Destination, Amount: d.amount(m.Amount),
		Asset: m.Asset, Kind: TransferKind(m.Kind), Status: TransferStatus(m.Status), Reference: m.Reference,
		Metadata: metadataOf(m.Metadata), CreatedAt: d.time(m.CreatedAt), PostedAt: d.optTime(m.PostedAt),
		AmountPosted: d.amount(m.AmountPosted), ExpiresAt: d.optTime(m.ExpiresAt)}
	return d.err
}

func decodeEntry(m *pb.Entry, e *Entry) error {
	var d decoder
	*e = Entry{TransferID: m.TransferId, Direction: Direction(m.Direction), Amount: d.amount(m.Amount),
		Kind: TransferKind(m.Kind), PostedAfter: d.signed(m.PostedAfter), Timestamp: d.time(m.Timestamp)}
	return d.err
}

func decodeRecord(m *pb.Record, r *Record) error {
	var d decoder
	*r = Record{Seq: m.Seq, PrevHash: m.PrevHash, Hash: m.Hash, Timestamp: d.time(m.Timestamp),
		Changes: make([]Change, len(m.Changes))}
	if d.err != nil {
		return d.err
	}
	for i, c := range m.Changes {
		if err := decodeChange(c, &r.Changes[i]); err != nil {
			return err
		}
	}
	return nil
}

func decodeChange(m *pb.Change, c *Change) error {
	var d decoder
	*c = Change{Op: Op(m.Op), Timestamp: d.time(m.Timestamp)}
	if d.err != nil {
		return d.err
	}
	if m.Amount != "" { // transfer changes only, as REST's amount
		a := d.amount(m.Amount)
		c.Amount = &a
	}
	switch {
	case m.Transfer != nil:
		c.Transfer = new(Transfer)
		if err := decodeTransfer(m.Transfer, c.Transfer); err != nil {
			return err
		}
	case m.Account != nil:
		c.Account = new(Account)
		if err := decodeAccount(m.Account, c.Account); err != nil {
			return err
		}
	case m.Asset != nil:
		c.Asset = &Asset{Code: m.Asset.Code, Scale: int(m.Asset.Scale)}
	}
	return d.err
}

// decodeBatch reads an atomic batch's transfers or a non-atomic one's results, whichever
// out asks for.
func decodeBatch(m *pb.CreateTransferBatchResponse, out any) error {
	switch o := out.(type) {
	case *batchTransfers:
		o.Transfers = make([]Transfer, len(m.Transfers))
		for i, t := range m.Transfers {
			if err := decodeTransfer(t, &o.Transfers[i]); err != nil {
				return err
			}
		}
	case *batchResults:
		o.Results = make([]BatchResult, len(m.Results))
		for i, r := range m.Results {
			switch {
			case r.GetTransfer() != nil:
				o.Results[i].Transfer = new(Transfer)
				if err := decodeTransfer(r.GetTransfer(), o.Results[i].Transfer); err != nil {
					return err
				}
			case r.GetError() != nil:
				o.Results[i].Err = &Error{Code: Code(r.GetError().Code), Detail: r.GetError().Detail}
			default:
				return fmt.Errorf("result %d has neither transfer nor error", i)
			}
		}
	default:
		return fmt.Errorf("a batch answer into %T", out)
	}
	return nil
}

// seconds is a number of seconds as a duration, to the nanosecond.
func seconds(f float64) time.Duration { return time.Duration(math.Round(f * float64(time.Second))) }

func decodeWebhook(m *pb.Webhook, w *Webhook) error {
	var d decoder
	st := m.GetStatus()
	*w = Webhook{ID: m.Id, URL: m.Url, EventTypes: make([]EventType, len(m.EventTypes)), Description: m.Description,
		CreatedAt: d.time(m.CreatedAt),
		Status: WebhookStatus{Running: st.GetRunning(),
			Position:   WebhookPosition{Seq: st.GetPosition().GetSeq(), Index: int(st.GetPosition().GetIndex())},
			LagRecords: st.GetLagRecords(), Lag: seconds(st.GetLagSeconds()), Delivered: st.GetDelivered(),
			Breaker: Breaker(st.GetBreaker()), ConsecutiveFailures: int(st.GetConsecutiveFailures()),
			OpenedAt: d.optTime(st.GetOpenedAt()), NextAttemptAt: d.optTime(st.GetNextAttemptAt()),
			RetryingEventID: st.GetRetryingEventId(), Attempts: int(st.GetAttempts()), LastError: st.GetLastError(),
			LastErrorAt: d.optTime(st.GetLastErrorAt()), LastSuccessAt: d.optTime(st.GetLastSuccessAt())}}
	for i, t := range m.EventTypes {
		w.EventTypes[i] = EventType(t)
	}
	return d.err
}

func decodeDelivery(m *pb.WebhookDelivery, w *WebhookDelivery) error {
	var d decoder
	*w = WebhookDelivery{EventID: m.EventId, EventType: EventType(m.EventType), Attempt: int(m.Attempt),
		Outcome: DeliveryOutcome(m.Outcome), Status: int(m.Status), Error: m.Error, Time: d.time(m.Time),
		Duration:      time.Duration(math.Round(m.DurationMs * float64(time.Millisecond))),
		NextAttemptAt: d.optTime(m.NextAttemptAt)}
	return d.err
}

func decodeDeadLetter(m *pb.WebhookDeadLetter, w *WebhookDeadLetter) error {
	var d decoder
	*w = WebhookDeadLetter{EventID: m.EventId, EventType: EventType(m.EventType), JournalSeq: m.JournalSeq,
		JournalIndex: int(m.JournalIndex), Attempts: int(m.Attempts), FirstAttemptAt: d.time(m.FirstAttemptAt),
		DeadLetteredAt: d.time(m.DeadLetteredAt), LastStatus: int(m.LastStatus), LastError: m.LastError}
	return d.err
}

package grpcapi

import (
	"math/big"
	"strconv"

	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	tpwalletv1 "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

// The converters below turn ledger values into their messages with REST's exact text:
// amounts and balances as AppendDecimal writes them, times as journal.AppendTime, and ""
// where REST writes null. Strings and metadata maps are shared with the ledger's values,
// which are immutable snapshots, rather than copied.

// optTime is a time REST writes as null when 0.
func optTime(ns int64) string {
	if ns == 0 {
		return ""
	}
	return journal.FormatTime(ns)
}

// transferPB is the Transfer message of t.
func transferPB(t *ledger.Transfer) *tpwalletv1.Transfer {
	return &tpwalletv1.Transfer{
		Id: t.ID, Source: t.Source, Destination: t.Destination, Amount: t.Amount.String(),
		Asset: t.Asset, Kind: string(t.Kind), Status: string(t.Status), Reference: t.Reference,
		Metadata: t.Metadata, CreatedAt: journal.FormatTime(t.CreatedAt), PostedAt: optTime(t.PostedAt),
		AmountPosted: t.AmountPosted.String(), ExpiresAt: optTime(t.ExpiresAt),
	}
}

// accountPB is the Account message of a.
func accountPB(a *ledger.Account) *tpwalletv1.Account {
	return &tpwalletv1.Account{
		Id: a.ID, Owner: a.Owner, Asset: a.Asset, Kind: string(a.Kind), AllowNegative: a.AllowNegative,
		Status: string(a.Status),
		Balance: &tpwalletv1.Balance{Posted: a.Posted().String(), Available: available(a),
			PendingDebits: a.DebitsPending.String(), PendingCredits: a.CreditsPending.String()},
		DebitsPosted: a.DebitsPosted.String(), CreditsPosted: a.CreditsPosted.String(),
		Metadata: a.Metadata, CreatedAt: journal.FormatTime(a.CreatedAt),
	}
}

// available is credits_posted − debits_posted − pending_debits, as REST writes it: also
// when its magnitude needs 129 bits (an allow_negative account deep below zero with a
// hold), where ledger.Account.Available would not fit.
func available(a *ledger.Account) string {
	if b, ok := a.Posted().Sub(a.DebitsPending); ok {
		return b.String()
	}
	v := bigAmount(a.CreditsPosted)
	v.Sub(v, bigAmount(a.DebitsPosted))
	v.Sub(v, bigAmount(a.DebitsPending))
	return v.String()
}

func bigAmount(a ledger.Amount) *big.Int {
	hi, lo := a.Parts()
	v := new(big.Int).SetUint64(hi)
	return v.Lsh(v, 64).Or(v, new(big.Int).SetUint64(lo))
}

func assetPB(a *ledger.Asset) *tpwalletv1.Asset {
	return &tpwalletv1.Asset{Code: a.Code, Scale: uint32(a.Scale)}
}

func entryPB(e *journal.Entry) *tpwalletv1.Entry {
	return &tpwalletv1.Entry{TransferId: e.TransferID, Direction: e.Direction.String(),
		Amount: e.Amount.String(), Kind: string(e.Kind), PostedAfter: e.PostedAfter.String(),
		Timestamp: journal.FormatTime(e.Time)}
}

// changePB is one change of a record, as journal.AppendChangeJSON writes it.
func changePB(c *ledger.Change) *tpwalletv1.Change {
	m := &tpwalletv1.Change{Op: c.Op.String(), Timestamp: journal.FormatTime(c.Time)}
	switch {
	case c.Transfer != nil:
		m.Amount = c.Amount.String()
		m.Transfer = transferPB(c.Transfer)
	case c.Account != nil:
		m.Account = accountPB(c.Account)
	case c.Asset != nil:
		m.Asset = assetPB(c.Asset)
	}
	return m
}

func recordPB(r *journal.Record) *tpwalletv1.Record {
	m := &tpwalletv1.Record{Seq: r.Seq, PrevHash: r.PrevHash.String(), Hash: r.Hash.String(),
		Timestamp: journal.FormatTime(r.Timestamp), Changes: make([]*tpwalletv1.Change, len(r.Changes))}
	for i := range r.Changes {
		m.Changes[i] = changePB(&r.Changes[i])
	}
	return m
}

// eventPB is e with the attributes of its CloudEvent (events.AppendJSON).
func eventPB(e *events.Event) *tpwalletv1.Event {
	return &tpwalletv1.Event{Specversion: "1.0", Id: e.ID(), Source: events.DefaultSource, Type: e.Type,
		Subject: e.Subject(), Time: journal.FormatTime(e.Change.Time), Journalseq: e.Seq,
		Journalindex: int32(e.Index), Partitionkey: e.Key(), Data: changePB(e.Change)}
}

// transferFields are the fields of a CreateTransferRequest, from the message or from
// the wire (wirein.go).
type transferFields struct {
	hasID                                                   bool // id set, even to ""
	id, source, destination, amount, asset, kind, reference string
	metadata                                                map[string]string
	hold                                                    bool // a hold message, even empty
	timeout                                                 int64
}

// transferRequest checks a CreateTransferRequest as REST checks the body of POST
// /v1/transfers, with the same details, and makes the ledger request. A rejection is an
// invalid_request *ledger.Error.
func transferRequest(t *tpwalletv1.CreateTransferRequest) (ledger.Request, *ledger.Error) {
	f := transferFields{hasID: t.Id != nil, id: t.GetId(), source: t.Source, destination: t.Destination,
		amount: t.Amount, asset: t.Asset, kind: t.Kind, reference: t.Reference, metadata: t.Metadata,
		hold: t.Hold != nil, timeout: t.Hold.GetTimeoutSeconds()}
	return f.request()
}

// request is transferRequest's check of f.
func (f *transferFields) request() (ledger.Request, *ledger.Error) {
	r := ledger.TransferRequest{Source: f.source, Destination: f.destination, Asset: f.asset,
		Kind: ledger.TransferKind(f.kind), Reference: f.reference, Metadata: f.metadata}
	if f.amount != "" {
		a, err := ledger.ParseAmount(f.amount)
		if err != nil {
			return ledger.Request{}, badRequest("amount: " + err.Error())
		}
		r.Amount = a
	}
	if f.hasID {
		if !ledger.ValidID(f.id) {
			return ledger.Request{}, badRequest("id must be 1-64 characters of A-Za-z0-9_.:-")
		}
		r.ID = f.id
	}
	switch {
	case f.source == "" || f.destination == "":
		return ledger.Request{}, badRequest("source and destination are required")
	case f.amount == "":
		return ledger.Request{}, badRequest("amount is required")
	case r.Amount.IsZero():
		return ledger.Request{}, badRequest("amount must be greater than zero")
	}
	if f.hold {
		if f.timeout < 0 || f.timeout > ledger.HoldTimeoutMax {
			return ledger.Request{}, badRequest("hold.timeout_seconds must be 0 (never) to 315360000")
		}
		r.Hold, r.HoldTimeout = true, uint32(f.timeout)
	}
	return ledger.Request{Op: ledger.OpTransfer, Transfer: r}, nil
}

func badRequest(detail string) *ledger.Error {
	return &ledger.Error{Code: ledger.CodeInvalidRequest, Index: -1, Detail: detail}
}

// amount parses an optional amount field: "" is unset.
func amount(s string) (a ledger.Amount, set bool, err error) {
	if s == "" {
		return a, false, nil
	}
	a, err = ledger.ParseAmount(s)
	if err != nil {
		return a, false, invalid("amount: " + err.Error())
	}
	return a, true, nil
}

// quote quotes a client's string for a detail, cut to 40 bytes.
func quote(s string) string {
	if len(s) > 40 {
		return strconv.Quote(s[:40]) + "..."
	}
	return strconv.Quote(s)
}

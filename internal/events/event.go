package events

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// Event types: one per transfer state change and per account or asset change.
const (
	TransferPending         = "transfer.pending"          // a hold was created
	TransferPosted          = "transfer.posted"           // created posted, or a hold posted for good
	TransferPartiallyPosted = "transfer.partially_posted" // a hold posted in part, still pending
	TransferIncreased       = "transfer.increased"        // a hold increased
	TransferVoided          = "transfer.voided"
	TransferExpired         = "transfer.expired"
	AccountCreated          = "account.created"
	AccountFrozen           = "account.frozen"
	AccountUnfrozen         = "account.unfrozen"
	AssetCreated            = "asset.created"
)

// Types lists every event type, in documentation order.
var Types = []string{TransferPending, TransferPosted, TransferPartiallyPosted, TransferIncreased,
	TransferVoided, TransferExpired, AccountCreated, AccountFrozen, AccountUnfrozen, AssetCreated}

// ValidType reports whether t is one of Types.
func ValidType(t string) bool {
	for _, x := range Types {
		if x == t {
			return true
		}
	}
	return false
}

// DefaultSource is the CloudEvents source attribute of every event unless configured.
const DefaultSource = "/tpwallet"

// Event is one change of one journal record.
type Event struct {
	Seq    uint64 // the record's sequence number
	Index  int    // the change's position in the record
	Type   string
	Change *ledger.Change // as in the record: read-only
}

// ID is the event's stable id, "<seq>-<index>".
func (e *Event) ID() string { return FormatID(e.Seq, e.Index) }

// FormatID is the id of the change at index in record seq.
func FormatID(seq uint64, index int) string {
	return strconv.FormatUint(seq, 10) + "-" + strconv.Itoa(index)
}

// Subject is what the event is about: the transfer id, account id or asset code.
func (e *Event) Subject() string {
	c := e.Change
	switch {
	case c.Transfer != nil:
		return c.Transfer.ID
	case c.Account != nil:
		return c.Account.ID
	case c.Asset != nil:
		return c.Asset.Code
	}
	return ""
}

// Key is the event's partition key: the source account of a transfer (so that a consumer
// partitioned by key sees each account's outgoing transfers in order), the account of an
// account change, the asset code of an asset change.
func (e *Event) Key() string {
	c := e.Change
	switch {
	case c.Transfer != nil:
		return c.Transfer.Source
	case c.Account != nil:
		return c.Account.ID
	case c.Asset != nil:
		return c.Asset.Code
	}
	return ""
}

// Accounts returns the accounts the event concerns: source and destination of a
// transfer, the account of an account change, none for an asset.
func (e *Event) Accounts() []string {
	c := e.Change
	switch {
	case c.Transfer != nil:
		return []string{c.Transfer.Source, c.Transfer.Destination}
	case c.Account != nil:
		return []string{c.Account.ID}
	}
	return nil
}

// TypeOf returns the event type of a change.
func TypeOf(c *ledger.Change) string {
	switch c.Op {
	case ledger.ChangeCreate:
		if c.Transfer.Status == ledger.TransferPending {
			return TransferPending
		}
		return TransferPosted
	case ledger.ChangePost:
		if c.Transfer.Status == ledger.TransferPending {
			return TransferPartiallyPosted
		}
		return TransferPosted
	case ledger.ChangeIncrease:
		return TransferIncreased
	case ledger.ChangeVoid:
		return TransferVoided
	case ledger.ChangeExpire:
		return TransferExpired
	case ledger.ChangeAccountCreate:
		return AccountCreated
	case ledger.ChangeAccountFreeze:
		return AccountFrozen
	case ledger.ChangeAccountUnfreeze:
		return AccountUnfrozen
	case ledger.ChangeAssetCreate:
		return AssetCreated
	}
	return "unknown"
}

// Of appends to dst the events of r from change index from on.
func Of(dst []Event, r *journal.Record, from int) []Event {
	for i := from; i < len(r.Changes); i++ {
		c := &r.Changes[i]
		dst = append(dst, Event{Seq: r.Seq, Index: i, Type: TypeOf(c), Change: c})
	}
	return dst
}

// AppendJSON appends e as a CloudEvents 1.0 JSON event (structured mode):
//
//	{"specversion":"1.0","id":"12-0","source":"/tpwallet","type":"transfer.posted",
//	 "subject":"<transfer id>","time":"...","datacontenttype":"application/json",
//	 "journalseq":12,"journalindex":0,"partitionkey":"<source account>","data":{...}}
//
// data is the change exactly as GET /v1/journal serves it.
func AppendJSON(dst []byte, e *Event, source string) []byte {
	dst = append(dst, `{"specversion":"1.0","id":"`...)
	dst = strconv.AppendUint(dst, e.Seq, 10)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, int64(e.Index), 10)
	dst = append(dst, `","source":`...)
	dst = journal.AppendJSONString(dst, source)
	dst = append(dst, `,"type":"`...)
	dst = append(dst, e.Type...) // plain ASCII
	dst = append(dst, `","subject":`...)
	dst = journal.AppendJSONString(dst, e.Subject())
	dst = append(dst, `,"time":"`...)
	dst = journal.AppendTime(dst, e.Change.Time)
	dst = append(dst, `","datacontenttype":"application/json","journalseq":`...)
	dst = strconv.AppendUint(dst, e.Seq, 10)
	dst = append(dst, `,"journalindex":`...)
	dst = strconv.AppendInt(dst, int64(e.Index), 10)
	dst = append(dst, `,"partitionkey":`...)
	dst = journal.AppendJSONString(dst, e.Key())
	dst = append(dst, `,"data":`...)
	dst = journal.AppendChangeJSON(dst, e.Change)
	return append(dst, '}')
}

// Position is where a follower is: the next event it has to deliver, change Index of
// record Seq. A fresh follower starts at {Seq: 1}.
type Position struct {
	Seq   uint64 `json:"seq"`
	Index int    `json:"index"`
}

// Start is the position of the first event of the journal.
var Start = Position{Seq: 1}

// Less orders positions.
func (p Position) Less(q Position) bool {
	return p.Seq < q.Seq || p.Seq == q.Seq && p.Index < q.Index
}

// Next is the position just after event (seq, index).
func Next(seq uint64, index int) Position { return Position{Seq: seq, Index: index + 1} }

// ErrBadPosition is returned by ParseAfter for text that is neither a sequence number nor
// an event id.
var ErrBadPosition = errors.New("not a journal sequence number or an event id")

// ParseAfter reads an "after" cursor: a journal sequence number (every event of records up
// to it is skipped) or an event id "<seq>-<index>" (resume just after that event).
func ParseAfter(s string) (Position, error) {
	seqText, indexText, isID := strings.Cut(s, "-")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if err != nil || seqText == "" || seqText[0] == '+' || seq == ^uint64(0) {
		return Position{}, fmt.Errorf("%q: %w", s, ErrBadPosition)
	}
	if !isID {
		return Position{Seq: seq + 1}, nil
	}
	index, err := strconv.Atoi(indexText)
	if err != nil || indexText == "" || indexText[0] == '+' || indexText[0] == '-' || seq == 0 || index >= 1<<30 {
		return Position{}, fmt.Errorf("%q: %w", s, ErrBadPosition)
	}
	return Next(seq, index), nil
}

// Cursor is the "after" text that resumes at p: the id of the event before it, or the
// sequence number of the record before it when p is a record's first event.
func (p Position) Cursor() string {
	if p.Index == 0 {
		return strconv.FormatUint(p.Seq-1, 10)
	}
	return FormatID(p.Seq, p.Index-1)
}

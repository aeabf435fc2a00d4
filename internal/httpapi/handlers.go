package httpapi

import (
	"crypto/sha256"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/service"
)

// build turns a request body (nil when empty and allowed) into a command.
type build func(r *http.Request, body []byte) (ledger.Command, error)

// write runs the common path of every POST that changes the ledger: body limits and media
// type, strict decoding, Idempotency-Key, submission, and the answer.
func (s *Server) write(w http.ResponseWriter, r *http.Request, max int64, allowEmpty bool, b build, render service.Render) {
	span := s.startDecode(r)
	cmd, idem, err := decodeWrite(w, r, max, allowEmpty, b)
	if span != nil {
		endDecode(span, cmd, err)
	}
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	ans, err := s.svc.Write(r.Context(), principal(r), idem, cmd, render)
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	if ans.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
		s.metrics.Replay()
	}
	if sw, ok := w.(*statusWriter); ok && len(ans.Results) == 1 {
		sw.code = ans.Results[0].Code // a rendered rejection is a problem too (for the span)
	}
	writeRaw(w, ans.Status, ans.Body, ans.Status >= 400)
}

// decodeWrite reads and checks a write's body and Idempotency-Key and builds its command.
func decodeWrite(w http.ResponseWriter, r *http.Request, max int64, allowEmpty bool, b build) (ledger.Command, *service.IdemRequest, error) {
	body, err := readBody(w, r, max, allowEmpty)
	if err != nil {
		return ledger.Command{}, nil, err
	}
	var idem *service.IdemRequest
	if key, ok := r.Header["Idempotency-Key"]; ok {
		if len(key) != 1 || !validIdemKey(key[0]) {
			return ledger.Command{}, nil, ledger.Errorf(ledger.CodeInvalidRequest,
				"Idempotency-Key must be 1-255 printable ASCII characters")
		}
		h := sha256.New()
		h.Write([]byte(r.Method + "\n" + r.URL.Path + "\n"))
		h.Write(body)
		idem = &service.IdemRequest{Key: key[0]}
		h.Sum(idem.Hash[:0])
	}
	cmd, err := b(r, body)
	return cmd, idem, err
}

func validIdemKey(k string) bool {
	if len(k) == 0 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// keep says whether an answer may be replayed (api.md: not 5xx or 429).
func keep(status int) bool { return status < 500 && status != http.StatusTooManyRequests }

// renderOne answers a single-request command: the object on success, else a problem.
func renderOne(okStatus int) service.Render {
	return func(res []ledger.Result) (int, []byte, bool) {
		r := res[0]
		if r.Code != ledger.CodeOK {
			p := problemOf(r.Code, r.Detail)
			return p.Status, p.body(), keep(p.Status)
		}
		status := okStatus
		var body []byte
		switch {
		case r.Transfer != nil:
			if r.Existing {
				status = http.StatusOK
			}
			body = journal.AppendTransferJSON(nil, r.Transfer)
		case r.Account != nil:
			body = journal.AppendAccountJSON(nil, r.Account)
		case r.Asset != nil:
			body = journal.AppendAssetJSON(nil, r.Asset)
		}
		return status, body, true
	}
}

func one(req ledger.Request) ledger.Command {
	return ledger.Command{Requests: []ledger.Request{req}}
}

func (s *Server) createTransfer(w http.ResponseWriter, r *http.Request) {
	s.write(w, r, bodyMax, false, func(_ *http.Request, body []byte) (ledger.Command, error) {
		t, err := decodeTransfer(body) // decodeStrict's rules, without reflection (fastjson.go)
		if err != nil {
			return ledger.Command{}, err
		}
		req, err := t.request()
		return one(req), err
	}, renderOne(http.StatusCreated))
}

func (s *Server) post(w http.ResponseWriter, r *http.Request) {
	s.write(w, r, bodyMax, true, func(r *http.Request, body []byte) (ledger.Command, error) {
		req := ledger.Request{Op: ledger.OpPost, TransferID: r.PathValue("id")}
		if body != nil {
			var p postJSON
			if err := decodeStrict(body, &p); err != nil {
				return ledger.Command{}, err
			}
			req.Amount, req.AmountSet = p.Amount.v, p.Amount.set
			req.NotFinal = p.Final != nil && !*p.Final
			if req.NotFinal && !req.AmountSet {
				return ledger.Command{}, invalid(`a post with "final": false needs an amount`)
			}
		}
		return one(req), nil
	}, renderOne(http.StatusOK))
}

func (s *Server) increase(w http.ResponseWriter, r *http.Request) {
	s.write(w, r, bodyMax, false, func(r *http.Request, body []byte) (ledger.Command, error) {
		var p increaseJSON
		if err := decodeStrict(body, &p); err != nil {
			return ledger.Command{}, err
		}
		if !p.Amount.set {
			return ledger.Command{}, invalid("amount is required")
		}
		return one(ledger.Request{Op: ledger.OpIncrease, TransferID: r.PathValue("id"), Amount: p.Amount.v}), nil
	}, renderOne(http.StatusOK))
}

func (s *Server) void(w http.ResponseWriter, r *http.Request) {
	s.write(w, r, bodyMax, true, func(r *http.Request, body []byte) (ledger.Command, error) {
		if body != nil {
			var empty struct{}
			if err := decodeStrict(body, &empty); err != nil {
				return ledger.Command{}, err
			}
		}
		return one(ledger.Request{Op: ledger.OpVoid, TransferID: r.PathValue("id")}), nil
	}, renderOne(http.StatusOK))
}

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request) {
	s.write(w, r, bodyMax, false, func(_ *http.Request, body []byte) (ledger.Command, error) {
		var a accountJSON
		if err := decodeStrict(body, &a); err != nil {
			return ledger.Command{}, err
		}
		req := ledger.AccountRequest{Owner: a.Owner, Asset: a.Asset, Kind: ledger.AccountKind(a.Kind),
			AllowNegative: a.AllowNegative, Metadata: a.Metadata}
		if a.ID != nil {
			if !ledger.ValidID(*a.ID) {
				return ledger.Command{}, invalid("id must be 1-64 characters of A-Za-z0-9_.:-")
			}
			req.ID = *a.ID
		}
		if a.Asset == "" {
			return ledger.Command{}, invalid("asset is required")
		}
		return one(ledger.Request{Op: ledger.OpCreateAccount, Account: req}), nil
	}, renderOne(http.StatusCreated))
}

func (s *Server) freeze(w http.ResponseWriter, r *http.Request) { s.setStatus(w, r, ledger.OpFreeze) }
func (s *Server) unfreeze(w http.ResponseWriter, r *http.Request) {
	s.setStatus(w, r, ledger.OpUnfreeze)
}

func (s *Server) setStatus(w http.ResponseWriter, r *http.Request, op ledger.Op) {
	s.write(w, r, bodyMax, true, func(r *http.Request, body []byte) (ledger.Command, error) {
		if body != nil {
			var empty struct{}
			if err := decodeStrict(body, &empty); err != nil {
				return ledger.Command{}, err
			}
		}
		return one(ledger.Request{Op: op, AccountID: r.PathValue("id")}), nil
	}, renderOne(http.StatusOK))
}

func (s *Server) createAsset(w http.ResponseWriter, r *http.Request) {
	s.write(w, r, bodyMax, false, func(_ *http.Request, body []byte) (ledger.Command, error) {
		var a assetJSON
		if err := decodeStrict(body, &a); err != nil {
			return ledger.Command{}, err
		}
		if a.Scale == nil || *a.Scale < 0 || *a.Scale > ledger.AssetScaleMax || !ledger.ValidAssetCode(a.Code) {
			return ledger.Command{}, invalid("code must be 2-16 characters of A-Z0-9 and scale 0-18")
		}
		return one(ledger.Request{Op: ledger.OpCreateAsset, Asset: ledger.Asset{Code: a.Code, Scale: uint8(*a.Scale)}}), nil
	}, renderOne(http.StatusCreated))
}

func (s *Server) listAssets(w http.ResponseWriter, r *http.Request) {
	assets, err := s.svc.Assets(r.Context())
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	b := []byte(`{"items":[`)
	for i := range assets {
		if i > 0 {
			b = append(b, ',')
		}
		b = journal.AppendAssetJSON(b, &assets[i])
	}
	writeRaw(w, http.StatusOK, append(b, "]}"...), false)
}

// readErr maps store read errors: not found to the given code, bad cursor to 400.
func (s *Server) readErr(err error, notFound ledger.Code) Problem {
	switch {
	case errors.Is(err, engine.ErrNotFound):
		return problemOf(notFound, "")
	case errors.Is(err, engine.ErrBadCursor):
		return problemOf(ledger.CodeInvalidRequest, "the cursor is not one this server made")
	}
	s.metrics.StoreError("read")
	return problemFromError(err)
}

func notFoundDetail(p Problem) Problem {
	if p.Detail == "" {
		switch p.Code {
		case ledger.CodeAccountNotFound:
			p.Detail = "no account with that id"
		case ledger.CodeTransferNotFound:
			p.Detail = "no transfer with that id"
		}
	}
	return p
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) {
	a, err := s.svc.Store().Account(r.Context(), r.PathValue("id"))
	if err != nil {
		writeProblem(w, notFoundDetail(s.readErr(err, ledger.CodeAccountNotFound)))
		return
	}
	writeRaw(w, http.StatusOK, journal.AppendAccountJSON(nil, a), false)
}

func (s *Server) listAccounts(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := page(r)
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	items, next, err := s.svc.Store().Accounts(r.Context(), r.URL.Query().Get("owner"), cursor, limit)
	if err != nil {
		writeProblem(w, s.readErr(err, ledger.CodeNotFound))
		return
	}
	writePage(w, len(items), func(b []byte, i int) []byte { return journal.AppendAccountJSON(b, items[i]) }, next)
}

func writePage(w http.ResponseWriter, n int, item func([]byte, int) []byte, next string) {
	b := []byte(`{"items":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = item(b, i)
	}
	b = append(b, `],"next_cursor":`...)
	b = strconv.AppendQuote(b, next)
	writeRaw(w, http.StatusOK, append(b, '}'), false)
}

// accountExists answers 404 account_not_found and returns false when there is no such account.
func (s *Server) accountExists(w http.ResponseWriter, r *http.Request, id string) bool {
	if _, err := s.svc.Store().Account(r.Context(), id); err != nil {
		writeProblem(w, notFoundDetail(s.readErr(err, ledger.CodeAccountNotFound)))
		return false
	}
	return true
}

func (s *Server) entries(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := page(r)
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	id := r.PathValue("id")
	if !s.accountExists(w, r, id) {
		return
	}
	items, next, err := s.svc.Store().Entries(r.Context(), id, cursor, limit)
	if err != nil {
		writeProblem(w, s.readErr(err, ledger.CodeAccountNotFound))
		return
	}
	writePage(w, len(items), func(b []byte, i int) []byte { return appendEntryJSON(b, &items[i]) }, next)
}

func appendEntryJSON(b []byte, e *journal.Entry) []byte {
	b = append(b, `{"amount":"`...)
	b = e.Amount.AppendDecimal(b)
	b = append(b, `","direction":"`...)
	b = append(b, e.Direction.String()...)
	b = append(b, `","kind":"`...)
	b = append(b, e.Kind...)
	b = append(b, `","posted_after":"`...)
	b = e.PostedAfter.AppendDecimal(b)
	b = append(b, `","timestamp":"`...)
	b = journal.AppendTime(b, e.Time)
	b = append(b, `","transfer_id":`...)
	b = strconv.AppendQuote(b, e.TransferID)
	return append(b, '}')
}

func (s *Server) balanceAt(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	q := r.URL.Query()
	// Without ?at= the answer is the current balance: every entry counts, also those the
	// engine stamped after the wall clock's now (its times only increase, so after a restart
	// on a clock that went back they are ahead of it).
	at, upTo := time.Now().UnixNano(), int64(math.MaxInt64)
	if q.Has("at") {
		t, err := journal.ParseTime(q.Get("at"))
		if err != nil {
			writeProblem(w, problemOf(ledger.CodeInvalidRequest, "at must be an RFC 3339 time"))
			return
		}
		at, upTo = t, t
	}
	if !s.accountExists(w, r, id) {
		return
	}
	bal, err := s.svc.Store().BalanceAt(r.Context(), id, upTo)
	if err != nil {
		writeProblem(w, s.readErr(err, ledger.CodeAccountNotFound))
		return
	}
	b := []byte(`{"account_id":`)
	b = strconv.AppendQuote(b, id)
	b = append(b, `,"at":"`...)
	b = journal.AppendTime(b, at)
	b = append(b, `","posted":"`...)
	b = bal.AppendDecimal(b)
	writeRaw(w, http.StatusOK, append(b, `"}`...), false)
}

func (s *Server) getTransfer(w http.ResponseWriter, r *http.Request) {
	t, err := s.svc.Store().Transfer(r.Context(), r.PathValue("id"))
	if err != nil {
		writeProblem(w, notFoundDetail(s.readErr(err, ledger.CodeTransferNotFound)))
		return
	}
	writeRaw(w, http.StatusOK, journal.AppendTransferJSON(nil, t), false)
}

func (s *Server) listTransfers(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := page(r)
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	account := r.URL.Query().Get("account")
	if account != "" && !s.accountExists(w, r, account) {
		return
	}
	items, next, err := s.svc.Store().Transfers(r.Context(), account, cursor, limit)
	if err != nil {
		writeProblem(w, s.readErr(err, ledger.CodeNotFound))
		return
	}
	writePage(w, len(items), func(b []byte, i int) []byte { return journal.AppendTransferJSON(b, items[i]) }, next)
}

func (s *Server) journal(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, _, err := page(r)
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	var after uint64
	if q.Has("after") {
		after, err = strconv.ParseUint(q.Get("after"), 10, 64)
		if err != nil {
			writeProblem(w, problemOf(ledger.CodeInvalidRequest, "after must be a journal seq"))
			return
		}
	}
	recs, err := s.svc.Store().Journal(r.Context(), after, limit)
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	next := ""
	if len(recs) == limit {
		next = strconv.FormatUint(recs[len(recs)-1].Seq, 10)
	}
	writePage(w, len(recs), func(b []byte, i int) []byte { return journal.AppendRecordJSON(b, recs[i]) }, next)
}

func (s *Server) journalHead(w http.ResponseWriter, r *http.Request) {
	h, err := s.svc.Store().Head(r.Context())
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	b := []byte(`{"hash":"`)
	b = append(b, h.Hash.String()...)
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, h.Seq, 10)
	writeRaw(w, http.StatusOK, append(b, '}'), false)
}

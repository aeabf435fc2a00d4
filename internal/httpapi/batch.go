package httpapi

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/service"
)

// batch is POST /v1/transfers/batch: atomic (all or none) or not (each on its own).
func (s *Server) batch(w http.ResponseWriter, r *http.Request) {
	var (
		atomic  bool
		invalid []BatchError // malformed items, by their index in the request
		index   []int        // request index of each submitted request
		n       int
	)
	s.write(w, r, batchBodyMax, false, func(_ *http.Request, body []byte) (ledger.Command, error) {
		// decodeBatch and decodeTransfer follow decodeStrict's rules for batchJSON and
		// transferJSON, without reflection (fastjson.go).
		atomicp, items, err := decodeBatch(body)
		if err != nil {
			return ledger.Command{}, err
		}
		switch {
		case atomicp == nil:
			return ledger.Command{}, invalidf("atomic is required")
		case len(items) == 0:
			return ledger.Command{}, invalidf("transfers must hold 1 to 8190 transfers")
		case len(items) > ledger.BatchTransfersMax:
			return ledger.Command{}, ledger.Errorf(ledger.CodeBatchTooLarge, "a batch holds at most 8190 transfers")
		}
		atomic, n = *atomicp, len(items)
		cmd := ledger.Command{Atomic: atomic, Requests: make([]ledger.Request, 0, n)}
		for i, raw := range items {
			t, err := decodeTransfer(raw)
			var req ledger.Request
			if err == nil {
				req, err = t.request()
			}
			if err != nil {
				invalid = append(invalid, BatchError{Index: i, Code: ledger.CodeOf(err), Detail: detailOf(err)})
				continue
			}
			cmd.Requests = append(cmd.Requests, req)
			index = append(index, i)
		}
		if atomic && len(invalid) > 0 {
			// Nothing may apply: submit nothing, answer with the malformed items.
			cmd.Requests = nil
		}
		return cmd, nil
	}, func(res []ledger.Result) (int, []byte, bool) {
		if atomic {
			return renderAtomic(res, invalid, index)
		}
		return renderResults(res, invalid, index, n)
	})
}

func invalidf(format string, args ...any) error { return invalid(format, args...) }

func detailOf(err error) string {
	if e, ok := err.(*ledger.Error); ok {
		return e.Detail
	}
	return "malformed transfer"
}

func renderAtomic(res []ledger.Result, bad []BatchError, index []int) (int, []byte, bool) {
	errs := bad
	for i, r := range res {
		if r.Code != ledger.CodeOK {
			errs = append(errs, BatchError{Index: index[i], Code: r.Code, Detail: r.Detail})
		}
	}
	if len(errs) > 0 {
		p := problemOf(ledger.CodeBatchFailed, "no transfer of the batch was applied")
		p.Errors = errs
		return p.Status, p.body(), true
	}
	b := []byte(`{"transfers":[`)
	for i := range res {
		if i > 0 {
			b = append(b, ',')
		}
		b = journal.AppendTransferJSON(b, res[i].Transfer)
	}
	return http.StatusCreated, append(b, "]}"...), true
}

func renderResults(res []ledger.Result, bad []BatchError, index []int, n int) (int, []byte, bool) {
	out := make([][]byte, n)
	for _, e := range bad {
		out[e.Index] = errorItem(e.Code, e.Detail)
	}
	for i, r := range res {
		if r.Code != ledger.CodeOK {
			out[index[i]] = errorItem(r.Code, r.Detail)
			continue
		}
		b := []byte(`{"transfer":`)
		b = journal.AppendTransferJSON(b, r.Transfer)
		out[index[i]] = append(b, '}')
	}
	b := []byte(`{"results":[`)
	for i, item := range out {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, item...)
	}
	return http.StatusOK, append(b, "]}"...), true
}

func errorItem(code ledger.Code, detail string) []byte {
	b := []byte(`{"error":{"code":`)
	b = strconv.AppendQuote(b, string(code))
	b = append(b, `,"detail":`...)
	d, _ := json.Marshal(detail)
	b = append(b, d...)
	return append(b, "}}"...)
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, bodyMax, false)
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	var k apiKeyJSON
	if err := decodeStrict(body, &k); err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	key, err := s.svc.CreateAPIKey(r.Context(), k.Name, k.Scopes)
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	writeRaw(w, http.StatusCreated, apiKeyBody(key), false)
}

func apiKeyBody(k service.APIKey) []byte {
	v := map[string]any{"id": k.ID, "name": k.Name, "scopes": k.Scopes,
		"created_at": journal.FormatTime(k.CreatedAt)}
	if k.Secret != "" {
		v["key"] = string(k.Secret)
	}
	b, _ := json.Marshal(v)
	return b
}

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := page(r)
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	keys, err := s.svc.APIKeys(r.Context()) // ordered by id
	if err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	// The cursor is the id of the last key of the page before: "key_" and 16 hex digits.
	if cursor != "" {
		if h, ok := strings.CutPrefix(cursor, "key_"); !ok || len(h) != 16 || strings.Trim(h, "0123456789abcdef") != "" {
			writeProblem(w, problemOf(ledger.CodeInvalidRequest, "the cursor is not one this server made"))
			return
		}
		keys = keys[sort.Search(len(keys), func(i int) bool { return keys[i].ID > cursor }):]
	}
	next := ""
	if len(keys) > limit {
		keys = keys[:limit]
	}
	if len(keys) == limit {
		next = keys[limit-1].ID
	}
	writePage(w, len(keys), func(b []byte, i int) []byte { return append(b, apiKeyBody(keys[i])...) }, next)
}

func (s *Server) deleteAPIKey(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.RevokeAPIKey(r.Context(), r.PathValue("id")); err != nil {
		writeProblem(w, problemFromError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

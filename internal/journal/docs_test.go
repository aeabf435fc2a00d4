package journal_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tpwallet/tpwallet/internal/journal"
)

// docsJournal returns docs/journal.md.
func docsJournal(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "journal.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// codeBlock returns the first fenced block of the language (the word after the opening
// fence; "" for none) whose text contains marker.
func codeBlock(t *testing.T, doc, lang, marker string) string {
	t.Helper()
	var block []string
	in, blockLang := false, ""
	for _, line := range strings.Split(doc, "\n") {
		switch {
		case !in && strings.HasPrefix(line, "```"):
			in, blockLang, block = true, strings.TrimPrefix(line, "```"), block[:0]
		case in && line == "```":
			in = false
			if text := strings.Join(block, "\n") + "\n"; blockLang == lang && strings.Contains(text, marker) {
				return text
			}
		case in:
			block = append(block, line)
		}
	}
	t.Fatalf("docs/journal.md has no %q block with %q", lang, marker)
	return ""
}

// TestDocsExample checks the example record of docs/journal.md: its hash, and the canonical
// bytes and their length shown for it.
func TestDocsExample(t *testing.T) {
	doc := docsJournal(t)
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(codeBlock(t, doc, "json", `"prev_hash"`))); err != nil {
		t.Fatal(err)
	}
	r := fromJSON(t, compact.Bytes())
	if got := journal.RecordHash(r); got != r.Hash {
		t.Errorf("example: hash is %s, the document says %s", got, r.Hash)
	}
	canonical := strings.TrimSpace(codeBlock(t, doc, "", `{"changes":`))
	if want := string(journal.AppendHashedJSON(nil, r)); canonical != want {
		t.Errorf("canonical bytes in the document:\n%s\nwant\n%s", canonical, want)
	}
	if sha256.Sum256([]byte(canonical)) != r.Hash {
		t.Errorf("the canonical bytes shown do not hash to the example's hash")
	}
	if m := regexp.MustCompile(`over these ([0-9,]+) bytes`).FindStringSubmatch(doc); m == nil ||
		m[1] != strconv.Itoa(len(canonical)) {
		t.Errorf("the document gives the length as %v, want %d", m, len(canonical))
	}
}

// auditCase is a journal the auditors of docs/journal.md are run against.
type auditCase struct {
	name string
	recs []*journal.Record // what GET /v1/journal serves
	head journal.Head      // what GET /v1/journal/head serves
	want string            // in the output; "ok: ..." means success, anything else failure
}

// auditCases are the rich chain as it is, and broken copies.
func auditCases(t *testing.T) []auditCase {
	orig := richChain(t).recs
	headOf := func(r *journal.Record) journal.Head { return journal.Head{Seq: r.Seq, Hash: r.Hash} }
	last := orig[len(orig)-1]
	edited := copyRecords(t, orig)
	edited[4].Changes[0].Transfer.Metadata = map[string]string{"quote": "changed"}
	relinked := copyRecords(t, orig)
	relinked[6].PrevHash[0] ^= 1
	journal.Seal(relinked[6])
	return []auditCase{
		{"valid", orig, headOf(last), fmt.Sprintf("ok: %d records, head %s", last.Seq, last.Hash)},
		{"edited", edited, headOf(last), "record 5: hash"},
		{"relinked", relinked, headOf(last), "record 7: prev_hash"},
		{"truncated", orig[:len(orig)-1], headOf(last), "before the head"},
		{"other head", orig, journal.Head{Seq: 3, Hash: last.Hash}, "record 3: hash"},
		{"empty", nil, journal.Head{}, "ok: 0 records, head " + strings.Repeat("0", 64)},
	}
}

// fakeAPI serves GET /v1/journal and /v1/journal/head for c, at most 4 records a page so
// that the auditors page.
func fakeAPI(t *testing.T, c auditCase) *httptest.Server {
	t.Helper()
	recs := c.recs
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/journal/head", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"seq":%d,"hash":"%s"}`, c.head.Seq, c.head.Hash)
	})
	mux.HandleFunc("GET /v1/journal", func(w http.ResponseWriter, r *http.Request) {
		after, err1 := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
		limit, err2 := strconv.Atoi(r.URL.Query().Get("limit"))
		if err1 != nil || err2 != nil || limit < 1 || limit > 1000 {
			http.Error(w, "bad query", http.StatusBadRequest)
			return
		}
		b := []byte(`{"items":[`)
		n, last := 0, after
		for _, rec := range recs {
			if rec.Seq > after && n < min(limit, 4) {
				if n > 0 {
					b = append(b, ',')
				}
				b = journal.AppendRecordJSON(b, rec)
				n++
				last = rec.Seq
			}
		}
		if n == 0 {
			last = 0
		}
		cursor := ""
		if last > 0 {
			cursor = strconv.FormatUint(last, 10)
		}
		b = fmt.Appendf(b, `],"next_cursor":"%s"}`, cursor)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer test-key" {
			http.Error(w, "unauthenticated", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func runAuditor(t *testing.T, cmd *exec.Cmd, srv *httptest.Server, want string) {
	t.Helper()
	cmd.Env = append(os.Environ(), "TPWALLET_URL="+srv.URL, "TPWALLET_KEY=test-key", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if strings.HasPrefix(want, "ok: ") {
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("got %v:\n%s\nwant success with %q", err, out, want)
		}
		return
	}
	if err == nil || !strings.Contains(string(out), want) {
		t.Errorf("got %v:\n%s\nwant failure with %q", err, out, want)
	}
}

// TestDocsPythonAuditor runs the Python program of docs/journal.md against a fake API. It
// fails if python3 is missing.
func TestDocsPythonAuditor(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed to test the auditor of docs/journal.md: %v", err)
	}
	script := filepath.Join(t.TempDir(), "audit.py")
	if err := os.WriteFile(script, []byte(codeBlock(t, docsJournal(t), "python", "#!/usr/bin/env python3")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range auditCases(t) {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			runAuditor(t, exec.Command(python, script), fakeAPI(t, tc), tc.want)
		})
	}
}

// TestDocsGoAuditor builds and runs the Go program of docs/journal.md against a fake API.
func TestDocsGoAuditor(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to test the auditor of docs/journal.md: %v", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "audit.go")
	if err := os.WriteFile(src, []byte(codeBlock(t, docsJournal(t), "go", "package main")), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "audit")
	build := exec.Command(goTool, "build", "-o", bin, src)
	build.Dir, build.Env = dir, append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build of the documented auditor: %v\n%s", err, out)
	}
	for _, tc := range auditCases(t) {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			runAuditor(t, exec.Command(bin), fakeAPI(t, tc), tc.want)
		})
	}
}

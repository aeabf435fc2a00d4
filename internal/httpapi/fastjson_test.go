package httpapi

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tpwallet/tpwallet/internal/ledger"
)

// The fast decoders (fastjson.go) must behave exactly as decodeStrict: same accept or
// reject, same code, equal values. These tests and the fuzz targets hold them to it on
// tricky inputs and on whatever the fuzzer makes.

// trickyTransfers are bodies where encoding/json's rules are easy to get wrong.
var trickyTransfers = []string{
	// valid, all fields, whitespace everywhere JSON allows
	`{"source":"alice","destination":"bob","amount":"1"}`,
	`{"id":"t-1","source":"alice","destination":"bob","amount":"250","asset":"USD","kind":"p2m","reference":"order-42","metadata":{"a":"b"},"hold":{"timeout_seconds":600}}`,
	" \t\r\n{ \t\r\n\"source\" \t\r\n: \t\r\n\"a\" \t\r\n, \"destination\":\"b\",\"amount\":\"1\",\"metadata\": { \"k\" : \"v\" , \"k2\" : null } , \"hold\" : { \"timeout_seconds\" : 5 } } \t\r\n",
	`{}`, `null`, ` null `, "\nnull\n", `nul`, `nullx`, `null null`, `nULL`, `{}{}`, `{} x`, `{}]`, `{},`,
	// top-level values of other types, empty and broken bodies
	``, ` `, `[]`, `[{}]`, `"x"`, `1`, `-1`, `true`, `false`, `{`, `}`, `{"`, `{"source"`, `{"source":`,
	`{"source":"a"`, `{"source":"a",}`, `{,}`, `{"source":"a",,"kind":"p2p"}`, `{"source" "a"}`, `{"source":"a" "kind":"b"}`,
	"\xef\xbb\xbf{}", "{}\x00", "\x00{}", `{"source":"a"}/`, `{"source":"a"}//x`,
	// amounts
	`{"amount":"340282366920938463463374607431768211455"}`, `{"amount":"340282366920938463463374607431768211456"}`,
	`{"amount":"3402823669209384634633746074317682114550"}`, `{"amount":"00"}`, `{"amount":"0"}`, `{"amount":""}`,
	`{"amount":1}`, `{"amount":"01"}`, `{"amount":"-1"}`, `{"amount":"+1"}`, `{"amount":"1e3"}`, `{"amount":"1.0"}`,
	`{"amount":" 1"}`, `{"amount":null}`, `{"amount":true}`, `{"amount":{}}`, `{"amount":[]}`, `{"amount":["1"]}`,
	`{"amount":"\u0031\u0032"}`, `{"amount":"1\u0000"}`, `{"amount":"\uff11"}`, "{\"amount\":\"1\xff\"}",
	`{"amount":"1","amount":"2"}`, `{"amount":"1","Amount":"2"}`, `{"AMOUNT":"1"}`, `{"amount":1e400}`,
	`{"amount":"1"`, `{"amount":"1}`, `{"amount":"1\"}`,
	// keys: escapes, case, Unicode folding, unknown, repeated
	`{"sourc\u0065":"a"}`, `{"\u0073ource":"a","source":"b"}`, `{"Source":"a"}`, `{"SOURCE":"a"}`, `{"ſource":"a"}`,
	`{"\u017fource":"a"}`, `{"source ":"a"}`, `{"":"a"}`, `{"x":1}`, `{"x":{"y":[1,2,{"z":null}]}}`, `{"hold":{"x":1}}`,
	`{"hold":{"Timeout_seconds":1}}`, `{"hold":{"timeout_seconds":1,"timeout_seconds":2}}`, `{"hold":{},"hold":null}`,
	`{"id":null,"id":"x"}`, `{"metadata":null,"metadata":{}}`, `{"kind":"p2p","kind":"p2p"}`,
	`{"` + strings.Repeat("k", 5000) + `":"v"}`, `{"source":"a","\u0000":1}`, "{\"sour\xffce\":\"a\"}",
	// strings: every escape, surrogates, invalid UTF-8, control characters
	`{"source":"\"\\\/\b\f\n\r\t"}`, `{"source":"\u0000\u001f\u007f\u00e9\u20ac\uFFFF\uffFe"}`,
	`{"source":"\ud83d\ude00"}`, `{"source":"\uD83D\uDE00x"}`, `{"source":"\ud800"}`, `{"source":"\udc00"}`,
	`{"source":"\ud800\ud800"}`, `{"source":"\ud800\udbff\udfff"}`, `{"source":"\ud800x"}`, `{"source":"\ud800\n"}`,
	`{"source":"\udc00\ud800"}`, `{"source":"\ud800\u0041"}`, `{"source":"\ud800\u00"}`, `{"source":"\u12"}`,
	`{"source":"\u12G4"}`, `{"source":"\x"}`, `{"source":"\'"}`, `{"source":"\U0041"}`, `{"source":"\"}`, `{"source":"\`,
	"{\"source\":\"a\xffb\"}", "{\"source\":\"\xed\xa0\x80\"}", "{\"source\":\"\xc3\"}", "{\"source\":\"\xc3\xa9\"}",
	"{\"source\":\"\xf4\x90\x80\x80\"}", "{\"source\":\"\xef\xbf\xbd\"}", "{\"source\":\"\xff\\n\xfe\"}",
	"{\"source\":\"a\tb\"}", "{\"source\":\"a\nb\"}", "{\"source\":\"\x7f\"}", "{\"source\":\"\x00\"}",
	`{"source":"` + strings.Repeat(`\u00e9`, 100) + `"}`, `{"source":"` + strings.Repeat("\xff", 100) + `"}`,
	`{"source":"` + strings.Repeat("é", 100) + `"}`,
	// string fields: null, wrong types
	`{"source":null,"destination":null,"asset":null,"kind":null,"reference":null}`, `{"id":""}`, `{"id":null}`,
	`{"source":1}`, `{"source":true}`, `{"source":{}}`, `{"source":[]}`, `{"id":1}`, `{"kind":["p2p"]}`, `{"source":nul}`,
	`{"source":nulll}`,
	// metadata
	`{"metadata":{}}`, `{"metadata":null}`, `{"metadata":{"k":null}}`, `{"metadata":{"k":""}}`, `{"metadata":{"":""}}`,
	`{"metadata":{"a":"1","a":"2"}}`, `{"metadata":{"a":"1","\u0061":"2"}}`, `{"metadata":{"a":"1","A":"2"}}`,
	"{\"metadata\":{\"\xff\":\"1\",\"\xfe\":\"2\"}}", "{\"metadata\":{\"\xff\":\"1\",\"\\ufffd\":\"2\"}}",
	`{"metadata":{"\ud800":"1","\udc00":"2"}}`, `{"metadata":{"k":1}}`, `{"metadata":{"k":{}}}`, `{"metadata":{"k":["v"]}}`,
	`{"metadata":[]}`, `{"metadata":"x"}`, `{"metadata":{"k":"v",}}`, `{"metadata":{"k":"v""j":"w"}}`, `{"metadata":{"k"}}`,
	`{"metadata":{"k":"v"}`, `{"metadata":{k:"v"}}`, `{"metadata":{"k":true}}`,
	`{"metadata":{"a":"1","b":"2","c":"3","d":"4","e":"5","f":"6","g":"7","h":"8","i":"9","j":"10","k":"11","l":"12","m":"13","n":"14","o":"15","p":"16","q":"17","r":"18"}}`,
	// hold
	`{"hold":{}}`, `{"hold":null}`, `{"hold":{"timeout_seconds":null}}`, `{"hold":{"timeout_seconds":0}}`,
	`{"hold":{"timeout_seconds":-0}}`, `{"hold":{"timeout_seconds":-1}}`, `{"hold":{"timeout_seconds":1.0}}`,
	`{"hold":{"timeout_seconds":1.5}}`, `{"hold":{"timeout_seconds":1e2}}`, `{"hold":{"timeout_seconds":1E2}}`,
	`{"hold":{"timeout_seconds":1e+2}}`, `{"hold":{"timeout_seconds":0e0}}`, `{"hold":{"timeout_seconds":-0.0}}`,
	`{"hold":{"timeout_seconds":9223372036854775807}}`, `{"hold":{"timeout_seconds":9223372036854775808}}`,
	`{"hold":{"timeout_seconds":-9223372036854775808}}`, `{"hold":{"timeout_seconds":-9223372036854775809}}`,
	`{"hold":{"timeout_seconds":18446744073709551616}}`, `{"hold":{"timeout_seconds":99999999999999999999999}}`,
	`{"hold":{"timeout_seconds":01}}`, `{"hold":{"timeout_seconds":-}}`, `{"hold":{"timeout_seconds":-01}}`,
	`{"hold":{"timeout_seconds":1.}}`, `{"hold":{"timeout_seconds":.1}}`, `{"hold":{"timeout_seconds":1e}}`,
	`{"hold":{"timeout_seconds":+1}}`, `{"hold":{"timeout_seconds":"1"}}`, `{"hold":{"timeout_seconds":true}}`,
	`{"hold":{"timeout_seconds":[1]}}`, `{"hold":{"timeout_seconds":1x}}`, `{"hold":{"timeout_seconds":1 }}`,
	`{"hold":{"timeout_seconds":1,}}`, `{"hold":{"timeout_seconds":1}`, `{"hold":[]}`, `{"hold":true}`, `{"hold":"x"}`,
	`{"hold":{"timeout_seconds":1e400}}`, `{"hold":{"timeout_seconds":Infinity}}`, `{"hold":{"timeout_seconds":NaN}}`,
}

// checkTransfer compares decodeTransfer with decodeStrict on one body.
func checkTransfer(t *testing.T, b []byte) {
	t.Helper()
	var want transferJSON
	werr := decodeStrict(b, &want)
	got, gerr := decodeTransfer(b)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("body %q:\ndecodeStrict: %v\ndecodeTransfer: %v", b, werr, gerr)
	}
	if werr != nil {
		checkSameError(t, b, werr, gerr)
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("body %q:\ndecodeStrict:   %s\ndecodeTransfer: %s", b, showTransfer(want), showTransfer(got))
	}
}

func checkSameError(t *testing.T, b []byte, werr, gerr error) {
	t.Helper()
	if wc, gc := ledger.CodeOf(werr), ledger.CodeOf(gerr); wc != gc {
		t.Fatalf("body %q: code %s, decodeStrict's is %s (%v)", b, gc, wc, werr)
	}
	d := detailOf(gerr)
	if d == "" || len(d) > 200 || !utf8.ValidString(d) {
		t.Fatalf("body %q: detail %q is empty, too long or not UTF-8", b, d)
	}
}

func showTransfer(t transferJSON) string {
	s := fmt.Sprintf("%+v", t)
	if t.ID != nil {
		s += fmt.Sprintf(" id=%q", *t.ID)
	}
	if t.Hold != nil {
		s += " hold={timeout_seconds:"
		if t.Hold.TimeoutSeconds != nil {
			s += fmt.Sprint(*t.Hold.TimeoutSeconds)
		} else {
			s += "nil"
		}
		s += "}"
	}
	return s + fmt.Sprintf(" metadata-nil=%v", t.Metadata == nil)
}

func TestDecodeTransferMatchesStrict(t *testing.T) {
	for _, s := range trickyTransfers {
		checkTransfer(t, []byte(s))
	}
	// Every prefix of a few bodies: every way of ending early.
	for _, s := range trickyTransfers[:3] {
		for i := range len(s) {
			checkTransfer(t, []byte(s[:i]))
		}
	}
}

// TestDecodeTransferValues pins what the shared rules give, so that decodeStrict changing
// under both decoders would be noticed too.
func TestDecodeTransferValues(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	str := func(v string) *string { return &v }
	for _, c := range []struct {
		body string
		want transferJSON
	}{
		{`null`, transferJSON{}},
		{`{}`, transferJSON{}},
		{`{"id":"","metadata":{}}`, transferJSON{ID: str(""), Metadata: map[string]string{}}},
		{`{"source":"\ud83d\ude00\ud800\u0041","destination":"\"\\\/\b\f\n\r\t"}`,
			transferJSON{Source: "😀\uFFFDA", Destination: "\"\\/\b\f\n\r\t"}},
		{"{\"source\":\"a\xffb\xed\xa0\x80\"}", transferJSON{Source: "a\uFFFDb\uFFFD\uFFFD\uFFFD"}},
		{`{"amount":"\u0031\u0030"}`, transferJSON{Amount: amountJSON{v: ledger.AmountFromUint64(10), set: true}}},
		{`{"metadata":{"k":null,"j":"v"}}`, transferJSON{Metadata: map[string]string{"k": "", "j": "v"}}},
		{`{"hold":{}}`, transferJSON{Hold: &holdJSON{}}},
		{`{"hold":{"timeout_seconds":null}}`, transferJSON{Hold: &holdJSON{}}},
		{`{"hold":{"timeout_seconds":-0}}`, transferJSON{Hold: &holdJSON{TimeoutSeconds: i64(0)}}},
		{`{"hold":{"timeout_seconds":-9223372036854775808}}`, transferJSON{Hold: &holdJSON{TimeoutSeconds: i64(-1 << 63)}}},
	} {
		got, err := decodeTransfer([]byte(c.body))
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %s, %v; want %s", c.body, showTransfer(got), err, showTransfer(c.want))
		}
		checkTransfer(t, []byte(c.body))
	}
	for _, body := range []string{`{"amount":null}`, `{"metadata":{"a":"1","a":"2"}}`, "{\"metadata\":{\"\xff\":\"1\",\"\xfe\":\"2\"}}",
		`{"Source":"a"}`, `{"ſource":"a"}`, `{"source":"a","sourc\u0065":"b"}`, `{"hold":{"timeout_seconds":1.0}}`,
		`{"hold":{"timeout_seconds":1e2}}`, `{"hold":{"timeout_seconds":9223372036854775808}}`, `{} {}`, `[]`} {
		if _, err := decodeTransfer([]byte(body)); ledger.CodeOf(err) != ledger.CodeInvalidRequest {
			t.Errorf("%s: %v, want invalid_request", body, err)
		}
	}
}

// TestDecodeTransferShortDetail: a long key is not echoed back in full.
func TestDecodeTransferShortDetail(t *testing.T) {
	for _, body := range []string{
		`{"` + strings.Repeat("x", 100000) + `":1}`,
		`{"metadata":{"` + strings.Repeat("x", 100000) + `":"1","` + strings.Repeat("x", 100000) + `":"2"}}`,
		`{"hold":{"` + strings.Repeat("\xff", 100000) + `":1}}`,
	} {
		_, err := decodeTransfer([]byte(body))
		if d := detailOf(err); ledger.CodeOf(err) != ledger.CodeInvalidRequest || len(d) > 100 || !utf8.ValidString(d) {
			t.Errorf("%.20s...: %v", body, err)
		}
	}
}

// checkBatch compares decodeBatch with decodeStrict on one body, and decodeTransfer with
// decodeStrict on each item.
func checkBatch(t *testing.T, b []byte) {
	t.Helper()
	var want batchJSON
	werr := decodeStrict(b, &want)
	atomic, items, gerr := decodeBatch(b)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("body %q:\ndecodeStrict: %v\ndecodeBatch: %v", b, werr, gerr)
	}
	if werr != nil {
		checkSameError(t, b, werr, gerr)
		return
	}
	if !reflect.DeepEqual(atomic, want.Atomic) {
		t.Fatalf("body %q: atomic %v, decodeStrict's %v", b, atomic, want.Atomic)
	}
	// decodeBatch keeps at most BatchTransfersMax+1 items, enough to refuse the batch.
	n := min(len(want.Transfers), ledger.BatchTransfersMax+1)
	if len(items) != n || (items == nil) != (want.Transfers == nil) {
		t.Fatalf("body %q: %d items (nil %v), decodeStrict's %d (nil %v)", b, len(items), items == nil,
			len(want.Transfers), want.Transfers == nil)
	}
	for i := range n {
		if !bytes.Equal(items[i], want.Transfers[i]) {
			t.Fatalf("body %q: item %d is %q, decodeStrict's %q", b, i, items[i], want.Transfers[i])
		}
		if i < 64 {
			checkTransfer(t, items[i])
		}
	}
}

var trickyBatches = func() []string {
	bs := []string{
		`null`, `{}`, ` { } `, `[]`, `""`, `1`, `true`, ``, `{`, `{"atomic":true}`, `{"transfers":[]}`,
		`{"atomic":null,"transfers":null}`, `{"atomic":true,"transfers":[]}`, `{"atomic":true,"transfers":[ ]}`,
		`{"atomic":false,"transfers":[{}]}`, `{"atomic":1,"transfers":[{}]}`, `{"atomic":"true","transfers":[{}]}`,
		`{"atomic":tru,"transfers":[{}]}`, `{"atomic":falsey,"transfers":[{}]}`, `{"atomic":true,"transfers":{}}`,
		`{"atomic":true,"transfers":"x"}`, `{"atomic":true,"transfers":[}`, `{"atomic":true,"transfers":[1,]}`,
		`{"atomic":true,"transfers":[,1]}`, `{"atomic":true,"transfers":[1 2]}`, `{"atomic":true,"transfers":[1]`,
		`{"atomic":true,"transfers":[1]}x`, `{"atomic":true,"transfers":[1]} `, `{"atomic":true,"atomic":false}`,
		`{"atomic":true,"transfers":[],"transfers":[]}`, `{"Atomic":true,"transfers":[{}]}`, `{"atomic":true,"Transfers":[{}]}`,
		`{"\u0061tomic":true,"transfers":[{}]}`, `{"atomic":true,"transfers":[{}],"x":1}`, `{"atomic":true,,"transfers":[]}`,
		`{"atomic":true,"transfers":[1,"x",null,[],{},true,false,-0.5e+3,{"a":[{"b":{}}]}]}`,
		"{\"atomic\":true,\"transfers\":[ \t\r\n{\"source\":\"a\"} \t\r\n, \t\r\n\"\xff\" \t\r\n]}",
		`{"atomic":true,"transfers":[01]}`, `{"atomic":true,"transfers":[1.]}`, `{"atomic":true,"transfers":[-]}`,
		`{"atomic":true,"transfers":[1e]}`, `{"atomic":true,"transfers":[.1]}`, `{"atomic":true,"transfers":["\u12"]}`,
		`{"atomic":true,"transfers":[{"a" 1}]}`, `{"atomic":true,"transfers":[{"a":1,}]}`, `{"atomic":true,"transfers":[{1:1}]}`,
		`{"atomic":true,"transfers":[[1,]]}`, `{"atomic":true,"transfers":[nul]}`, `{"atomic":true,"transfers":[{"a":1}}`,
		"{\"atomic\":true,\"transfers\":[\"\x01\"]}",
	}
	for _, s := range trickyTransfers {
		bs = append(bs, `{"atomic":false,"transfers":[`+s+`]}`)
	}
	bs = append(bs, `{"atomic":true,"transfers":[`+strings.Join(trickyTransfers[:20], ",")+`]}`)
	return bs
}()

func TestDecodeBatchMatchesStrict(t *testing.T) {
	for _, s := range trickyBatches {
		checkBatch(t, []byte(s))
	}
}

// TestDecodeBatchLimits: nesting as deep as encoding/json allows and one level more, and a
// batch far over the item limit.
func TestDecodeBatchLimits(t *testing.T) {
	for _, depth := range []int{9997, 9998, 9999, 10000} { // plus the body's object and array
		body := `{"atomic":true,"transfers":[` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `]}`
		checkBatch(t, []byte(body))
		body = `{"atomic":true,"transfers":[` + strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth) + `]}`
		checkBatch(t, []byte(body))
	}
	many := `{"atomic":false,"transfers":[` + strings.Repeat(`{},`, 3*ledger.BatchTransfersMax) + `{}]}`
	checkBatch(t, []byte(many))
	checkBatch(t, []byte(many[:len(many)-3]+"}")) // a syntax error after the last item kept
}

func FuzzFastDecodeTransfer(f *testing.F) {
	for _, s := range trickyTransfers {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkTransfer(t, b)
	})
}

func FuzzFastDecodeBatch(f *testing.F) {
	for _, s := range trickyBatches {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkBatch(t, b)
	})
}

var benchTransfer = []byte(`{"source":"acct-000123","destination":"acct-004567","amount":"1"}`)

func BenchmarkDecodeTransfer(b *testing.B) {
	full := []byte(`{"id":"t-1","source":"alice","destination":"bob","amount":"250","asset":"USD","kind":"p2m",` +
		`"reference":"order-42","metadata":{"a":"b"},"hold":{"timeout_seconds":600}}`)
	for _, c := range []struct {
		name string
		body []byte
	}{{"p2p", benchTransfer}, {"full", full}} {
		b.Run(c.name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.body)))
			for b.Loop() {
				if _, err := decodeTransfer(c.body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/strict", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.body)))
			for b.Loop() {
				var t transferJSON
				if err := decodeStrict(c.body, &t); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeBatch1000 decodes a batch body of 1,000 transfers and each of its items,
// as the batch handler does.
func BenchmarkDecodeBatch1000(b *testing.B) {
	items := make([]string, 1000)
	for i := range items {
		items[i] = fmt.Sprintf(`{"source":"acct-%06d","destination":"acct-%06d","amount":"1"}`, i, i+1)
	}
	body := []byte(`{"atomic":false,"transfers":[` + strings.Join(items, ",") + `]}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			_, raw, err := decodeBatch(body)
			if err != nil || len(raw) != 1000 {
				b.Fatal(err)
			}
			for _, r := range raw {
				if _, err := decodeTransfer(r); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("strict", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var bj batchJSON
			if err := decodeStrict(body, &bj); err != nil || len(bj.Transfers) != 1000 {
				b.Fatal(err)
			}
			for _, r := range bj.Transfers {
				var t transferJSON
				if err := decodeStrict(r, &t); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// TestFastDecodersKnowEveryField: the hand-written decoders know exactly the fields of the
// types decodeStrict decodes into.
func TestFastDecodersKnowEveryField(t *testing.T) {
	names := func(v any) []string {
		var ns []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			ns = append(ns, strings.Split(rt.Field(i).Tag.Get("json"), ",")[0])
		}
		slices.Sort(ns)
		return ns
	}
	known := slices.Sorted(slices.Values(transferFieldNames[:]))
	for _, c := range []struct {
		typ   any
		known []string
	}{
		{transferJSON{}, known},
		{holdJSON{}, []string{"timeout_seconds"}},
		{batchJSON{}, []string{"atomic", "transfers"}},
	} {
		if got := names(c.typ); !slices.Equal(got, c.known) {
			t.Errorf("%T has the fields %q; fastjson.go knows %q", c.typ, got, c.known)
		}
	}
	for _, f := range transferFieldNames {
		if transferField([]byte(f)) < 0 || transferFieldNames[transferField([]byte(f))] != f {
			t.Errorf("transferField(%q) is %d", f, transferField([]byte(f)))
		}
	}
}

// TestDecodeRandomized builds bodies from fragments that matter (every field name, near
// misses, values of every type, whitespace), with now and then a byte cut or changed,
// and compares both decoders on them: more semantic variety than byte mutation reaches.
func TestDecodeRandomized(t *testing.T) {
	keys := []string{`"id"`, `"source"`, `"destination"`, `"amount"`, `"asset"`, `"kind"`, `"reference"`,
		`"metadata"`, `"hold"`, `"Source"`, `"sourc\u0065"`, `"x"`, `""`, `"timeout_seconds"`, `"atomic"`, `"transfers"`}
	vals := []string{`"a"`, `""`, `"1"`, `"01"`, `"\u0031"`, `"\ud800"`, `"\ud83d\ude00"`, "\"\xff\"", `null`, `true`,
		`false`, `1`, `-0`, `1.0`, `1e2`, `-9223372036854775808`, `9223372036854775808`, `{}`, `[]`, `[{}]`,
		`{"timeout_seconds":5}`, `{"timeout_seconds":null}`, `{"timeout_seconds":-0}`, `{"k":"v"}`, `{"k":null}`,
		`{"k":"v","k":"w"}`, `{"k":1}`, `[{"source":"a","destination":"b","amount":"1"},null,1]`, `["x",{"x":1}]`}
	ws := []string{"", "", "", " ", "\n", "\t ", "\r\n"}
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	okTransfer, okBatch := 0, 0
	for range 50000 {
		var sb strings.Builder
		sb.WriteString(pick(ws) + "{")
		for i := range r.IntN(5) {
			if i > 0 {
				sb.WriteString(pick(ws) + ",")
			}
			sb.WriteString(pick(ws) + pick(keys) + pick(ws) + ":" + pick(ws) + pick(vals))
		}
		sb.WriteString(pick(ws) + "}" + pick(ws))
		b := []byte(sb.String())
		switch r.IntN(10) {
		case 0:
			b = b[:r.IntN(len(b))]
		case 1:
			const chars = "{}[],:\" \\0-1e.nx\xff"
			b[r.IntN(len(b))] = chars[r.IntN(len(chars))]
		}
		checkTransfer(t, b)
		checkBatch(t, b)
		if _, err := decodeTransfer(b); err == nil {
			okTransfer++
		}
		if _, _, err := decodeBatch(b); err == nil {
			okBatch++
		}
	}
	// Enough of them must be accepted for the values to have been compared.
	if okTransfer < 2000 || okBatch < 2000 {
		t.Errorf("only %d transfers and %d batches of 50000 accepted", okTransfer, okBatch)
	}
	t.Logf("%d transfers and %d batches of 50000 accepted", okTransfer, okBatch)
}

package main_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// kafkaCluster starts an in-process Kafka-protocol broker (kfake) that the tpwallet binary
// connects to, with topics of 4 partitions; seed names topics to create now.
func kafkaCluster(t *testing.T, seed ...string) (c *kfake.Cluster, brokers string) {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(4)}
	if len(seed) > 0 {
		opts = append(opts, kfake.SeedTopics(4, seed...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c, strings.Join(c.ListenAddrs(), ",")
}

// consumeTopic reads topic from the start until enough says so, failing t after d.
func consumeTopic(t *testing.T, c *kfake.Cluster, topic string, d time.Duration, enough func([]*kgo.Record) bool, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	var out []*kgo.Record
	for !enough(out) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("topic %s: %d records after %s, not enough", topic, len(out), d)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

func recordHeader(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// journalEvent is what GET /v1/journal says one event must be: one per change.
type journalEvent struct {
	seq   uint64
	index int
	key   string          // the source account, the account, or the asset code
	data  json.RawMessage // the change
}

// journalEvents reads the whole journal over REST.
func journalEvents(t *testing.T, p *proc) map[string]journalEvent {
	t.Helper()
	out := map[string]journalEvent{}
	for after := "0"; ; {
		var page struct {
			Items []struct {
				Seq     uint64            `json:"seq"`
				Changes []json.RawMessage `json:"changes"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		p.mustCall(t, "GET", "/v1/journal?limit=1000&after="+after, nil, &page, 200)
		for _, r := range page.Items {
			for i, raw := range r.Changes {
				var c struct {
					Transfer *struct{ Source string } `json:"transfer"`
					Account  *struct{ ID string }     `json:"account"`
					Asset    *struct{ Code string }   `json:"asset"`
				}
				if err := json.Unmarshal(raw, &c); err != nil {
					t.Fatal(err)
				}
				e := journalEvent{seq: r.Seq, index: i, data: raw}
				switch {
				case c.Transfer != nil:
					e.key = c.Transfer.Source
				case c.Account != nil:
					e.key = c.Account.ID
				case c.Asset != nil:
					e.key = c.Asset.Code
				}
				out[strconv.FormatUint(r.Seq, 10)+"-"+strconv.Itoa(i)] = e
			}
		}
		if len(page.Items) == 0 || page.NextCursor == "" {
			return out
		}
		after = page.NextCursor
	}
}

// sameJSON reports whether a and b hold the same JSON value.
func sameJSON(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// followerMetric reads a follower metric of the kafka follower from /metrics.
func followerMetric(t *testing.T, p *proc, name string) float64 {
	t.Helper()
	return value(scrape(t, p.base+"/metrics"), name, "follower", "kafka")
}

// waitMetric polls until cond holds for the kafka follower's metric, failing t after d.
func waitMetric(t *testing.T, p *proc, d time.Duration, what string, cond func(get func(string) float64) bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		fams := scrape(t, p.base+"/metrics")
		if cond(func(name string) float64 { return value(fams, name, "follower", "kafka") }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // polling a child process's metrics with a deadline
	}
}

// TestKafkaEventsSurviveKill loads a real `tpwallet serve` publishing to an in-process
// Kafka, SIGKILLs it while the follower is delivering, restarts it, and then reads the
// topic: every journal event (GET /v1/journal, one per change) is there at least once with
// its CloudEvent, copies are identical and share a ce_id, and per key the first copies
// come in journal order.
func TestKafkaEventsSurviveKill(t *testing.T) {
	c, brokers := kafkaCluster(t)
	dir := t.TempDir()
	args := []string{"--kafka-brokers", brokers}
	p := startServe(t, dir, args...)
	const users = 16
	fundUsers(t, p, users)

	var next atomic.Int64
	stopLoad := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stopLoad:
					return
				default:
				}
				n := next.Add(1)
				src, dst := int(n)%users, int(n*7+int64(w))%users
				if src == dst {
					dst = (dst + 1) % users
				}
				_, err := p.call("POST", "/v1/transfers", map[string]any{"source": "u" + strconv.Itoa(src),
					"destination": "u" + strconv.Itoa(dst), "amount": strconv.FormatInt(n%89+1, 10)}, nil)
				if err != nil {
					return // killed
				}
			}
		})
	}
	// Kill while events flow: some delivered, the load still going.
	waitMetric(t, p, 30*time.Second, "500 events delivered under load", func(get func(string) float64) bool {
		return get("tpwallet_follower_delivered_total") >= 500
	})
	p.kill(t)
	close(stopLoad)
	wg.Wait()

	p = startServe(t, dir, args...)
	for i := range 50 { // more after the restart, so that the follower resumes and goes on
		p.mustCall(t, "POST", "/v1/transfers", map[string]any{"source": "u0", "destination": "u1",
			"amount": strconv.Itoa(i + 1)}, nil, 201)
	}
	waitMetric(t, p, 30*time.Second, "the kafka follower to catch up", func(get func(string) float64) bool {
		return get("tpwallet_follower_running") == 1 && get("tpwallet_follower_lag_records") == 0
	})
	if lag := followerMetric(t, p, "tpwallet_follower_lag_seconds"); lag != 0 {
		t.Errorf("caught up with lag_seconds %v", lag)
	}

	want := journalEvents(t, p)
	recs := consumeTopic(t, c, "tpwallet.events", 30*time.Second, func(rs []*kgo.Record) bool {
		ids := map[string]bool{}
		for _, r := range rs {
			ids[recordHeader(r, "ce_id")] = true
		}
		return len(ids) >= len(want)
	})
	dups := checkKafkaEvents(t, want, recs)
	t.Logf("%d journal events, %d records on the topic (%d copies after the kill)", len(want), len(recs), dups)
}

// checkKafkaEvents checks the events topic against the journal and returns the number of
// copies (records whose ce_id came before).
func checkKafkaEvents(t *testing.T, want map[string]journalEvent, recs []*kgo.Record) (dups int) {
	t.Helper()
	seen := map[string][]byte{}
	last := map[string]journalEvent{} // per key, the last event seen first
	part := map[string]int32{}
	for _, r := range recs {
		id := recordHeader(r, "ce_id")
		e, ok := want[id]
		if !ok {
			t.Fatalf("record %d@%d: ce_id %q is no journal event", r.Partition, r.Offset, id)
		}
		if v, ok := seen[id]; ok {
			if !bytes.Equal(v, r.Value) {
				t.Errorf("event %s: copies differ", id)
			}
			dups++
			continue
		}
		seen[id] = r.Value
		var ce struct {
			SpecVersion string          `json:"specversion"`
			ID          string          `json:"id"`
			Type        string          `json:"type"`
			Data        json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(r.Value, &ce); err != nil {
			t.Fatalf("event %s: %v", id, err)
		}
		if ce.ID != id || ce.SpecVersion != "1.0" || ce.Type != recordHeader(r, "ce_type") ||
			recordHeader(r, "ce_specversion") != "1.0" || !strings.HasPrefix(recordHeader(r, "content-type"), "application/cloudevents+json") {
			t.Errorf("event %s: CloudEvent %s %s %s with headers %v", id, ce.ID, ce.SpecVersion, ce.Type, r.Headers)
		}
		if !sameJSON(ce.Data, e.data) {
			t.Errorf("event %s: data %s, journal %s", id, ce.Data, e.data)
		}
		if string(r.Key) != e.key {
			t.Errorf("event %s: key %q, want %q", id, r.Key, e.key)
		}
		if p, ok := part[e.key]; ok && p != r.Partition {
			t.Errorf("key %q in partitions %d and %d", e.key, p, r.Partition)
		}
		part[e.key] = r.Partition
		if prev, ok := last[e.key]; ok && (e.seq < prev.seq || e.seq == prev.seq && e.index <= prev.index) {
			t.Errorf("key %q: event %s after %d-%d", e.key, id, prev.seq, prev.index)
		}
		last[e.key] = e
	}
	for id := range want {
		if _, ok := seen[id]; !ok {
			t.Errorf("event %s never published", id)
		}
	}
	return dups
}

// TestKafkaCommandsServe sends transfers to a real `tpwallet serve` as Kafka commands, a
// third of them twice: each applies exactly once (balances), every command gets a result
// on the results topic (the copies replayed), and a command without an idempotency key
// gets a 400.
func TestKafkaCommandsServe(t *testing.T) {
	c, brokers := kafkaCluster(t, "tpwallet.commands", "tpwallet.results")
	p := startServe(t, t.TempDir(), "--kafka-brokers", brokers, "--kafka-commands-topic", "tpwallet.commands")
	const users = 4
	fundUsers(t, p, users)

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("tpwallet.commands"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	balance := map[string]int{}
	var recs []*kgo.Record
	const n = 60
	for i := range n {
		k := "cmd-" + strconv.Itoa(i)
		src, dst := "u"+strconv.Itoa(i%users), "u"+strconv.Itoa((i+1+i/users)%users)
		if src == dst {
			dst = "u" + strconv.Itoa((i+2)%users)
		}
		body := `{"source":"` + src + `","destination":"` + dst + `","amount":"` + strconv.Itoa(i+1) + `"}`
		balance[src] -= i + 1
		balance[dst] += i + 1
		r := &kgo.Record{Key: []byte(src), Value: []byte(body), Headers: []kgo.RecordHeader{
			{Key: "authorization", Value: []byte("Bearer " + adminKey)}, {Key: "idempotency-key", Value: []byte(k)}}}
		recs = append(recs, r)
		if i%3 == 0 {
			recs = append(recs, &kgo.Record{Key: r.Key, Value: r.Value, Headers: r.Headers})
		}
	}
	recs = append(recs, &kgo.Record{Key: []byte("u0"), Value: []byte(`{"source":"u0","destination":"u1","amount":"1"}`),
		Headers: []kgo.RecordHeader{{Key: "authorization", Value: []byte("Bearer " + adminKey)}}})
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	results := consumeTopic(t, c, "tpwallet.results", 60*time.Second, func(rs []*kgo.Record) bool { return len(rs) >= len(recs) })
	type res struct {
		IdempotencyKey string `json:"idempotency_key"`
		Status         int    `json:"status"`
		Replayed       bool   `json:"replayed"`
	}
	byKey := map[string][]res{}
	for _, r := range results {
		var x res
		if err := json.Unmarshal(r.Value, &x); err != nil {
			t.Fatalf("result %s: %v", r.Value, err)
		}
		byKey[x.IdempotencyKey] = append(byKey[x.IdempotencyKey], x)
	}
	if rs := byKey[""]; len(rs) != 1 || rs[0].Status != 400 {
		t.Errorf("command without idempotency key: results %+v, want one 400", rs)
	}
	for i := range n {
		k := "cmd-" + strconv.Itoa(i)
		rs := byKey[k]
		want := 1
		if i%3 == 0 {
			want = 2
		}
		if len(rs) != want {
			t.Errorf("%s: %d results, want %d", k, len(rs), want)
			continue
		}
		if rs[0].Status != 201 || rs[0].Replayed || want == 2 && (rs[1].Status != 201 || !rs[1].Replayed) {
			t.Errorf("%s: results %+v, want 201 then a replayed 201", k, rs)
		}
	}
	for i := range users {
		id := "u" + strconv.Itoa(i)
		var a accountOut
		p.mustCall(t, "GET", "/v1/accounts/"+id, nil, &a, 200)
		if want := strconv.Itoa(1000000 + balance[id]); a.Balance.Posted != want {
			t.Errorf("%s: posted %s, want %s", id, a.Balance.Posted, want)
		}
	}
}

// selfSigned makes a certificate for 127.0.0.1 that is its own CA, and writes it as PEM to
// a file for --kafka-tls-ca.
func selfSigned(t *testing.T) (cert tls.Certificate, pool *x509.CertPool, pemFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kfake"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(leaf)
	pemFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, pemFile
}

// TestKafkaTLSAndSASL publishes through TLS (a private CA from --kafka-tls-ca) and
// SCRAM-SHA-512 (the password from TPWALLET_KAFKA_SASL_PASSWORD only). With a wrong
// password transfers still succeed at once while the follower fails and lags, and neither
// password appears in the logs. An unknown mechanism stops serve with a message.
func TestKafkaTLSAndSASL(t *testing.T) {
	const user, password, wrong = "tpwallet", "scram-secret-0123456789", "wrong-secret-9876543210"
	cert, pool, caFile := selfSigned(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(4),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", user, password))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	args := []string{"--kafka-brokers", strings.Join(c.ListenAddrs(), ","), "--kafka-tls-ca", caFile,
		"--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-user", user, "--log-level", "debug"}

	t.Setenv("TPWALLET_KAFKA_SASL_PASSWORD", password)
	p := startServe(t, t.TempDir(), args...)
	fundUsers(t, p, 2)
	want := journalEvents(t, p)
	recs := consumeTopic(t, c, "tpwallet.events", 30*time.Second, func(rs []*kgo.Record) bool { return len(rs) >= len(want) },
		kgo.DialTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}),
		kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha512Mechanism()))
	checkKafkaEvents(t, want, recs)
	p.stop(t)

	t.Setenv("TPWALLET_KAFKA_SASL_PASSWORD", wrong)
	q := startServe(t, t.TempDir(), args...)
	start := time.Now()
	fundUsers(t, q, 2)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("5 writes took %s while Kafka refused the login", d)
	}
	waitMetric(t, q, 30*time.Second, "the follower to fail and lag", func(get func(string) float64) bool {
		return get("tpwallet_follower_errors_total") >= 1 && get("tpwallet_follower_lag_records") > 0
	})
	q.stop(t)
	for _, out := range []string{p.out.String(), q.out.String()} {
		if strings.Contains(out, password) || strings.Contains(out, wrong) {
			t.Errorf("a SASL password in the log:\n%s", out)
		}
	}
	if !strings.Contains(q.out.String(), "deliver failed") {
		t.Errorf("the failing follower logged nothing:\n%s", q.out)
	}

	out, err := exec.Command(binPath, "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(),
		"--kafka-brokers", "127.0.0.1:1", "--kafka-sasl-mechanism", "GSSAPI").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "GSSAPI") {
		t.Errorf("serve with an unknown SASL mechanism: %v\n%s", err, out)
	}
}

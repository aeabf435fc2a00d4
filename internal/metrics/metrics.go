// Package metrics holds tpwallet's Prometheus metrics (docs/operations.md lists them): one
// registry per server, the HTTP middleware's and the engine's observations, and the
// collectors that read gauges when scraped. Names follow Prometheus conventions (_total,
// _seconds, base units); no label ever holds an account id, a key or anything a client
// chose freely, so label sets stay bounded and nothing personal is exported.
package metrics

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// Buckets of the latency histograms (seconds).
var (
	httpBuckets    = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	storageBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
	batchBuckets   = prometheus.ExponentialBuckets(1, 2, 14) // 1 ... 8192 requests
)

// Metrics is the set of a server's metrics. Its methods are safe for concurrent use; a nil
// *Metrics records nothing, so components work without one.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec

	transfers    *prometheus.CounterVec
	batchSize    prometheus.Histogram
	applyDur     prometheus.Histogram
	commitDur    prometheus.Histogram
	holdsPending prometheus.Gauge
	holdsCreated prometheus.Counter
	holdsPosted  prometheus.Counter
	holdsVoided  prometheus.Counter
	holdsExpired prometheus.Counter
	stopped      prometheus.Gauge
	replays      prometheus.Counter
	storeErrors  *prometheus.CounterVec
	headSeq      prometheus.Gauge

	leader    prometheus.Gauge
	epoch     prometheus.Gauge
	leaseLost prometheus.Counter
}

// New returns the metrics registered on a registry of their own, with the Go runtime and
// process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{reg: reg}
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tpwallet_http_requests_total",
		Help: "HTTP requests answered, by route pattern, method and status code."}, []string{"route", "method", "code"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tpwallet_http_request_duration_seconds",
		Help: "Time to answer an HTTP request, by route pattern and method.", Buckets: httpBuckets}, []string{"route", "method"})
	m.transfers = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tpwallet_transfers_total",
		Help: "Transfer requests decided, by kind, outcome (posted, pending, rejected) and error code when rejected."},
		[]string{"kind", "outcome", "code"})
	m.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tpwallet_engine_batch_size",
		Help: "Requests applied per engine batch (one commit each).", Buckets: batchBuckets})
	m.applyDur = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tpwallet_engine_apply_duration_seconds",
		Help: "Time to apply a batch to the in-memory state and seal its journal record.", Buckets: storageBuckets})
	m.commitDur = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tpwallet_engine_commit_duration_seconds",
		Help: "Time to make a batch durable in the store (one synced write or one PostgreSQL transaction).", Buckets: storageBuckets})
	m.holdsPending = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tpwallet_holds_pending",
		Help: "Holds (pending transfers) not yet posted, voided or expired."})
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m.holdsCreated = counter("tpwallet_holds_created_total", "Holds created.")
	m.holdsPosted = counter("tpwallet_holds_posted_total", "Holds posted (wholly or in part).")
	m.holdsVoided = counter("tpwallet_holds_voided_total", "Holds voided.")
	m.holdsExpired = counter("tpwallet_holds_expired_total", "Holds that expired before being posted or voided.")
	m.stopped = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tpwallet_engine_stopped",
		Help: "1 once the engine stopped taking writes after a failed commit (writes answer 503 unavailable)."})
	m.replays = prometheus.NewCounter(prometheus.CounterOpts{Name: "tpwallet_idempotency_replays_total",
		Help: "Requests answered with the stored answer of an earlier request with the same Idempotency-Key."})
	m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tpwallet_store_errors_total",
		Help: "Store operations that failed, by operation (commit, read)."}, []string{"op"})
	for _, op := range []string{"commit", "read"} { // present at 0, so that the first error is an increase
		m.storeErrors.WithLabelValues(op)
	}
	m.headSeq = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tpwallet_journal_head_seq",
		Help: "Sequence number of the newest committed journal record."})
	m.leader = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tpwallet_leader",
		Help: "1 when this instance takes writes (holds the leader lease on PostgreSQL), else 0."})
	m.epoch = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tpwallet_lease_epoch",
		Help: "Epoch (fencing token) of the leader lease this instance last held."})
	m.leaseLost = prometheus.NewCounter(prometheus.CounterOpts{Name: "tpwallet_lease_lost_total",
		Help: "Times this instance stepped down from leader."})
	for _, c := range []prometheus.Collector{m.httpRequests, m.httpDuration, m.transfers, m.batchSize, m.applyDur,
		m.commitDur, m.holdsPending, m.replays, m.storeErrors, m.headSeq,
		m.leader, m.epoch, m.leaseLost, m.holdsCreated, m.holdsPosted, m.holdsVoided, m.holdsExpired, m.stopped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	return m
}

// Register adds a collector (the engine's gauges, the store's fsync histogram).
func (m *Metrics) Register(c prometheus.Collector) {
	if m != nil {
		m.reg.MustRegister(c)
	}
}

// Registry returns the registry, for tests that gather it.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// HTTP records one answered request. route is the mux pattern's path ("unmatched" when no
// route matched), never the request path, which holds ids.
func (m *Metrics) HTTP(route, method string, code int, d time.Duration) {
	if m == nil {
		return
	}
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.httpDuration.WithLabelValues(route, method).Observe(d.Seconds())
}

// Replay counts an answer replayed for an Idempotency-Key.
func (m *Metrics) Replay() {
	if m != nil {
		m.replays.Inc()
	}
}

// StoreError counts a failed store operation (op: commit or read).
func (m *Metrics) StoreError(op string) {
	if m != nil {
		m.storeErrors.WithLabelValues(op).Inc()
	}
}

// Role records whether this instance leads, and the lease epoch it holds (0 without one).
// Becoming the leader means a new engine: tpwallet_engine_stopped goes back to 0.
func (m *Metrics) Role(leader bool, epoch int64) {
	if m == nil {
		return
	}
	if leader { // with a new engine, which has not stopped
		m.leader.Set(1)
		m.epoch.Set(float64(epoch))
		m.stopped.Set(0)
	} else {
		m.leader.Set(0)
	}
}

// LeaseLost counts a step-down.
func (m *Metrics) LeaseLost() {
	if m != nil {
		m.leaseLost.Inc()
	}
}

// Batch records a batch the engine committed, or failed to commit (engine.Observer).
func (m *Metrics) Batch(b *engine.BatchInfo) {
	if m == nil {
		return
	}
	if b.Err != nil {
		m.stopped.Set(1)
		m.storeErrors.WithLabelValues("commit").Inc()
		return
	}
	n := 0
	for i, cmd := range b.Commands {
		n += len(cmd.Requests)
		for j, req := range cmd.Requests {
			if req.Op != ledger.OpTransfer || i >= len(b.Results) || j >= len(b.Results[i]) {
				continue
			}
			if r := b.Results[i][j]; r.Code != ledger.CodeOK {
				m.transfers.WithLabelValues(kindLabel(req.Transfer.Kind), "rejected", string(r.Code)).Inc()
			}
		}
	}
	m.batchSize.Observe(float64(n))
	m.applyDur.Observe(b.Apply.Seconds())
	m.commitDur.Observe(b.Commit.Seconds())
	m.holdsPending.Set(float64(b.Holds))
	if r := b.Record; r != nil {
		m.headSeq.Set(float64(r.Seq))
		for i := range r.Changes {
			c := &r.Changes[i]
			if c.Transfer == nil {
				continue
			}
			switch c.Op {
			case ledger.ChangeCreate:
				if c.Transfer.Hold {
					m.holdsCreated.Inc()
					m.transfers.WithLabelValues(kindLabel(c.Transfer.Kind), "pending", "").Inc()
				} else {
					m.transfers.WithLabelValues(kindLabel(c.Transfer.Kind), "posted", "").Inc()
				}
			case ledger.ChangePost:
				m.holdsPosted.Inc()
			case ledger.ChangeVoid:
				m.holdsVoided.Inc()
			case ledger.ChangeExpire:
				m.holdsExpired.Inc()
			}
		}
	}
}

// kindLabel bounds the kind label to the kinds the ledger knows.
func kindLabel(k ledger.TransferKind) string {
	if k == "" {
		return string(ledger.TransferP2P)
	}
	if slices.Contains(ledger.TransferKinds, k) {
		return string(k)
	}
	return "other"
}

var _ engine.Observer = (*Metrics)(nil)

package webhook

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tpwallet/tpwallet/internal/events"
)

// Status is how delivery to an endpoint stands.
type Status struct {
	// Running is true while this instance runs the endpoint's follower (on the leader).
	Running bool
	// Position is the next event to deliver; LagRecords how many journal records lie at
	// or after it, LagSeconds how old the record at it is (0 when caught up).
	Position   events.Position
	LagRecords uint64
	LagSeconds float64
	Delivered  uint64 // events delivered since this instance started
	// Breaker is "closed", or "open" after BreakerAfter failures in a row: then one
	// attempt is made per backoff interval until one succeeds.
	Breaker             string
	ConsecutiveFailures int
	OpenedAt            int64  // Unix ns, while open
	NextAttemptAt       int64  // Unix ns of the next attempt, 0 when none is waiting
	RetryingEvent       string // the event being retried, "" when none
	Attempts            int    // attempts at RetryingEvent so far
	LastError           string // the latest failure (it may have recovered since)
	LastErrorAt         int64
	LastSuccessAt       int64 // Unix ns of the latest delivery since this instance started
}

// Head returns the journal's head seq, for Status.
func (m *Manager) Head(ctx context.Context) (uint64, error) {
	h, err := m.opts.Source.Head(ctx)
	return h.Seq, err
}

// Status returns how delivery to the endpoint stands, with lag measured against head
// (Head). It reads the store for what this instance does not run (on a standby).
func (m *Manager) Status(ctx context.Context, id string, head uint64) (Status, error) {
	var st Status
	mem := m.member(id)
	var fs events.Status
	if mem != nil {
		fs = mem.f.Status(head)
	}
	st.Running = fs.Running
	if fs.Running && fs.Position.Seq > 0 { // 0: the run has not loaded its cursor yet
		st.Position, st.LagRecords, st.LagSeconds = fs.Position, fs.LagRecords, fs.LagSeconds
	} else {
		p, err := events.LoadCursor(ctx, m.opts.Meta, followerName(id))
		if err != nil {
			return Status{}, err
		}
		st.Position = p
		if head >= p.Seq {
			st.LagRecords = head - p.Seq + 1
		}
	}
	st.Delivered = fs.Delivered
	var s state
	loaded := false
	if mem != nil {
		mem.sink.mu.Lock()
		if loaded = mem.sink.loaded; loaded {
			s = mem.sink.st
		}
		st.LastError, st.LastErrorAt, st.LastSuccessAt = mem.sink.lastError, mem.sink.lastErrorAt, mem.sink.lastSuccess
		mem.sink.mu.Unlock()
	}
	if !loaded {
		var err error
		if s, _, err = loadState(ctx, m.opts.Meta, id); err != nil {
			return Status{}, err
		}
		if st.LastError == "" {
			st.LastError = s.LastError
		}
	}
	st.Breaker = breakerState(s.Failures, m.opts.BreakerAfter)
	st.ConsecutiveFailures, st.OpenedAt, st.NextAttemptAt = s.Failures, s.OpenedAt, s.NextAttempt
	st.RetryingEvent, st.Attempts = s.EventID, s.Attempts
	if s.Failures < m.opts.BreakerAfter {
		st.OpenedAt = 0
	}
	return st, nil
}

var (
	descAttempts = prometheus.NewDesc("tpwallet_webhook_attempts_total",
		"Webhook delivery attempts since the process started, by endpoint and outcome (delivered, retrying, dead_lettered).",
		[]string{"endpoint", "outcome"}, nil)
	descBreaker = prometheus.NewDesc("tpwallet_webhook_breaker_open",
		"1 while an endpoint's circuit breaker is open (it failed BreakerAfter times in a row), else 0.",
		[]string{"endpoint"}, nil)
)

// Describe makes m a prometheus.Collector.
func (m *Manager) Describe(ch chan<- *prometheus.Desc) {
	ch <- descAttempts
	ch <- descBreaker
}

// Collect makes m a prometheus.Collector. Endpoints' lag is the follower metrics'
// (tpwallet_follower_*{follower="webhook:<id>"}).
func (m *Manager) Collect(ch chan<- prometheus.Metric) {
	for id, mem := range m.members() {
		mem.sink.mu.Lock()
		counts, failures := mem.sink.counts, mem.sink.st.Failures
		mem.sink.mu.Unlock()
		for i, o := range []string{OutcomeDelivered, OutcomeRetrying, OutcomeDeadLettered} {
			ch <- prometheus.MustNewConstMetric(descAttempts, prometheus.CounterValue, float64(counts[i]), id, o)
		}
		open := 0.0
		if failures >= m.opts.BreakerAfter {
			open = 1
		}
		ch <- prometheus.MustNewConstMetric(descBreaker, prometheus.GaugeValue, open, id)
	}
}

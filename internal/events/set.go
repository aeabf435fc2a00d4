package events

import (
	"context"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Set runs followers while this instance is the leader (on a standby none runs, so that
// two instances never deliver the same events at once), and reports on them: Statuses
// and Prometheus metrics.
type Set struct {
	Hub *Hub // where the head for lag comes from

	mu      sync.Mutex
	ctx     context.Context // nil while stopped
	list    map[string]*member
	running sync.WaitGroup
}

type member struct {
	f      *Follower
	cancel context.CancelFunc
	done   chan struct{}
}

// NewSet returns an empty, stopped Set.
func NewSet(hub *Hub) *Set { return &Set{Hub: hub, list: map[string]*member{}} }

// Add adds f, running it at once if the set runs. A follower of the same name is replaced
// (stopped first).
func (s *Set) Add(f *Follower) {
	f.defaults()
	s.Remove(f.Name)
	s.mu.Lock()
	defer s.mu.Unlock()
	m := &member{f: f}
	s.list[f.Name] = m
	if s.ctx != nil {
		s.launch(m)
	}
}

// Remove stops and drops the follower named name, if any, waiting for it to stop.
func (s *Set) Remove(name string) {
	s.mu.Lock()
	m := s.list[name]
	delete(s.list, name)
	s.mu.Unlock()
	if m != nil {
		m.stop()
	}
}

// Get returns the follower named name, or nil.
func (s *Set) Get(name string) *Follower {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.list[name]; m != nil {
		return m.f
	}
	return nil
}

func (s *Set) launch(m *member) {
	ctx, cancel := context.WithCancel(s.ctx)
	m.cancel, m.done = cancel, make(chan struct{})
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		defer close(m.done)
		m.f.Run(ctx)
	}()
}

func (m *member) stop() {
	if m.cancel != nil {
		m.cancel()
		<-m.done
		m.cancel, m.done = nil, nil
	}
}

// Start runs every follower (and those added later) until Stop or until ctx is done.
func (s *Set) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx != nil {
		return
	}
	s.ctx = ctx
	for _, m := range s.list {
		s.launch(m)
	}
}

// Stop stops every follower and waits for them; Start may run them again.
func (s *Set) Stop() {
	s.mu.Lock()
	s.ctx = nil
	list := make([]*member, 0, len(s.list))
	for _, m := range s.list {
		list = append(list, m)
	}
	s.mu.Unlock()
	for _, m := range list {
		m.stop()
	}
	s.running.Wait()
}

// Statuses returns every follower's status, by name.
func (s *Set) Statuses() []Status {
	s.mu.Lock()
	fs := make([]*Follower, 0, len(s.list))
	for _, m := range s.list {
		fs = append(fs, m.f)
	}
	s.mu.Unlock()
	var head uint64
	if s.Hub != nil {
		head = s.Hub.Head()
	}
	out := make([]Status, len(fs))
	for i, f := range fs {
		out[i] = f.Status(head)
	}
	slices.SortFunc(out, func(a, b Status) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

var (
	descLagRecords = prometheus.NewDesc("tpwallet_follower_lag_records",
		"Journal records a follower has still to deliver.", []string{"follower"}, nil)
	descLagSeconds = prometheus.NewDesc("tpwallet_follower_lag_seconds",
		"Age of the oldest journal record a follower has still to deliver (0 when caught up).", []string{"follower"}, nil)
	descDelivered = prometheus.NewDesc("tpwallet_follower_delivered_total",
		"Events a follower has delivered since the process started.", []string{"follower"}, nil)
	descErrors = prometheus.NewDesc("tpwallet_follower_errors_total",
		"Failed journal reads, deliveries and cursor writes of a follower since the process started.", []string{"follower"}, nil)
	descRunning = prometheus.NewDesc("tpwallet_follower_running",
		"1 while a follower runs (on the leader), 0 otherwise.", []string{"follower"}, nil)
)

// Describe makes s a prometheus.Collector.
func (s *Set) Describe(ch chan<- *prometheus.Desc) {
	ch <- descLagRecords
	ch <- descLagSeconds
	ch <- descDelivered
	ch <- descErrors
	ch <- descRunning
}

// Collect makes s a prometheus.Collector.
func (s *Set) Collect(ch chan<- prometheus.Metric) {
	for _, st := range s.Statuses() {
		running := 0.0
		if st.Running {
			running = 1
		}
		ch <- prometheus.MustNewConstMetric(descLagRecords, prometheus.GaugeValue, float64(st.LagRecords), st.Name)
		ch <- prometheus.MustNewConstMetric(descLagSeconds, prometheus.GaugeValue, st.LagSeconds, st.Name)
		ch <- prometheus.MustNewConstMetric(descDelivered, prometheus.CounterValue, float64(st.Delivered), st.Name)
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(st.Errors), st.Name)
		ch <- prometheus.MustNewConstMetric(descRunning, prometheus.GaugeValue, running, st.Name)
	}
}

package pebblestore

import "github.com/prometheus/client_golang/prometheus"

// FsyncLatency returns Pebble's histogram of WAL fsync latencies, in nanoseconds (Pebble's
// FsyncLatencyBuckets), for the metrics to export in seconds.
func (s *Store) FsyncLatency() prometheus.Histogram {
	return s.db.Metrics().LogWriter.FsyncLatency
}

package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// fsyncCollector exports Pebble's WAL fsync histogram as tpwallet_store_fsync_duration_seconds
// with the storage buckets: each bucket counts the fsyncs Pebble put in buckets whose upper
// bound is at most ours, so a latency is never counted as faster than it was.
type fsyncCollector struct {
	desc *prometheus.Desc
	read func() prometheus.Histogram // Pebble's, in nanoseconds
}

// FsyncCollector returns the collector of the Pebble store's fsync latencies; read returns
// Pebble's histogram (pebblestore.Store.FsyncLatency).
func FsyncCollector(read func() prometheus.Histogram) prometheus.Collector {
	return &fsyncCollector{read: read, desc: prometheus.NewDesc("tpwallet_store_fsync_duration_seconds",
		"Time of the Pebble WAL fsyncs that make commits durable.", nil, nil)}
}

func (c *fsyncCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *fsyncCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.read()
	if h == nil {
		return
	}
	var m dto.Metric
	if err := h.Write(&m); err != nil || m.Histogram == nil {
		return
	}
	buckets := make(map[float64]uint64, len(storageBuckets))
	for _, ub := range storageBuckets {
		var n uint64
		for _, b := range m.Histogram.Bucket {
			if b.GetUpperBound()/1e9 <= ub {
				n = max(n, b.GetCumulativeCount())
			}
		}
		buckets[ub] = n
	}
	ch <- prometheus.MustNewConstHistogram(c.desc, m.Histogram.GetSampleCount(), m.Histogram.GetSampleSum()/1e9, buckets)
}

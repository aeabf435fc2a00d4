package deploy_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The names a PromQL expression may mention: the metric contract of issue 6 (what /metrics
// exposes), the standard Go and process collectors, the scrape's `up`, and — added by the
// tests — the series our recording rules record.
var (
	contractMetrics = []string{
		"tpwallet_http_requests_total",
		"tpwallet_transfers_total",
		"tpwallet_engine_queue_depth",
		"tpwallet_engine_queue_capacity",
		"tpwallet_engine_stopped",
		"tpwallet_holds_pending",
		"tpwallet_holds_created_total",
		"tpwallet_holds_expired_total",
		"tpwallet_holds_posted_total",
		"tpwallet_holds_voided_total",
		"tpwallet_idempotency_replays_total",
		"tpwallet_store_errors_total",
		"tpwallet_journal_head_seq",
		"tpwallet_follower_lag_records",
		"tpwallet_follower_lag_seconds",
		"tpwallet_leader",
		"tpwallet_lease_epoch",
		"tpwallet_lease_lost_total",
		"up",
	}
	contractHistograms = []string{
		"tpwallet_http_request_duration_seconds",
		"tpwallet_engine_batch_size",
		"tpwallet_engine_apply_duration_seconds",
		"tpwallet_engine_commit_duration_seconds",
		"tpwallet_store_fsync_duration_seconds",
	}
	collectorPrefixes = []string{"go_", "process_"}

	// contractLabels are the label names the contract's series carry, plus the scrape's
	// job and instance and the histogram's le and the summary's quantile.
	contractLabels = []string{"route", "method", "code", "kind", "outcome", "op", "follower",
		"job", "instance", "le", "quantile"}
)

// known returns the metric names an expression may use: the contract's and recorded.
func known(recorded []string) map[string]bool {
	m := map[string]bool{}
	for _, n := range contractMetrics {
		m[n] = true
	}
	for _, h := range contractHistograms {
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			m[h+s] = true
		}
	}
	for _, r := range recorded {
		m[r] = true
	}
	return m
}

func isCollector(name string) bool {
	for _, p := range collectorPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// PromQL words that are not metric names where they stand without a "(" after them.
var (
	aggregations = []string{"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
		"count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
	keywords     = []string{"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2", "start", "end"}
	labelListers = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}
	grafanaVars  = regexp.MustCompile(`\$__(rate_interval|interval|range)\b`)
)

// names returns the metric names and the label names a PromQL expression mentions. It is a
// lexer, not a parser (promtool parses every query: scripts/promtool.sh), good enough to
// find names: it skips strings, ranges and numbers, reads label names from matchers and
// from by/without/on/ignoring lists, and takes any other identifier not followed by "(" for
// a metric name. Grafana's $__rate_interval and the like read as durations.
func names(expr string) (metrics, labels []string, err error) {
	s := grafanaVars.ReplaceAllString(expr, "5m")
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			if i, err = skipString(s, i); err != nil {
				return nil, nil, err
			}
		case c == '{':
			var ls []string
			if ls, i, err = matchers(s, i); err != nil {
				return nil, nil, err
			}
			labels = append(labels, ls...)
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return nil, nil, fmt.Errorf("unclosed [ at %d", i)
			}
			i += j + 1
		case isDigit(c) || c == '.':
			for i < len(s) && (isIdent(s[i]) || s[i] == '.') {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdent(s[j]) {
				j++
			}
			word, rest := s[i:j], strings.TrimLeft(s[j:], " \t\n")
			i = j
			switch {
			case slices.Contains(labelListers, word) && strings.HasPrefix(rest, "("):
				k := strings.IndexByte(s[i:], ')')
				if k < 0 {
					return nil, nil, fmt.Errorf("unclosed %s ( list", word)
				}
				labels = append(labels, identifiers(s[i:i+k])...)
				i += k + 1
			case strings.HasPrefix(rest, "("), slices.Contains(aggregations, word),
				slices.Contains(keywords, word), slices.Contains(labelListers, word):
			default:
				metrics = append(metrics, word)
			}
		default:
			i++
		}
	}
	return metrics, labels, nil
}

// matchers reads a {label op "value", ...} block at s[i] and returns the label names and the
// index after it.
func matchers(s string, i int) ([]string, int, error) {
	var labels []string
	i++ // {
	for i < len(s) {
		c := s[i]
		switch {
		case c == '}':
			return labels, i + 1, nil
		case c == '"' || c == '\'' || c == '`':
			var err error
			if i, err = skipString(s, i); err != nil {
				return nil, 0, err
			}
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdent(s[j]) {
				j++
			}
			labels = append(labels, s[i:j])
			i = j
		default:
			i++
		}
	}
	return nil, 0, fmt.Errorf("unclosed { in %q", s)
}

func skipString(s string, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++
		case s[j] == q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unclosed string at %d in %q", i, s)
}

func identifiers(s string) []string {
	return regexp.MustCompile(`[a-zA-Z_][a-zA-Z0-9_]*`).FindAllString(s, -1)
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || c == ':' || c|0x20 >= 'a' && c|0x20 <= 'z' }
func isIdent(c byte) bool      { return isIdentStart(c) || isDigit(c) }

// TestNames pins the lexer on the shapes our queries take.
func TestNames(t *testing.T) {
	for _, tc := range []struct {
		expr            string
		metrics, labels []string
	}{
		{`up`, []string{"up"}, nil},
		{`up{job="tpwallet"} == 0`, []string{"up"}, []string{"job"}},
		{`sum by (le) (rate(x_bucket{route=~"/v1/.+|unmatched", code!="429"}[$__rate_interval]))`,
			[]string{"x_bucket"}, []string{"le", "route", "code"}},
		{`histogram_quantile(0.99, sum by (job, le) (rate(a_bucket[5m])))`, []string{"a_bucket"}, []string{"job", "le"}},
		{`a / 0.0001 > 14.4 and b offset 5m / 1e3 > 6`, []string{"a", "b"}, nil},
		{`sum(a) by (kind) / ignoring (code) group_left (x) job:b:rate5m`, []string{"a", "job:b:rate5m"},
			[]string{"kind", "code", "x"}},
		{`rate(a{l="}{[", m='it\'s'}[1h:5m])`, []string{"a"}, []string{"l", "m"}},
		{`1 - sum_over_time(r[30d]) unless on (job, instance) (c == bool 1)`, []string{"r", "c"}, []string{"job", "instance"}},
	} {
		m, l, err := names(tc.expr)
		if err != nil {
			t.Errorf("names(%q): %v", tc.expr, err)
			continue
		}
		if !slices.Equal(m, tc.metrics) || !slices.Equal(l, tc.labels) {
			t.Errorf("names(%q): got %q %q, want %q %q", tc.expr, m, l, tc.metrics, tc.labels)
		}
	}
	for _, bad := range []string{`a{l="x}`, `rate(a[5m)`, `a{l="x"`} {
		if _, _, err := names(bad); err == nil {
			t.Errorf("names(%q): got no error, want one", bad)
		}
	}
}

#!/usr/bin/env bash
# Checks the SRE kit in deploy/: `promtool check rules` on the alerting and recording rules,
# `promtool test rules` on deploy/prometheus/tests, and the Grafana dashboard (valid JSON,
# only metric names from the contract or our recording rules, every query parses). Also
# run by scripts/test.sh. Fails loudly if promtool cannot be had.
#
# promtool comes from Debian's `prometheus` package. We do not `apt-get install` it: that
# package would also create a user and enable and start a Prometheus server (systemd unit,
# init script). Instead the .deb is downloaded and only /usr/bin/promtool is extracted into
# a cache directory. PROMTOOL=/path/to/promtool overrides all of this; a promtool on PATH
# is used as is.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${TPWALLET_TOOLS:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/tpwallet}"

fail() { echo "promtool.sh: $*" >&2; exit 1; }

# extract downloads Debian's prometheus package and keeps only its promtool, in $cache.
extract() {
  command -v apt-get >/dev/null || fail "promtool is missing and there is no apt-get to fetch it; set PROMTOOL=/path/to/promtool"
  local tmp
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  # apt downloads as the _apt user where it exists; let it write into the directory.
  chown _apt "$tmp" 2>/dev/null || true
  echo "promtool not found: extracting it from Debian's prometheus package" >&2
  if ! (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1); then
    # No package lists yet (a fresh machine): fetch them once, then retry loudly.
    apt-get update -qq >&2 || fail "apt-get update failed"
    (cd "$tmp" && apt-get download prometheus >&2) || fail "apt-get download prometheus failed"
  fi
  dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/root" || fail "cannot unpack the prometheus package"
  mkdir -p "$cache"
  install -m 0755 "$tmp/root/usr/bin/promtool" "$cache/promtool"
}

if [ -z "${PROMTOOL:-}" ]; then
  if command -v promtool >/dev/null; then
    PROMTOOL=$(command -v promtool)
  else
    [ -x "$cache/promtool" ] || extract
    PROMTOOL="$cache/promtool"
  fi
fi
"$PROMTOOL" --version >/dev/null 2>&1 || fail "$PROMTOOL does not run"
echo "using $PROMTOOL ($("$PROMTOOL" --version 2>&1 | head -1))"

"$PROMTOOL" check rules deploy/prometheus/recording.rules.yml deploy/prometheus/alerts.rules.yml
"$PROMTOOL" test rules deploy/prometheus/tests/*.yml

# The dashboard: the Go test checks its structure and metric names, and writes every query
# as a recording rule so that promtool parses each one.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go test -count=1 ./deploy -args -dashboard-rules "$work/dashboard.rules.yml"
[ -s "$work/dashboard.rules.yml" ] || fail "the dashboard check wrote no queries"
"$PROMTOOL" check rules "$work/dashboard.rules.yml" >/dev/null || {
  "$PROMTOOL" check rules "$work/dashboard.rules.yml" >&2 || true
  fail "a dashboard query does not parse (the rule names are dashboard:<panel id>:<ref id>)"
}
echo "dashboard queries parse"

#!/usr/bin/env bash
# The long versions of the reliability suite (docs/reliability.md). The README's test command
# (scripts/test.sh) runs the short versions of the same tests. This takes well over an hour:
#   scripts/torture.sh            # everything
#   scripts/torture.sh sim soak   # only some parts: sim lin crash outage soak
# Tunables (environment): SIM_SEEDS, SIM_STEPS, CRASH_CYCLES, SOAK (a Go duration).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh

parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(sim lin crash outage soak)
want() { local p; for p in "${parts[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }

if want sim; then
  echo "== deterministic simulation: ${SIM_SEEDS:-2000} seeds x ${SIM_STEPS:-2000} steps"
  go test -count=1 -timeout 6h -run TestSimulation ./internal/sim -v \
    -sim.seeds "${SIM_SEEDS:-2000}" -sim.steps "${SIM_STEPS:-2000}" | tail -40
fi
if want lin; then
  echo "== linearizability, long (steady, SIGKILL, PostgreSQL)"
  go test -count=1 -timeout 2h -run 'TestLinearizability' ./cmd/tpwallet -v -lin-long | grep -E '^(---|ok|FAIL)|operations'
fi
if want crash; then
  echo "== crash loops: ${CRASH_CYCLES:-50} SIGKILL cycles on Pebble and on PostgreSQL, failover"
  go test -count=1 -timeout 2h -run 'TestCrashRecovery|TestFailoverPostgres' ./cmd/tpwallet -v \
    -crash.cycles "${CRASH_CYCLES:-50}" | grep -E '^(---|ok|FAIL)|present|consistent|took over'
fi
if want outage; then
  echo "== PostgreSQL stopped under load, 10 times"
  go test -count=10 -timeout 1h -run 'TestDatabaseOutagePostgres' ./cmd/tpwallet -v | grep -E '^(---|ok|FAIL)|consistent'
fi
if want soak; then
  echo "== soak: ${SOAK:-30m} of load, memory and latency flat (server built without the race detector)"
  TPWALLET_TEST_NORACE=1 go test -count=1 -timeout 2h -run TestSoak ./cmd/tpwallet -v \
    -soak "${SOAK:-30m}" -soak.chunk 30s | grep -E '^(---|ok|FAIL)|chunk|memory|latency'
fi
echo "== torture passed: ${parts[*]}"

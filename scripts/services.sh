#!/usr/bin/env bash
# Make sure the services the test suite talks to are up, starting any that are installed but
# stopped. Fails loudly (non-zero) if one cannot be reached: CI must never skip silently.
set -euo pipefail

wait_port() { # host port name
  for _ in $(seq 1 50); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "services: $3 is not reachable on $1:$2" >&2
  return 1
}

up() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# PostgreSQL 15 (127.0.0.1:5432, user postgres, trust auth).
if ! up 127.0.0.1 5432; then
  echo "services: starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
wait_port 127.0.0.1 5432 PostgreSQL

# A second PostgreSQL cluster, tpwtorture (127.0.0.1:5433, trust auth), that the reliability
# tests stop and start under load: stopping the main one would fail every other test.
pgver="$(ls /etc/postgresql | sort -n | tail -1)"
if ! pg_lsclusters -h | awk '{print $2}' | grep -qx tpwtorture; then
  echo "services: creating PostgreSQL cluster tpwtorture on port 5433" >&2
  pg_createcluster "$pgver" tpwtorture -p 5433 -- --auth=trust >/dev/null
fi
if ! up 127.0.0.1 5433; then
  echo "services: starting PostgreSQL cluster tpwtorture" >&2
  pg_ctlcluster --skip-systemctl-redirect "$pgver" tpwtorture start
fi
wait_port 127.0.0.1 5433 "PostgreSQL (tpwtorture)"

# NATS with JetStream (127.0.0.1:4222).
if ! up 127.0.0.1 4222; then
  echo "services: starting NATS" >&2
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
fi
wait_port 127.0.0.1 4222 NATS

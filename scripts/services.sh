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

# NATS with JetStream (127.0.0.1:4222).
if ! up 127.0.0.1 4222; then
  echo "services: starting NATS" >&2
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
fi
wait_port 127.0.0.1 4222 NATS

#!/usr/bin/env bash
# Start PostgreSQL and Redis when they are installed but down; the tests that need them
# fail loudly (never skip) if they are still unreachable afterwards.
set -u
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! up 5432 && command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
if ! up 6379 && command -v redis-server >/dev/null 2>&1; then
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
fi
for _ in $(seq 1 50); do up 5432 && up 6379 && exit 0; sleep 0.2; done
up 5432 || echo "warning: PostgreSQL is not reachable on 127.0.0.1:5432 (its tests will fail)"
up 6379 || echo "warning: Redis is not reachable on 127.0.0.1:6379 (its tests will fail)"
exit 0

#!/usr/bin/env bash
# Make sure the servers the integration tests talk to are up on 127.0.0.1, and that the
# browser the dashboard test drives is installed.
# Redis :6379 and PostgreSQL :5432 (database `test`) are expected; start them when they are down.
# The Kafka-protocol broker (Tansu) is started by the tests themselves (tests/integration/conftest.py).
set -uo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! up 6379; then
  echo "services: starting redis-server on :6379"
  if ! command -v redis-server >/dev/null; then apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; fi
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi

if ! up 5432; then
  echo "services: starting PostgreSQL on :5432"
  if ! command -v pg_ctlcluster >/dev/null; then apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; fi
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi

# The dashboard's browser test (tests/browser) drives Debian's headless Chromium.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "services: installing chromium and chromium-driver (the dashboard's browser test)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

for i in $(seq 1 30); do
  up 6379 && up 5432 && break
  sleep 1
done
if command -v psql >/dev/null; then
  psql -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname='test'" 2>/dev/null | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null 2>&1 || true
fi
up 6379 || echo "services: WARNING redis is not reachable on :6379"
up 5432 || echo "services: WARNING postgresql is not reachable on :5432"
exit 0

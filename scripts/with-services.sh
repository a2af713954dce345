#!/usr/bin/env bash
# Starts the servers the tests need on free loopback ports, runs the given
# command with their addresses in the environment, and stops them afterwards,
# whether the command passed or failed. Its exit code is the command's.
#   JAMUNA_TEST_NATS_URL  NATS with JetStream (fsync before every ack)
#   JAMUNA_TEST_MONGODB_URL  FerretDB (MongoDB wire protocol, SQLite backend)
#   JAMUNA_TEST_REDIS_URL  Redis (no persistence)
#   JAMUNA_TEST_S3_URL  gofakes3 (S3-compatible, in memory; any credentials; bucket `jamuna` made at start)
#   JAMUNA_TEST_SMTP_URL  mailpit's SMTP server (smtp://127.0.0.1:PORT, no TLS, no auth)
#   JAMUNA_TEST_MAILPIT_URL  mailpit's HTTP API (GET /api/v1/messages lists what arrived)
#   JAMUNA_REQUIRE_SERVICES=1  tests whose server is missing fail, not skip
set -euo pipefail

tmp=$(mktemp -d -t jamuna-services.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() { # name port
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$1 did not start on port $2; its log:" >&2
  cat "$tmp/$1.log" >&2 || true
  exit 1
}

nats_port=$(free_port)
sed -e "s|@PORT@|$nats_port|" -e "s|@STORE@|$tmp/jetstream|" infra/nats/nats.conf > "$tmp/nats.conf"
nats-server -c "$tmp/nats.conf" >"$tmp/nats.log" 2>&1 &
pids+=($!)
wait_for_port nats "$nats_port"
export JAMUNA_TEST_NATS_URL="nats://127.0.0.1:$nats_port"

ferret_port=$(free_port)
mkdir -p "$tmp/ferretdb"
ferretdb --handler=sqlite --sqlite-url="file:$tmp/ferretdb/" --state-dir="$tmp/ferretdb" \
  --listen-addr="127.0.0.1:$ferret_port" --debug-addr="127.0.0.1:$(free_port)" \
  --telemetry=disable --log-level=warn >"$tmp/ferretdb.log" 2>&1 &
pids+=($!)
wait_for_port ferretdb "$ferret_port"
export JAMUNA_TEST_MONGODB_URL="mongodb://127.0.0.1:$ferret_port/"

redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
  --dir "$tmp" --protected-mode yes >"$tmp/redis.log" 2>&1 &
pids+=($!)
wait_for_port redis "$redis_port"
export JAMUNA_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/"

s3_port=$(free_port)
gofakes3 -backend memory -host "127.0.0.1:$s3_port" -initialbucket jamuna >"$tmp/s3.log" 2>&1 &
pids+=($!)
wait_for_port s3 "$s3_port"
export JAMUNA_TEST_S3_URL="http://127.0.0.1:$s3_port"

smtp_port=$(free_port)
mailpit_port=$(free_port)
mailpit --smtp "127.0.0.1:$smtp_port" --listen "127.0.0.1:$mailpit_port" --database "$tmp/mailpit.db" \
  --smtp-auth-accept-any --smtp-auth-allow-insecure --disable-version-check >"$tmp/mailpit.log" 2>&1 &
pids+=($!)
wait_for_port mailpit "$mailpit_port"
wait_for_port smtp "$smtp_port"
export JAMUNA_TEST_SMTP_URL="smtp://127.0.0.1:$smtp_port"
export JAMUNA_TEST_MAILPIT_URL="http://127.0.0.1:$mailpit_port"

export JAMUNA_REQUIRE_SERVICES=1
echo "services: NATS (JetStream) on $JAMUNA_TEST_NATS_URL, FerretDB on $JAMUNA_TEST_MONGODB_URL, Redis on $JAMUNA_TEST_REDIS_URL, S3 (gofakes3) on $JAMUNA_TEST_S3_URL, SMTP (mailpit) on $JAMUNA_TEST_SMTP_URL (API $JAMUNA_TEST_MAILPIT_URL)"

"$@"

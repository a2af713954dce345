#!/usr/bin/env bash
# Runs schemathesis (the test venv's, pinned in scripts/install-deps.sh)
# against the real `jamuna serve --dev` and its /openapi.json, signed in as
# the demo admin: every operation gets generated requests (examples, coverage
# and fuzzing phases) and the run fails on
#   - not_a_server_error        any 5xx;
#   - positive_data_acceptance  a request the schema allows that is rejected
#                               with 400/422 (the schema must declare the
#                               handlers' real constraints);
#   - status_code_conformance, content_type_conformance,
#     response_schema_conformance  answers the document does not describe.
# Prints the number of cases and the failures; exits non-zero on any.
#
# Usage: scripts/schemathesis.sh   (JAMUNA_BIN: the binary, default the debug build;
#        JAMUNA_VENV: the venv; SCHEMATHESIS_MAX_EXAMPLES: cases per operation and phase)
#
# What the run leaves out or bends, and why (the configuration is below):
#   - the stateful phase: it chains answers into requests (GET /users/me's
#     id into PATCH /users/{id}/role, DELETE /users/{id}) and would demote or
#     erase the admin; for the same reason those two operations draw no ids
#     from answers in the other phases;
#   - POST /api/v1/auth/logout-all runs as an agent of its own (its first
#     call ends the caller's sessions);
#   - GET /api/v1/conversations sends a cursor the server answered (a cursor
#     is opaque: anything else is a 400);
#   - four operations whose documented 400 states a rule JSON Schema cannot
#     (a WebSocket handshake, analytics' from <= to within 366 days, an
#     imported file's grammar) may answer it to a schema-valid request.
# The server runs with relaxed limits, because every generated request comes
# from one address and one user: JAMUNA_RATE_LIMIT_PER_MINUTE (600 a minute
# per client by default; schemathesis sends more) and
# JAMUNA_VISITORS_PER_IP_PER_HOUR (10 by default; the widget key is in
# GET /api/v1/tenant's answer, from which schemathesis may take it).
# After the run, the admin's token must still be an admin's.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${JAMUNA_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/jamuna-target}/debug/jamuna}"
venv="${JAMUNA_VENV:-$HOME/.cache/jamuna-venv}"
examples="${SCHEMATHESIS_MAX_EXAMPLES:-25}"
[ -x "$bin" ] || { echo "no jamuna binary at $bin (cargo build, or set JAMUNA_BIN)" >&2; exit 1; }
[ -x "$venv/bin/schemathesis" ] || { echo "no schemathesis in $venv (run scripts/install-deps.sh)" >&2; exit 1; }

work="$(mktemp -d)"
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

admin_email=admin@demo.example
admin_password="schemathesis-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
JAMUNA_DATA_DIR="$work/data" JAMUNA_DEMO_ADMIN_EMAIL="$admin_email" JAMUNA_DEMO_ADMIN_PASSWORD="$admin_password" \
  JAMUNA_LOG="${JAMUNA_LOG:-warn,qdrant_edge=error}" \
  JAMUNA_RATE_LIMIT_PER_MINUTE=1000000 JAMUNA_VISITORS_PER_IP_PER_HOUR=1000000 \
  "$bin" serve --listen 127.0.0.1:0 --dev >"$work/server.out" 2>"$work/server.err" &
server=$!
base=""
for _ in $(seq 1 600); do
  base="$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/server.out" | head -n1)"
  [ -n "$base" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.err" >&2; echo "jamuna serve exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$base" ] || { echo "jamuna serve printed no address" >&2; exit 1; }
echo "schemathesis against $base"

py="$venv/bin/python"
# A POST of JSON, answering the field `field` of the answer.
post_json() {
  "$py" - "$base$1" "$2" "${3:-}" "$4" <<'PY'
import json, sys, urllib.request
url, body, token, field = sys.argv[1:5]
req = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": "application/json"})
if token:
    req.add_header("Authorization", f"Bearer {token}")
with urllib.request.urlopen(req) as r:
    print(json.load(r)[field])
PY
}
login() {
  post_json /api/v1/auth/login "{\"tenant\":\"demo\",\"email\":\"$1\",\"password\":\"$2\"}" "" access_token
}
admin_token="$(login "$admin_email" "$admin_password")"

# The admin signs everything but logout-all, which gets an agent of its own.
post_json /api/v1/users "{\"email\":\"schemathesis-agent@demo.example\",\"password\":\"$admin_password\",\"role\":\"agent\"}" "$admin_token" id >/dev/null
agent_token="$(login schemathesis-agent@demo.example "$admin_password")"

# A page cursor is opaque: only one the server answered is valid (anything
# else is a 400). Two conversations of a visitor make a list of two pages;
# the first page's next_cursor is the one GET /api/v1/conversations sends.
widget_key="$(sed -n 's/^widget key: //p' "$work/server.out" | head -n1)"
visitor_token="$(post_json /api/v1/auth/visitor "{\"widget_key\":\"$widget_key\"}" "" access_token)"
for _ in 1 2; do post_json /api/v1/conversations '{"channel":"web"}' "$visitor_token" id >/dev/null; done
cursor="$("$py" - "$base/api/v1/conversations?limit=1" "$admin_token" <<'PY'
import json, sys, time, urllib.request
for _ in range(100):  # the list is a read model: it follows the log
    req = urllib.request.Request(sys.argv[1], headers={"Authorization": f"Bearer {sys.argv[2]}"})
    with urllib.request.urlopen(req) as r:
        page = json.load(r)
    if page.get("next_cursor"):
        print(page["next_cursor"])
        break
    time.sleep(0.1)
PY
)"
[ -n "$cursor" ] || { echo "no second page of conversations to take a cursor from" >&2; exit 1; }

cat >"$work/schemathesis.toml" <<TOML
headers = { Authorization = "Bearer $admin_token" }
# Each run the same (seed 16), and nothing written to the worktree.
cache = { enabled = false }

# Its first call ends the caller's sessions: not the admin's.
[[operations]]
include-operation-id = "logoutAll"
headers = { Authorization = "Bearer $agent_token" }

# Ids seen in answers (GET /users/me's among them) would demote or erase
# the admin: these two get generated ids only.
[[operations]]
include-operation-id = ["changeRole", "eraseUser"]
phases.examples.extra-data-sources.responses = false
phases.coverage.extra-data-sources.responses = false
phases.fuzzing.extra-data-sources.responses = false

[[operations]]
include-operation-id = "listConversations"
parameters = { "query.cursor" = "$cursor" }

# Rules a JSON schema cannot state, answered with the 400 these operations
# document: a WebSocket handshake (a plain GET is not one), analytics'
# from <= to within 366 days (two parameters), and the grammar of an
# imported file (Markdown with a heading, CSV with its header, unique titles).
[[operations]]
include-operation-id = ["openSocket", "seedSocket", "analytics", "importArticles"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
TOML

checks=not_a_server_error,positive_data_acceptance,status_code_conformance,content_type_conformance,response_schema_conformance
status=0
"$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" --no-color run "$base/openapi.json" \
  --checks "$checks" --phases examples,coverage,fuzzing --max-examples "$examples" --seed 16 \
  --workers 2 --request-timeout 30 --warnings off --suppress-health-check all --continue-on-failure || status=1

# The run means something only if the admin stayed signed in throughout.
me_status="$("$py" - "$base/api/v1/users/me" "$admin_token" <<'PY'
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1], headers={"Authorization": f"Bearer {sys.argv[2]}"})
try:
    with urllib.request.urlopen(req) as r:
        print(r.status, __import__("json").load(r)["role"])
except urllib.error.HTTPError as e:
    print(e.code)
PY
)"
if [ "$me_status" != "200 admin" ]; then
  echo "schemathesis: the admin's token no longer works as an admin's after the run ($me_status): the run's answers are not the admin's" >&2
  status=1
fi

if [ "$status" != 0 ]; then
  echo "schemathesis: failures (above); the server's log:" >&2
  tail -n 50 "$work/server.err" >&2
  exit 1
fi
echo "schemathesis: no failures"

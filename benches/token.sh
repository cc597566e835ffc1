#!/usr/bin/env bash
# Load on the token endpoint, loopback only, against the release build with rate limits off:
# token issuance for a client with a valid secret, and the refusal path (a wrong secret), on
# SQLite and on Postgres. Prints wrk's requests per second and latency distribution and the
# portal's peak resident memory (VmHWM).
#
#   benches/token.sh [seconds] [postgres-admin-url]
#   BIN=<binary> benches/token.sh ...   (an existing build)
#   (defaults: 15 s, postgres://postgres:postgres@127.0.0.1:5432/postgres; needs wrk and psql)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-15}
pg_admin=${2:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
# BIN=<path> measures that binary instead of building the checkout (to compare two builds).
if [ -n "${BIN:-}" ]; then bin=$BIN; else cargo build --release --quiet; bin="$PWD/target/release/secret-portal"; fi
secret=$(python3 -c 'import secrets,string; a=string.ascii_letters+string.digits; print("".join(secrets.choice(a) for _ in range(40)))')
hash=$(printf '%s' "$secret" | sha256sum | cut -d' ' -f1)

pids=()
# Whatever stops the script (a missing wrk, a failed insert, Ctrl-C) stops the portals too.
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

run() { # backend label, then env for the portal
  local label=$1; shift
  local work; work=$(mktemp -d)
  local port; port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  (cd "$work" && exec env "$@" PORTAL_BIND=127.0.0.1:$port PORTAL_BASE_URL=http://127.0.0.1:$port PORTAL_RATE_LIMITS=off \
      PORTAL_REMINDER_INTERVAL=86400 RUST_LOG=warn "$bin" serve --demo >/dev/null 2>"$work/log") &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  local client_id
  if [ "$label" = sqlite ]; then
    client_id=$(python3 - "$work/data/portal.db" "$hash" <<'PY'
import sqlite3, sys, uuid, datetime
db = sqlite3.connect(sys.argv[1], timeout=10)
app_id, client = db.execute("select id, client_id from application where name like 'Partner-%-SMC'").fetchone()
now = datetime.datetime.now(datetime.timezone.utc)
d = (now + datetime.timedelta(days=300)).date()
exp = (d + datetime.timedelta(days=1)).isoformat() + "T00:00:00+00:00"
db.execute("insert into client_secret (id, application_id, name, hint, secret_hash, expires_on, expires_at, created_at) values (?,?,?,?,?,?,?,?)",
    (uuid.uuid4().bytes, app_id, "Benchmark", "abc", bytes.fromhex(sys.argv[2]), d.isoformat(), exp, now.isoformat()))
db.commit()
print(uuid.UUID(bytes=client))
PY
)
  else
    client_id=$(psql "$DATABASE_URL" -Atq -c "insert into client_secret (id, application_id, name, hint, secret_hash, expires_on, expires_at, created_at)
        select gen_random_uuid(), id, 'Benchmark', 'abc', decode('$hash', 'hex'), current_date + 300, (current_date + 301)::timestamp at time zone 'UTC', now()
        from application where name like 'Partner-%-SMC';" -c "select client_id from application where name like 'Partner-%-SMC'")
  fi
  for path in good bad; do
    local s=$secret; [ $path = bad ] && s=wrong-secret-value
    cat > "$work/$path.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=client_credentials&client_id=$client_id&client_secret=$s&resource=match-connect-production"
LUA
    echo "== $label, $path secret: wrk -t2 -c32 -d${seconds}s"
    wrk -t2 -c32 -d"${seconds}s" --latency -s "$work/$path.lua" "http://127.0.0.1:$port/oauth2/token" \
      | grep -E "Requests/sec|Non-2xx|50%|99%|requests in"
  done
  echo "peak RSS (VmHWM): $(( $(awk '/VmHWM/ {print $2}' /proc/$pid/status) / 1024 )) MiB"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}

[ "${ONLY:-}" = postgres ] || run sqlite
db="sp_bench_token_$$"
psql "$pg_admin" -qc "create database $db"
pg_url="${pg_admin%/*}/$db"
key=$(head -c 32 /dev/urandom | base64)
DATABASE_URL=$pg_url run postgres DATABASE_URL="$pg_url" PORTAL_MASTER_KEY="$key"
psql "$pg_admin" -qc "drop database $db with (force)"

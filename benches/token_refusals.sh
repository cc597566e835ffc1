#!/usr/bin/env bash
# The token endpoint's refusal path with rate limits ON (issue 12, point 3), for one or more
# portal binaries side by side (alternating, so the machine's drift hits each alike), on SQLite
# and on Postgres. Three loads, wrk -t2 -c32, loopback:
#   blocked  one client ID, a wrong secret, one address: after 10 failures every answer is 429
#   random   a random client ID and a random X-Forwarded-For address (a trusted proxy) per
#            request: every request reaches the database and is a failure to count (401)
#   flood    random client IDs from one address: past the per-address pre-limit (100 a minute,
#            since the shared counts) answered from memory (429)
#
#   benches/token_refusals.sh [seconds] [binary ...]
#   (defaults: 10 s, target/release/secret-portal built now; needs wrk, psql, python3)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
shift || true
pg_admin=${PG_ADMIN:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
if [ $# -eq 0 ]; then
  cargo build --release --quiet
  set -- "$PWD/target/release/secret-portal"
fi
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
work=$(mktemp -d)
pids=()
dbs=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  for db in "${dbs[@]}"; do psql "$pg_admin" -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/blocked.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=client_credentials&client_id=0f8fad5b-d9cb-469f-a165-70867728950e&client_secret=wrong&resource=match-connect-production"
LUA
cat > "$work/random.lua" <<'LUA'
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
local function id()
  return string.format("%08x-%04x-4%03x-a%03x-%06x%06x", math.random(0, 0x7fffffff), math.random(0, 0xffff),
    math.random(0, 0xfff), math.random(0, 0xfff), math.random(0, 0xffffff), math.random(0, 0xffffff))
end
request = function()
  local headers = { ["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.random(0, 255), math.random(0, 255), math.random(1, 254)) }
  return wrk.format("POST", nil, headers, "grant_type=client_credentials&client_id=" .. id() .. "&client_secret=wrong")
end
LUA
sed 's/\["X-Forwarded-For"\] = [^}]*)/["X-Forwarded-For"] = "10.0.0.1"/' "$work/random.lua" > "$work/flood.lua"

start() { # binary, backend -> sets port and pid
  local bin=$1 backend=$2
  local dir; dir=$(mktemp -d -p "$work")
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  local env=()
  if [ "$backend" = postgres ]; then
    local db="sp_bench_refusals_$$_${#dbs[@]}"
    psql "$pg_admin" -qc "create database $db"
    dbs+=("$db")
    env=(DATABASE_URL="${pg_admin%/*}/$db" PORTAL_MASTER_KEY="$(head -c 32 /dev/urandom | base64)")
  fi
  (cd "$dir" && exec env "${env[@]}" PORTAL_BIND=127.0.0.1:$port PORTAL_BASE_URL=http://127.0.0.1:$port \
      PORTAL_TRUSTED_PROXIES=127.0.0.1/32 PORTAL_REMINDER_INTERVAL=86400 RUST_LOG=warn "$bin" serve --demo \
      >/dev/null 2>"$dir/log") &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.1; done
  echo "portal did not start: $(cat "$dir/log")" >&2; exit 1
}

for backend in sqlite postgres; do
  for load in blocked random flood; do
    for bin in "$@"; do
      start "$bin" "$backend"
      result=$(wrk -t2 -c32 -d"${seconds}s" --latency -s "$work/$load.lua" "http://127.0.0.1:$port/oauth2/token")
      rps=$(awk '/Requests\/sec/ {print $2}' <<<"$result")
      p50=$(awk '$1=="50%" {print $2}' <<<"$result")
      p99=$(awk '$1=="99%" {print $2}' <<<"$result")
      codes=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'X-Forwarded-For: 10.0.0.1' \
        -d 'grant_type=client_credentials&client_id=0f8fad5b-d9cb-469f-a165-70867728950e&client_secret=wrong' \
        "http://127.0.0.1:$port/oauth2/token")
      rows=""
      if [ "$backend" = postgres ]; then
        rows=$(psql "${pg_admin%/*}/${dbs[-1]}" -Atc "select count(*) from pg_tables where tablename = 'throttle_window'" 2>/dev/null)
        [ "$rows" = 1 ] && rows=$(psql "${pg_admin%/*}/${dbs[-1]}" -Atc "select count(*) from throttle_window") || rows="-"
        rows=" throttle rows=$rows"
      fi
      printf '%-8s %-7s %-40s %10s req/s  p50 %-8s p99 %-8s last answer %s%s\n' \
        "$backend" "$load" "$bin" "$rps" "$p50" "$p99" "$codes" "$rows"
      kill "$pid"; wait "$pid" 2>/dev/null || true
    done
  done
done

#!/usr/bin/env bash
# Where the token endpoint's time goes on Postgres (issue 20, point 3): the release build under
# `wrk -t2 -c32` for 20 s with a valid secret; after 5 s, 10 s of system-wide `perf record -e
# cpu-clock` samples (this machine has no hardware counters; as root). Prints wrk's figures,
# Postgres transactions per request (pg_stat_database), and the samples by process, by part of
# the portal and by symbol.
#
#   benches/profile_token.sh [postgres-admin-url]     (needs wrk, psql, perf: apt-get install linux-perf)
#   BIN=<binary> benches/profile_token.sh             (an existing build)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${BIN:-}" ]; then bin=$(realpath "$BIN"); else cargo build --release --quiet; bin="$PWD/target/release/secret-portal"; fi
pg_admin=${1:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
out=$(mktemp -d)
secret=$(python3 -c 'import secrets,string; a=string.ascii_letters+string.digits; print("".join(secrets.choice(a) for _ in range(40)))')
hash=$(printf '%s' "$secret" | sha256sum | cut -d' ' -f1)
db="sp_prof_$$"
psql "$pg_admin" -qc "create database $db"
pg_url="${pg_admin%/*}/$db"
key=$(head -c 32 /dev/urandom | base64)
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$work" && exec env DATABASE_URL="$pg_url" PORTAL_MASTER_KEY="$key" PORTAL_BIND="127.0.0.1:$port" PORTAL_BASE_URL="http://127.0.0.1:$port" PORTAL_RATE_LIMITS=off \
    PORTAL_REMINDER_INTERVAL=86400 RUST_LOG=warn "$bin" serve --demo >/dev/null 2>"$work/log") &
pid=$!
trap 'kill $pid 2>/dev/null || true; psql "$pg_admin" -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || true; rm -rf "$out" "$work"' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$port/healthz" >/dev/null || { echo "the portal did not start:"; cat "$work/log"; exit 1; }
client_id=$(psql "$pg_url" -Atq -c "insert into client_secret (id, application_id, name, hint, secret_hash, expires_on, expires_at, created_at)
    select gen_random_uuid(), id, 'Benchmark', 'abc', decode('$hash', 'hex'), current_date + 300, (current_date + 301)::timestamp at time zone 'UTC', now()
    from application where name like 'Partner-%-SMC';" -c "select client_id from application where name like 'Partner-%-SMC'")
cat > "$work/good.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=client_credentials&client_id=$client_id&client_secret=$secret&resource=match-connect-production"
LUA
# Count statements per request from pg_stat_database (xact_commit) and tup counters
before=$(psql "$pg_url" -Atc "select xact_commit from pg_stat_database where datname = '$db'")
wrk -t2 -c32 -d20s --latency -s "$work/good.lua" "http://127.0.0.1:$port/oauth2/token" > "$work/wrk.txt" &
wrkpid=$!
sleep 5
perf record -e cpu-clock -F 499 -a -o "$out/perf.data" -- sleep 10 2>/dev/null >/dev/null
wait $wrkpid
after=$(psql "$pg_url" -Atc "select xact_commit from pg_stat_database where datname = '$db'")
cat "$work/wrk.txt" | grep -E "Requests/sec|requests in|50%|99%"
reqs=$(grep "requests in" "$work/wrk.txt" | awk '{print $1}')
echo "Postgres transactions: $((after - before)) for $reqs requests"
echo "== samples by process"
perf report -i "$out/perf.data" --sort comm --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -6
echo "== the portal's samples by part (percent of all samples)"
perf report -i "$out/perf.data" --comm tokio-rt-worker --sort dso,symbol --stdio 2>/dev/null \
  | grep -v '^#' | grep -v '^$' | awk '{p=$1; sub("%","",p); $1=""; print p "\t" $0}' > "$out/syms.tsv"
python3 - "$out/syms.tsv" <<'PY'
import re, sys
rows = [l.rstrip("\n").split("\t", 1) for l in open(sys.argv[1]) if "\t" in l]
total = sum(float(p) for p, _ in rows) or 1
parts = [("kernel", r"\[kernel"), ("malloc/free", r"malloc|_int_free|free\b|unlink_chunk|realloc"),
         ("P-256 ECDSA (token signature)", r"nistz256|ecp_|ecdsa|bn_|BN_|p256"),
         ("TLS to Postgres", r"rustls|ring_core|aes|gcm|ghash|chacha"), ("sqlx", r"sqlx"), ("hyper", r"hyper"),
         ("axum/tower", r"axum|tower"), ("tokio", r"tokio"), ("tracing", r"tracing")]
print(f"portal: {total:.1f}% of all samples")
for name, pat in parts:
    share = sum(float(p) for p, s in rows if re.search(pat, s))
    print(f"{name:32} {share:5.1f}% of all, {100 * share / total:4.1f}% of the portal's")
PY
echo "== the portal's top symbols"
head -15 "$out/syms.tsv" | cut -c1-120

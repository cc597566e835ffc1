#!/usr/bin/env bash
# Load on the password step: 50 concurrent sign-ins (each one argon2id verification, ~19 MiB and
# ~20 ms of a core) against the release build, loopback only, rate limits off. Prints requests per
# second and latency (wrk) and the portal's peak resident memory (VmHWM).
#
#   benches/sign_in.sh [seconds]        (default 20; needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
cargo build --release --quiet
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$work" && PORTAL_BIND=127.0.0.1:$port PORTAL_RATE_LIMITS=off RUST_LOG=warn \
  exec "$OLDPWD/target/release/secret-portal") &
pid=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
idle=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "email=nobody%40bench.example&password=not+the+right+password"
LUA
echo "== 50 connections, ${seconds}s, POST /login (unknown email: the dummy-hash path, same cost as a wrong password)"
wrk -t2 -c50 -d"${seconds}s" --latency -s "$work/post.lua" "http://127.0.0.1:$port/login"
peak=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
echo "idle RSS: $((idle / 1024)) MiB; peak RSS (VmHWM): $((peak / 1024)) MiB"

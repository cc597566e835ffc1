#!/usr/bin/env bash
# Load on the portal, loopback only, against the release build on the embedded default (SQLite;
# DATABASE_URL and PORTAL_MASTER_KEY in the environment run it on Postgres instead), rate limits
# off: the Manage API Credentials page of a credential manager of all three applications of an
# organisation with 3 secrets each, the sign-in password step (argon2id), and the token endpoint.
# Prints wrk's requests per second and latency, the time from start to ready, and the portal's
# resident memory idle and at its peak (VmHWM).
#
#   benches/load.sh [seconds]          (default 15; needs wrk, python3)
#   ONLY=page|sign-in|token|api benches/load.sh   runs one of the loads (api: GET /api/v1/self)
#   BIN=<binary> benches/load.sh ...   measures that build instead of building the checkout (to
#   compare two builds in one session)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-15}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
if [ -n "${BIN:-}" ]; then bin=$BIN; else cargo build --release --quiet; bin="$PWD/target/release/secret-portal"; fi
helper="$PWD/benches/load.py"
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export PORTAL_BIND=127.0.0.1:$port PORTAL_BASE_URL=http://127.0.0.1:$port PORTAL_RATE_LIMITS=off \
  PORTAL_REMINDER_INTERVAL=86400 RUST_LOG=warn
url=http://127.0.0.1:$port

# The demo data (organisation NL-DemoRegistry, three applications, Jane Doe granted all three),
# loaded by a first start that stops again.
(cd "$work" && exec "$bin" serve --demo >"$work/demo" 2>>"$work/log") &
pid=$!
for _ in $(seq 1 200); do curl -fs "$url/readyz" >/dev/null && break; sleep 0.05; done
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
invite=$(awk '$1 == "credential-manager" && $2 ~ /^jane/ {print $3}' "$work/demo" | sed "s#^[a-z]*://[^/]*##")

# Start to ready on an existing database: spawn to the first 200 on /readyz.
read -r ready_ms pid < <(python3 "$helper" ready "$bin" "$work" "$port")
echo "ready after ${ready_ms} ms"
sleep 1
read -r fresh _ anon file < <(python3 "$helper" rss "$pid")
echo "idle RSS after start: ${fresh} MiB (anonymous ${anon} MiB, file-backed ${file} MiB: the binary's code)"

# 3 secrets on each application, as the issue describes; one known value for the token endpoint.
secret=$(python3 -c 'import secrets,string; a=string.ascii_letters+string.digits; print("".join(secrets.choice(a) for _ in range(40)))')
hash=$(printf '%s' "$secret" | sha256sum | cut -d' ' -f1)
sql_top_up="select a.id, a.client_id, a.name, 3 - count(s.id) from application a left join client_secret s on s.application_id = a.id group by a.id, a.client_id, a.name"
if [ -z "${DATABASE_URL:-}" ]; then
  client_id=$(python3 - "$work/data/portal.db" "$hash" "$sql_top_up" <<'PY'
import sqlite3, sys, uuid, datetime
db = sqlite3.connect(sys.argv[1], timeout=10)
now = datetime.datetime.now(datetime.timezone.utc)
d = (now + datetime.timedelta(days=300)).date()
exp = (d + datetime.timedelta(days=1)).isoformat() + "T00:00:00+00:00"
client = None
for app_id, client_id, name, missing in db.execute(sys.argv[3]).fetchall():
    for i in range(missing):
        known = name.endswith("-DM") and i == 0
        h = bytes.fromhex(sys.argv[2]) if known else uuid.uuid4().bytes * 2
        client = uuid.UUID(bytes=client_id) if known else client
        db.execute("insert into client_secret (id, application_id, name, hint, secret_hash, expires_on, expires_at, created_at) values (?,?,?,?,?,?,?,?)",
            (uuid.uuid4().bytes, app_id, f"Load {i}", "abc", h, d.isoformat(), exp, now.isoformat()))
db.commit()
print(client)
PY
)
else
  psql "$DATABASE_URL" -Atq -c "insert into client_secret (id, application_id, name, hint, secret_hash, expires_on, expires_at, created_at)
      select gen_random_uuid(), a.id, 'Load ' || n, 'abc', case when n = 1 and a.name like '%-DM' then decode('$hash', 'hex') else sha256(gen_random_uuid()::text::bytea) end,
             current_date + 300, (current_date + 301)::timestamp at time zone 'UTC', now()
      from ($sql_top_up) t(id, client_id, name, missing) join application a on a.id = t.id, generate_series(1, t.missing) n"
  client_id=$(psql "$DATABASE_URL" -Atq -c "select client_id from application where name like '%-DM'")
fi
cookie=$(python3 "$helper" enrol "$url" "$invite")
# The page as the browser gets it, once, to check it lists 3 applications.
curl -fs -H "Cookie: $cookie" "$url/manage-api-credentials" | grep -c 'class="app"' | sed 's/^/applications on the page: /' || true
sleep 2
read -r idle _ anon file < <(python3 "$helper" rss "$pid")
echo "idle RSS after a sign-in and a page: ${idle} MiB (anonymous ${anon} MiB, file-backed ${file} MiB: the binary's code)"

cat > "$work/token.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=client_credentials&client_id=$client_id&client_secret=$secret&resource=data-manager-production"
LUA
cat > "$work/sign_in.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "email=jane.doe%40demoregistry.example&password=correct+horse+battery+staple+42&next="
LUA
load() { # key, label, then wrk arguments
  local key=$1 label=$2; shift 2
  [ -z "${ONLY:-}" ] || [ "$ONLY" = "$key" ] || return 0
  echo "== $label: wrk -t2 -c32 -d${seconds}s (after 3 s of warm-up)"
  wrk -t2 -c32 -d3s "$@" >/dev/null
  wrk -t2 -c32 -d"${seconds}s" --latency "$@" | grep -E "Requests/sec|Non-2xx|Socket errors|50%|99%|requests in"
  python3 "$helper" rss "$pid" | awk '{print "RSS now " $1 " MiB, peak so far " $2 " MiB"}'
}
load page "Manage API Credentials page" -H "Cookie: $cookie" "$url/manage-api-credentials"
load sign-in "sign-in password step (argon2id)" -s "$work/sign_in.lua" "$url/login"
load token "token endpoint" -s "$work/token.lua" "$url/oauth2/token"
# The machine API (issue 16): GET /api/v1/self with HTTP Basic, the same secret (a synthetic one:
# on loopback, in wrk's arguments).
basic=$(printf '%s:%s' "$client_id" "$secret" | base64 -w0)
load api "machine API GET /api/v1/self" -H "Authorization: Basic $basic" "$url/api/v1/self"
read -r after peak anon file < <(python3 "$helper" rss "$pid")
echo "peak RSS (VmHWM): ${peak} MiB; after the load: ${after} MiB (anonymous ${anon} MiB, file-backed ${file} MiB)"

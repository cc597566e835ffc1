#!/bin/sh
# rotate.sh: rotate a WMDA secret-portal client secret from a partner system, with no person.
#
# Run it daily from a scheduler (cron, a systemd timer, a Kubernetes CronJob). POSIX sh, curl, jq.
#
#   PORTAL_URL          the portal, e.g. https://secrets.wmda.example (required)
#   CLIENT_ID           the application's client ID (required)
#   SECRET_FILE         the file that holds the current client secret, one line (required);
#                       this script replaces it, and keeps its state in "$SECRET_FILE.state"
#   RESOURCE            the resource to prove a new secret with at the token endpoint
#                       (default: the application's first resource)
#   RENEW_DAYS          rotate when the current secret expires within this many days
#                       (default 45: before the portal's 6-week reminder)
#   DELETE_AFTER_HOURS  delete the predecessor once it has gone unused this long (default 24)
#
# What one run does (DESIGN.md section 8 of secret-portal):
# 1. When an earlier run rotated, and the predecessor it recorded has gone unused at the token
#    endpoint for DELETE_AFTER_HOURS, it deletes that predecessor (a 404 counts as done).
# 2. When the current secret expires within RENEW_DAYS, it asks the portal for a successor, proves
#    it at the token endpoint, writes it to a temporary file beside SECRET_FILE and renames it over
#    SECRET_FILE, and records the predecessor. It never deletes in the run that rotated, so
#    consumers that read SECRET_FILE only at start-up have time to switch.
# Otherwise it changes nothing. A credential manager must first turn on self-rotation for the
# application on the portal's Manage API Credentials page; every step is emailed to them.
# A successor whose value could not be put in place (the token endpoint did not accept it yet, or
# the run was interrupted) stays in "$SECRET_FILE.new.*", and the next run finishes with it. The
# predecessor is deleted only while SECRET_FILE holds the secret this script rotated to.
#
# Secrets reach curl on its standard input (`curl -K -`), never in its arguments, and this script
# never prints one. Hosts that do not share one SECRET_FILE need a client secret each.
# Exit status: 0 when done (or nothing to do), 1 when the portal refused or could not be reached,
# 2 for a usage error.

set -eu
export TZ=UTC # jq's date functions read local time in some versions: keep them in UTC

say() { printf 'rotate.sh: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }

for tool in curl jq; do
  command -v "$tool" >/dev/null 2>&1 || { say "needs $tool"; exit 2; }
done
[ -n "${PORTAL_URL:-}" ] || { say "set PORTAL_URL"; exit 2; }
[ -n "${CLIENT_ID:-}" ] || { say "set CLIENT_ID"; exit 2; }
[ -n "${SECRET_FILE:-}" ] || { say "set SECRET_FILE"; exit 2; }
[ -r "$SECRET_FILE" ] || { say "cannot read SECRET_FILE ($SECRET_FILE)"; exit 2; }
RENEW_DAYS=${RENEW_DAYS:-45}
DELETE_AFTER_HOURS=${DELETE_AFTER_HOURS:-24}
for setting in "$RENEW_DAYS" "$DELETE_AFTER_HOURS"; do
  case "$setting" in
    "" | *[!0-9]* | ??????*) say "RENEW_DAYS and DELETE_AFTER_HOURS are whole numbers below 100000"; exit 2 ;;
  esac
done
PORTAL_URL=${PORTAL_URL%/}
STATE_FILE="$SECRET_FILE.state"
CR=$(printf '\r')
umask 077

# read_secret FILE: the file's first line, without a trailing CR, into $value.
read_secret() {
  value=
  IFS= read -r value < "$1" || [ -n "$value" ] || return 1
  value=${value%"$CR"}
  [ -n "$value" ]
}
read_secret "$SECRET_FILE" || { say "SECRET_FILE is empty"; exit 2; }
SECRET=$value

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
trap 'exit 1' INT TERM

# call METHOD PATH SECRET [curl options...]: the answer's body in $WORK/body, its status printed
# (000 when the portal cannot be reached). The client ID and secret travel as a curl config on
# standard input (printf is a shell builtin: no process sees them in its arguments); -q first:
# no ~/.curlrc adds tracing or verbosity.
call() {
  method=$1 path=$2 secret=$3
  shift 3
  code=$(printf 'user = "%s:%s"\n' "$CLIENT_ID" "$secret" |
    curl -q -sS -K - -X "$method" -o "$WORK/body" -w '%{http_code}' "$@" "$PORTAL_URL$path") || true
  printf '%s' "${code:-000}"
}

# problem: the reason and detail of a problem answer, for messages.
problem() {
  jq -r '"\(.type // "" | sub("^urn:wmda:secret-portal:problem:"; "")): \(.detail // "")"' "$WORK/body" 2>/dev/null ||
    printf 'unreadable answer'
}

# get_self SECRET: GET /api/v1/self as SECRET into $WORK/self; fails with a message unless 200.
get_self() {
  status=$(call GET /api/v1/self "$1")
  case "$status" in
    200) cp "$WORK/body" "$WORK/self" ;;
    000) fail "cannot reach $PORTAL_URL" ;;
    *) fail "GET /api/v1/self answered $status ($(problem))" ;;
  esac
}

# switch_to FILE ID HINT PREDECESSOR: proves the secret in FILE (a file beside SECRET_FILE) at the
# token endpoint, renames it over SECRET_FILE and records PREDECESSOR for a later run to delete.
# When the token endpoint does not accept it, FILE is kept for the next run to try again.
switch_to() {
  file=$1 id=$2 hint=$3 predecessor=$4
  read_secret "$file" || fail "$file is empty"
  proved=no
  for attempt in 1 2 3; do
    status=$(call POST /oauth2/token "$value" --data-urlencode grant_type=client_credentials \
      --data-urlencode "resource=$resource")
    if [ "$status" = 200 ] && jq -e '.access_token | type == "string"' "$WORK/body" >/dev/null 2>&1; then
      proved=yes
      break
    fi
    sleep "$attempt"
  done
  rm -f "$WORK/body"
  [ "$proved" = yes ] ||
    fail "the token endpoint did not accept the new secret $id ($hint) yet (last answer $status): $SECRET_FILE is unchanged; the next run tries $file again"
  state_new=$(mktemp "$STATE_FILE.XXXXXX")
  printf 'predecessor=%s\nrotated_at=%s\nsuccessor=%s\n' "$predecessor" "$(date +%s)" "$id" > "$state_new"
  mv -f "$file" "$SECRET_FILE"
  mv -f "$state_new" "$STATE_FILE"
  say "rotated: the new secret $id ($hint) is in $SECRET_FILE; the predecessor $predecessor is deleted by a later run once unused for $DELETE_AFTER_HOURS hours"
}

get_self "$SECRET"
current_id=$(jq -r '.secrets[] | select(.is_caller) | .id' "$WORK/self")
[ -n "$current_id" ] || fail "GET /api/v1/self did not list the current secret"
resource=${RESOURCE:-$(jq -r '.resources[0].id // empty' "$WORK/self")}

# 1. Delete the predecessor recorded by an earlier run, once it has gone unused long enough.
if [ -e "$STATE_FILE" ]; then
  predecessor=$(sed -n 's/^predecessor=//p' "$STATE_FILE" | tr -d '\r')
  rotated_at=$(sed -n 's/^rotated_at=//p' "$STATE_FILE" | tr -d '\r')
  successor=$(sed -n 's/^successor=//p' "$STATE_FILE" | tr -d '\r')
  uuid='[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
  if [ "$(printf '%s\n%s\n' "$predecessor" "$successor" | grep -Ecx "$uuid")" != 2 ]; then
    fail "$STATE_FILE is not a state file of this script (no predecessor and successor ids): check and remove it"
  fi
  case "$rotated_at" in "" | *[!0-9]*) fail "$STATE_FILE has no rotation time: check and remove it" ;; esac
  if [ "$successor" != "$current_id" ]; then
    fail "$SECRET_FILE no longer holds the secret this script rotated to ($successor), so the predecessor $predecessor is not deleted: check, then remove $STATE_FILE"
  fi
  # Seconds since its last use (or, never used, since the rotation), or "gone".
  idle=$(jq -r --arg id "$predecessor" --argjson rotated "$rotated_at" '
      def t: sub("\\.[0-9]+"; "") | fromdateiso8601;
      (first(.secrets[] | select(.id == $id)) // null) as $s
      | if $s == null then "gone"
        else [now - (if $s.last_used_at then ($s.last_used_at | t) else $rotated end), 0] | max | floor | tostring
        end' "$WORK/self")
  if [ "$idle" = gone ]; then
    say "the predecessor $predecessor is gone already"
    rm -f "$STATE_FILE"
  elif [ "$idle" -ge $((DELETE_AFTER_HOURS * 3600)) ]; then
    status=$(call DELETE "/api/v1/self/secrets/$predecessor" "$SECRET")
    case "$status" in
      204) say "deleted the predecessor $predecessor"; rm -f "$STATE_FILE" ;;
      404)
        say "the portal does not let the current secret delete $predecessor (404: not the secret it replaced); forgetting it"
        rm -f "$STATE_FILE"
        ;;
      000) fail "cannot reach $PORTAL_URL" ;;
      *) fail "DELETE of the predecessor $predecessor answered $status ($(problem))" ;;
    esac
  else
    say "keeping the predecessor $predecessor: used $((idle / 3600)) hours ago (deleting after $DELETE_AFTER_HOURS)"
  fi
fi

# 2. Rotate when the current secret expires within RENEW_DAYS.
left=$(jq -r 'def t: sub("\\.[0-9]+"; "") | fromdateiso8601;
  .secrets[] | select(.is_caller) | ((.expires_at | t) - now) / 86400 | floor' "$WORK/self")
if [ "$left" -ge "$RENEW_DAYS" ]; then
  say "nothing to do: the current secret expires in $left days (rotating within $RENEW_DAYS)"
  exit 0
fi
if [ -e "$STATE_FILE" ]; then
  fail "the current secret expires in $left days, but its predecessor is not deleted yet: see $STATE_FILE"
fi
[ -n "$resource" ] || fail "the application has no resource to prove a new secret with: set RESOURCE"

# A successor an interrupted run created and kept (its value beside SECRET_FILE): finish with it.
for leftover in "$SECRET_FILE".new.*; do
  [ -f "$leftover" ] || continue
  status=401
  if read_secret "$leftover"; then status=$(call GET /api/v1/self "$value"); fi
  case "$status" in
    200)
      id=$(jq -r '.secrets[] | select(.is_caller) | .id' "$WORK/body")
      hint=$(jq -r '.secrets[] | select(.is_caller) | .hint' "$WORK/body")
      if [ "$id" = "$current_id" ]; then
        say "removing $leftover: it holds the current secret, not a successor"
        rm -f "$leftover"
        continue
      fi
      say "found the successor $id ($hint) an earlier run created"
      switch_to "$leftover" "$id" "$hint" "$current_id"
      exit 0
      ;;
    401)
      say "removing $leftover: the portal does not accept it"
      rm -f "$leftover"
      ;;
    *) fail "cannot check $leftover now (GET /api/v1/self answered $status): the next run tries again" ;;
  esac
done

# Where the new value goes: a file beside SECRET_FILE with its mode and owner, made before asking,
# so a directory that cannot take it costs no secret.
new_file=$(mktemp "$SECRET_FILE.new.XXXXXX") || fail "cannot write a file beside $SECRET_FILE"
# The mode and owner of SECRET_FILE (cp -p), writable while this script fills it, read-only again
# after when SECRET_FILE is. printf, not ':', so a failed redirection is an error, not an exit.
read_only=no
case "$(ls -ld -- "$SECRET_FILE")" in ??-*) read_only=yes ;; esac
if ! { cp -p "$SECRET_FILE" "$new_file" && chmod u+w "$new_file" && printf '' > "$new_file"; }; then
  rm -f "$new_file"
  fail "cannot write $new_file"
fi

status=$(call POST /api/v1/self/secrets "$SECRET")
case "$status" in
  201) ;;
  409)
    rm -f "$new_file"
    successor=$(jq -r '.successor | if . then "\(.id) (\(.hint))" else "" end' "$WORK/body" 2>/dev/null || true)
    if [ -n "$successor" ]; then
      fail "the current secret already created the successor $successor, and this host does not hold its value: if it is unused the portal replaces it an hour after its creation; otherwise delete it on the Manage API Credentials page"
    fi
    fail "the portal refused a successor: $(problem)"
    ;;
  000) rm -f "$new_file"; fail "cannot reach $PORTAL_URL" ;;
  *) rm -f "$new_file"; fail "POST /api/v1/self/secrets answered $status ($(problem))" ;;
esac
if ! { jq -j '.value' "$WORK/body" > "$new_file" && printf '\n' >> "$new_file"; }; then
  fail "could not write the new secret to $new_file: the portal replaces the unused successor on a run an hour from now"
fi
if [ "$read_only" = yes ]; then chmod u-w "$new_file"; fi
id=$(jq -r '.id' "$WORK/body")
hint=$(jq -r '.hint' "$WORK/body")
rm -f "$WORK/body"
switch_to "$new_file" "$id" "$hint" "$current_id"

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
#
# Secrets reach curl on its standard input (`curl -K -`), never in its arguments, and this script
# never prints one. Hosts that do not share one SECRET_FILE need a client secret each.
# Exit status: 0 when done (or nothing to do), 1 when the portal refused or could not be reached,
# 2 for a usage error.

set -eu

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
case "$RENEW_DAYS$DELETE_AFTER_HOURS" in *[!0-9]*) say "RENEW_DAYS and DELETE_AFTER_HOURS are whole numbers"; exit 2 ;; esac
PORTAL_URL=${PORTAL_URL%/}
STATE_FILE="$SECRET_FILE.state"
umask 077

IFS= read -r SECRET < "$SECRET_FILE" || [ -n "${SECRET:-}" ] || { say "SECRET_FILE is empty"; exit 2; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT INT TERM

# call METHOD PATH SECRET [curl options...]: the answer's body in $WORK/body, its status printed.
# The client ID and secret travel as a curl config on standard input (printf is a shell builtin:
# no process sees them in its arguments).
call() {
  method=$1 path=$2 secret=$3
  shift 3
  printf 'user = "%s:%s"\n' "$CLIENT_ID" "$secret" |
    curl -sS -K - -X "$method" -o "$WORK/body" -w '%{http_code}' "$@" "$PORTAL_URL$path" ||
    fail "cannot reach $PORTAL_URL"
}

# problem: the reason and detail of a problem answer, for messages.
problem() {
  jq -r '"\(.type // "" | sub("^urn:wmda:secret-portal:problem:"; "")): \(.detail // "")"' "$WORK/body" 2>/dev/null ||
    printf 'unreadable answer'
}

status=$(call GET /api/v1/self "$SECRET")
[ "$status" = 200 ] || fail "GET /api/v1/self answered $status ($(problem))"
cp "$WORK/body" "$WORK/self"

# 1. Delete the predecessor recorded by an earlier run, once it has gone unused long enough.
if [ -s "$STATE_FILE" ]; then
  predecessor=$(sed -n 's/^predecessor=//p' "$STATE_FILE")
  rotated_at=$(sed -n 's/^rotated_at=//p' "$STATE_FILE")
  case "$predecessor" in
    *[!0-9a-f-]* | "") fail "$STATE_FILE is not a state file of this script" ;;
  esac
  # Seconds since its last use (or, never used, since the rotation); -1 when the portal no longer lists it.
  idle=$(jq -r --arg id "$predecessor" --argjson rotated "${rotated_at:-0}" '
      def t: sub("\\.[0-9]+"; "") | fromdateiso8601;
      (.secrets[] | select(.id == $id)) as $s
      | if $s then (now - (if $s.last_used_at then ($s.last_used_at | t) else $rotated end)) | floor else -1 end
    ' "$WORK/self")
  if [ -z "$idle" ] || [ "$idle" -lt 0 ]; then
    say "the predecessor $predecessor is gone already"
    rm -f "$STATE_FILE"
  elif [ "$idle" -ge $((DELETE_AFTER_HOURS * 3600)) ]; then
    status=$(call DELETE "/api/v1/self/secrets/$predecessor" "$SECRET")
    case "$status" in
      204 | 404) say "deleted the predecessor $predecessor"; rm -f "$STATE_FILE" ;;
      *) fail "DELETE of the predecessor $predecessor answered $status ($(problem))" ;;
    esac
  else
    say "keeping the predecessor $predecessor: used $((idle / 3600)) hours ago (deleting after $DELETE_AFTER_HOURS)"
  fi
fi

# 2. Rotate when the current secret expires within RENEW_DAYS.
left=$(jq -r 'def t: sub("\\.[0-9]+"; "") | fromdateiso8601;
  .secrets[] | select(.is_caller) | ((.expires_at | t) - now) / 86400 | floor' "$WORK/self")
[ -n "$left" ] || fail "GET /api/v1/self did not list the current secret"
if [ "$left" -ge "$RENEW_DAYS" ]; then
  say "nothing to do: the current secret expires in $left days (rotating within $RENEW_DAYS)"
  exit 0
fi
if [ -s "$STATE_FILE" ]; then
  fail "the current secret expires in $left days, but its predecessor is not deleted yet: see $STATE_FILE"
fi
resource=${RESOURCE:-$(jq -r '.resources[0].id // empty' "$WORK/self")}
[ -n "$resource" ] || fail "the application has no resource to prove a new secret with: set RESOURCE"
current_id=$(jq -r '.secrets[] | select(.is_caller) | .id' "$WORK/self")

status=$(call POST /api/v1/self/secrets "$SECRET")
case "$status" in
  201) ;;
  409 | 429) fail "the portal refused a successor: $(problem)" ;;
  *) fail "POST /api/v1/self/secrets answered $status ($(problem))" ;;
esac
NEW_FILE=$(mktemp "$SECRET_FILE.new.XXXXXX")
cp -p "$SECRET_FILE" "$NEW_FILE" # the same mode and owner as the file it replaces
jq -j '.value' "$WORK/body" > "$NEW_FILE"
printf '\n' >> "$NEW_FILE"
new_id=$(jq -r '.id' "$WORK/body")
new_hint=$(jq -r '.hint' "$WORK/body")
IFS= read -r NEW_SECRET < "$NEW_FILE"
rm -f "$WORK/body"

# Prove it: the token endpoint must accept the new secret before anything uses it.
proved=no
for attempt in 1 2 3; do
  status=$(call POST /oauth2/token "$NEW_SECRET" --data-urlencode grant_type=client_credentials \
    --data-urlencode "resource=$resource")
  if [ "$status" = 200 ] && jq -e '.access_token | type == "string"' "$WORK/body" >/dev/null 2>&1; then
    proved=yes
    break
  fi
  sleep "$attempt"
done
rm -f "$WORK/body"
if [ "$proved" != yes ]; then
  rm -f "$NEW_FILE"
  fail "the token endpoint refused the new secret $new_id ($new_hint): $SECRET_FILE is unchanged; the portal replaces the unused successor on a run an hour from now"
fi

mv -f "$NEW_FILE" "$SECRET_FILE"
STATE_NEW=$(mktemp "$STATE_FILE.XXXXXX")
printf 'predecessor=%s\nrotated_at=%s\nsuccessor=%s\n' "$current_id" "$(date +%s)" "$new_id" > "$STATE_NEW"
mv -f "$STATE_NEW" "$STATE_FILE"
say "rotated: the new secret $new_id ($new_hint) is in $SECRET_FILE; the predecessor $current_id is deleted by a later run once unused for $DELETE_AFTER_HOURS hours"

#!/usr/bin/env bash
# Property-based API testing: runs Schemathesis against a throw-away Keel instance and fails
# when any request gets a 5xx, an undocumented status code, or a body that does not match the
# OpenAPI document served at /api/openapi.json.
#
# Builds nothing: takes the binary from KEEL_BIN (default target/debug/keel), so run
# `cargo build -p keel` first. Installs the pinned Schemathesis into target/schemathesis-venv
# when it is missing.
#
# Tunables (environment):
#   KEEL_BIN                  keel binary (default: target/debug/keel)
#   SCHEMATHESIS_MAX_EXAMPLES test cases per operation and phase (default: 50)
#   SCHEMATHESIS_SEED         random seed (default: 20000)
#   SCHEMATHESIS_WORKERS      concurrent workers (default: 2)
#   SCHEMATHESIS_DATABASE_URL an empty PostgreSQL database to use instead of SQLite in the
#                             scratch data directory
# Further arguments are passed to `schemathesis run`, e.g. `--phases coverage` or
# `--report har --report-dir /tmp/st` to keep every request and response.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCHEMATHESIS_VERSION="4.32.5"
VENV="$ROOT/target/schemathesis-venv"
KEEL_BIN="${KEEL_BIN:-$ROOT/target/debug/keel}"
case "$KEEL_BIN" in /*) ;; *) KEEL_BIN="$ROOT/$KEEL_BIN" ;; esac
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-50}"
SEED="${SCHEMATHESIS_SEED:-20000}"
WORKERS="${SCHEMATHESIS_WORKERS:-2}"
EMAIL="st@keel.test"
PASSWORD="schemathesis-$RANDOM$RANDOM-password"

if [[ ! -x "$KEEL_BIN" ]]; then
    echo "schemathesis.sh: $KEEL_BIN is not an executable; run 'cargo build -p keel' first or set KEEL_BIN" >&2
    exit 2
fi
command -v curl >/dev/null || { echo "schemathesis.sh: curl is required" >&2; exit 2; }

# ---- the pinned Schemathesis, in its own venv ----
if [[ "$("$VENV/bin/schemathesis" --version 2>/dev/null || true)" != *"version $SCHEMATHESIS_VERSION"* ]]; then
    echo "==> installing schemathesis==$SCHEMATHESIS_VERSION into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
PY="$VENV/bin/python"

# ---- a fresh instance ----
WORK="$(mktemp -d "${TMPDIR:-/tmp}/keel-schemathesis.XXXXXX")"
DATA="$WORK/data"
mkdir -p "$DATA"
SERVER_PID=""
cleanup() {
    local rc=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ $rc -ne 0 && -s "$WORK/server.log" ]]; then
        echo "---- last lines of the server's log ----" >&2
        tail -n 40 "$WORK/server.log" >&2 || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# keel reads its settings from KEEL_* variables and ./keel.toml: run it from the scratch
# directory with none of them, so the developer's or CI's environment (a PostgreSQL
# KEEL_DATABASE_URL, say) cannot change what is tested.
CLEAN_ENV=(env)
for v in $(compgen -e); do
    if [[ "$v" == KEEL_* && "$v" != KEEL_LOG ]]; then CLEAN_ENV+=(-u "$v"); fi
done
KEEL_ARGS=(--data-dir "$DATA")
if [[ -n "${SCHEMATHESIS_DATABASE_URL:-}" ]]; then KEEL_ARGS+=(--database-url "$SCHEMATHESIS_DATABASE_URL"); fi

(cd "$WORK" && "${CLEAN_ENV[@]}" KEEL_PASSWORD="$PASSWORD" "$KEEL_BIN" "${KEEL_ARGS[@]}" user create --admin --email "$EMAIL" >/dev/null)

# `exec`, so that $! is keel itself and the trap can stop it.
(cd "$WORK" && exec "${CLEAN_ENV[@]}" "$KEEL_BIN" "${KEEL_ARGS[@]}" --bind 127.0.0.1:0 serve) >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

ADDR=""
for _ in $(seq 300); do
    ADDR="$(sed -n 's|^Keel is serving on http://\([^ ]*\) (.*|\1|p' "$WORK/server.log" | head -n 1)"
    [[ -n "$ADDR" ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "schemathesis.sh: keel exited before serving" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$ADDR" ]] || { echo "schemathesis.sh: keel did not report its address within 30 s" >&2; exit 1; }
BASE="http://$ADDR"
echo "==> keel is serving on $BASE (data in $DATA)"

# ---- an API token: sign in through the login form, then create the token over the API ----
JAR="$WORK/cookies"
hidden_csrf() { sed -n 's/.*name="_csrf" value="\([^"]*\)".*/\1/p' | head -n 1; }

PRE_CSRF="$(curl -fsS -c "$JAR" -b "$JAR" "$BASE/login" | hidden_csrf)"
[[ -n "$PRE_CSRF" ]] || { echo "schemathesis.sh: no _csrf field on /login" >&2; exit 1; }
STATUS="$(curl -sS -o /dev/null -w '%{http_code}' -c "$JAR" -b "$JAR" \
    --data-urlencode "_csrf=$PRE_CSRF" --data-urlencode "email=$EMAIL" \
    --data-urlencode "password=$PASSWORD" --data-urlencode "next=/" "$BASE/login")"
[[ "$STATUS" == 303 ]] || { echo "schemathesis.sh: signing in answered $STATUS, expected 303" >&2; exit 1; }
grep -q 'keel_session' "$JAR" || { echo "schemathesis.sh: signing in set no session cookie" >&2; exit 1; }

SESSION_CSRF="$(curl -fsS -c "$JAR" -b "$JAR" "$BASE/" | hidden_csrf)"
[[ -n "$SESSION_CSRF" ]] || { echo "schemathesis.sh: no _csrf field on / after signing in" >&2; exit 1; }
CREATED="$(curl -fsS -b "$JAR" -H "X-CSRF-Token: $SESSION_CSRF" -H 'Content-Type: application/json' \
    --data '{"name":"schemathesis","expires_in_days":1}' "$BASE/api/v1/tokens")"
json_field() { "$PY" -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
TOKEN="$(json_field "$CREATED" secret)"
TOKEN_ID="$(json_field "$CREATED" id)"
[[ "$TOKEN" == keel_* ]] || { echo "schemathesis.sh: could not create an API token" >&2; exit 1; }
echo "==> API token ${TOKEN:0:12}… created for $EMAIL"

# Schemathesis reuses identifiers it has seen in responses (GET /api/v1/tokens lists the run's
# own token), so it would revoke its own token and get nothing but 401s from then on. Point
# changes to that token at an id that does not exist. (Keel itself refuses to let the account
# deactivate itself or drop its own administrator role.)
cat >"$WORK/hooks.py" <<PYEOF
import schemathesis

PROTECTED = {"$TOKEN_ID"}


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.method.upper() in ("GET", "HEAD") or not case.path_parameters:
        return
    for name, value in list(case.path_parameters.items()):
        if str(value) in PROTECTED:
            case.path_parameters[name] = "00000000-0000-0000-0000-000000000000"
PYEOF
export SCHEMATHESIS_HOOKS="$WORK/hooks.py"

# ---- the run ----
# Calendar bodies are left out: schemathesis 4.32.5 fails inside its own schema canonicaliser
# (a KeyError in its generator) on their weekly-hours map; the HTTP tests cover those two.
# The mail gateway takes `message/rfc822`, which schemathesis cannot serialise (it fails the
# run in the fuzzing phase whenever it picks that operation); tests/http/mail.rs covers it.
echo "==> schemathesis $SCHEMATHESIS_VERSION: seed $SEED, at most $MAX_EXAMPLES examples per operation, $WORKERS workers"
START=$SECONDS
set +e
(cd "$WORK" && "$VENV/bin/schemathesis" run "$BASE/api/openapi.json" \
    --header "Authorization: Bearer $TOKEN" \
    --checks not_a_server_error,status_code_conformance,response_schema_conformance \
    --max-examples "$MAX_EXAMPLES" \
    --seed "$SEED" \
    --workers "$WORKERS" \
    --generation-database none \
    --request-timeout 30 \
    --no-color \
    --exclude-operation-id-regex '^((create|update)_calendar|receive_mail)$' \
    "$@")
RC=$?
set -e
echo "==> schemathesis finished in $((SECONDS - START)) s with exit code $RC"
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "schemathesis.sh: keel died during the run" >&2
    exit 1
fi
# A run whose token stopped working part-way saw only 401s, which conform: refuse to call it
# a pass.
ME="$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/me")"
if [[ "$ME" != 200 ]]; then
    echo "schemathesis.sh: the run's API token no longer works (GET /api/v1/me answered $ME)" >&2
    exit 1
fi
echo "==> done in $SECONDS s"
exit "$RC"

#!/usr/bin/env bash
# Runs Keel's real-browser end-to-end tests (playwright-core driving Debian's Chromium).
#
# This script builds nothing: the caller builds the server first, e.g.
#   cargo build -p keel && bash tests/browser/run.sh
# The binary is taken from KEEL_BIN (default: target/debug/keel in this checkout).
# Needs node (>= 20), npm and /usr/bin/chromium (apt-get install -y chromium); a CJK font
# (e.g. apt-get install -y fonts-wqy-zenhei) makes the Chinese text readable in the screenshots.
# The test prints the screenshot paths (a temporary directory, never committed).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

export KEEL_BIN="${KEEL_BIN:-$root/target/debug/keel}"
case "$KEEL_BIN" in /*) ;; *) KEEL_BIN="$PWD/$KEEL_BIN" ;; esac

if [[ ! -x /usr/bin/chromium ]]; then
  echo "error: /usr/bin/chromium not found; install Debian's Chromium: apt-get update && apt-get install -y chromium" >&2
  exit 1
fi
if [[ ! -x "$KEEL_BIN" ]]; then
  echo "error: keel binary not found at $KEEL_BIN; build it first (cargo build -p keel) or set KEEL_BIN" >&2
  exit 1
fi
if [[ ! -d "$here/node_modules/playwright-core" ]]; then
  (cd "$here" && npm ci --no-audit --no-fund)
fi

cd "$root"
# harness.mjs holds what the demo-based tests share; it is not a test itself.
node --test --test-reporter=tap tests/browser/platform.test.mjs tests/browser/desk.test.mjs tests/browser/search.test.mjs tests/browser/change.test.mjs tests/browser/views.test.mjs

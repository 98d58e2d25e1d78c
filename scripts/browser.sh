#!/usr/bin/env bash
# scripts/browser.sh: make Debian's Chromium available for the browser tests (tests/ui).
#
#   bash scripts/browser.sh        # make test / make test-all run it; NO_BROWSER=1 skips it there
#
# The tests drive /usr/bin/chromium through Playwright (the `dev` extra) with
# executable_path="/usr/bin/chromium"; Playwright's own browser download (`playwright install`)
# is never used: these machines reach the distribution's mirror, not a browser CDN.
# When /usr/bin/chromium is missing it is installed with apt-get (as root, non-interactive);
# the one progress line and any error go to stderr, stdout stays empty. Log: $BROWSER_LOG.
set -uo pipefail

CHROMIUM=/usr/bin/chromium
BROWSER_LOG="${BROWSER_LOG:-/tmp/scheduler-service-browser/apt.log}"

[[ -x $CHROMIUM ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "[browser] ERROR: $CHROMIUM is missing; install it as root: apt-get install -y chromium" >&2
  exit 1
fi
mkdir -p "$(dirname "$BROWSER_LOG")"
echo "[browser] apt-get install chromium (log: $BROWSER_LOG; about a minute the first time)" >&2
if ! (export DEBIAN_FRONTEND=noninteractive
      apt-get update -q && apt-get install -y -q chromium) >"$BROWSER_LOG" 2>&1 \
   || [[ ! -x $CHROMIUM ]]; then
  echo "[browser] ERROR: could not install chromium; the end of $BROWSER_LOG:" >&2
  tail -n 25 "$BROWSER_LOG" >&2
  exit 1
fi

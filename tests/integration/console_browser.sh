#!/usr/bin/env bash
# console_browser.sh - the web console in a real browser: Debian's chromium,
# headless, driven by playwright-core (npm, installed into WORK/npm on the
# first run). It runs console.c's panels test (kcobrad with traffic,
# payments and a quarantined node) with CONSOLE_BROWSER set, so that test
# loads the console in chromium through console_browser.js, compares what
# the panels show with the JSON endpoints, and saves screenshots in
# WORK/shots.
#
# Skips (exit 77) only when node or chromium is not installed, and says
# so; everything else that goes wrong fails.
#
# Usage: console_browser.sh CONSOLE_TEST KCOBRAD WORK SCRIPT_DIR
set -euo pipefail

console_test=$1 kcobrad=$2 work=$3 script_dir=$4
chromium=${CHROMIUM:-/usr/bin/chromium}

if ! command -v node >/dev/null 2>&1; then
  echo "SKIP console_browser: node is not installed (scripts/deps.sh installs nodejs)"
  exit 77
fi
if [ ! -x "$chromium" ]; then
  echo "SKIP console_browser: no chromium at $chromium (apt-get install chromium;" \
       "scripts/deps.sh installs it)"
  exit 77
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "FAIL console_browser: node is installed but npm is not" >&2
  exit 1
fi

mkdir -p "$work/npm" "$work/shots"
if [ ! -d "$work/npm/node_modules/playwright-core" ]; then
  echo "console_browser: npm install playwright-core into $work/npm"
  [ -f "$work/npm/package.json" ] || echo '{"private": true}' > "$work/npm/package.json"
  (cd "$work/npm" && npm install --no-audit --no-fund --loglevel=error playwright-core)
fi
rm -f "$work"/shots/*.png
export NODE_PATH="$work/npm/node_modules"
export CHROMIUM="$chromium"
export CONSOLE_BROWSER="$script_dir/console_browser.js"
export CONSOLE_SHOTS="$work/shots"
"$console_test" "$kcobrad"
echo "console_browser: passed; screenshots in $work/shots:"
ls "$work/shots"

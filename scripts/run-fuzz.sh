#!/usr/bin/env bash
# Runs every libFuzzer target for a bounded time, seeded from fuzz/corpus/<name>.
#   scripts/run-fuzz.sh FUZZ_BUILD_DIR SECONDS
set -uo pipefail
build=${1:?fuzz build dir}
seconds=${2:-20}
cd "$(dirname "$0")/.."
status=0
for exe in "$build"/fuzz/fuzz_*; do
  [ -x "$exe" ] && [ -f "$exe" ] || continue
  name=$(basename "$exe"); name=${name#fuzz_}
  work=$(mktemp -d)
  seeds=fuzz/corpus/$name
  echo "fuzz: $name for ${seconds}s"
  if ! "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
       -artifact_prefix="$work/" "$work" ${seeds:+$( [ -d "$seeds" ] && echo "$seeds")} \
       >"$work/log" 2>&1; then
    echo "fuzz: $name FAILED"; tail -40 "$work/log"
    cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* fuzz/ 2>/dev/null || true
    status=1
  else
    grep -E '^Done|#[0-9]+.*DONE' "$work/log" | tail -1
  fi
  rm -rf "$work"
done
exit $status

#!/usr/bin/env bash
# Runs the whole suite and prints one closing line "N passed, N failed".
#   scripts/run-tests.sh BUILD_DIR [FUZZ_BUILD_DIR FUZZ_SECONDS]
# Test cases are counted inside each cmocka program (its PASSED/FAILED lines);
# a program that is not cmocka, or that crashed, counts as one case.
set -uo pipefail
build=${1:?build dir}
fuzz_build=${2:-}
fuzz_seconds=${3:-20}
cd "$(dirname "$0")/.."

meson test -C "$build" --print-errorlogs --num-processes 2 --logbase testlog
meson_status=$?

read -r passed failed < <(python3 scripts/count-tests.py "$build/meson-logs/testlog.json")

if [ -n "$fuzz_build" ]; then
  if scripts/run-fuzz.sh "$fuzz_build" "$fuzz_seconds"; then
    n=$(ls "$fuzz_build"/fuzz/fuzz_* 2>/dev/null | grep -vc '\.p$' || true)
    passed=$((passed + n))
  else
    failed=$((failed + 1))
  fi
fi

# Repeat the failures last: CI often keeps only the end of the log.
python3 scripts/failed-tests.py "$build/meson-logs/testlog.json"

if [ "$meson_status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1   # meson saw a failure the counter could not attribute
fi
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]

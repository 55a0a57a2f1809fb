#!/usr/bin/env bash
# Runs the whole suite and prints one closing line "N passed, N failed".
#   scripts/run-tests.sh BUILD_DIR [FUZZ_BUILD_DIR FUZZ_SECONDS]
# Test cases are counted inside each cmocka program (its PASSED/FAILED lines);
# a program that is not cmocka, or that crashed, counts as one case.
#
# A test program that fails is run once more, alone. If it passes then, it
# counts by the second run, but the first failure is printed at the end of
# the log as FLAKY with the tail of its output: a timing-sensitive test on a
# loaded machine should not sink the run, and should not go unnoticed
# either. A program that fails twice fails the run.
set -uo pipefail
build=${1:?build dir}
fuzz_build=${2:-}
fuzz_seconds=${3:-20}
cd "$(dirname "$0")/.."

meson test -C "$build" --print-errorlogs --num-processes 2 --logbase testlog
meson_status=$?
log=$build/meson-logs/testlog.json
retry_log=$build/meson-logs/retrylog.json
rm -f "$retry_log"

first_failures=""
if [ "$meson_status" -ne 0 ]; then
  mapfile -t failed_names < <(python3 scripts/failed-tests.py --names "$log")
  if [ "${#failed_names[@]}" -gt 0 ]; then
    first_failures=$(python3 scripts/failed-tests.py "$log")
    echo "run-tests: running again: ${failed_names[*]}"
    meson test -C "$build" --print-errorlogs --num-processes 1 --logbase retrylog \
      "${failed_names[@]}"
    meson_status=$?
  fi
fi

read -r passed failed < <(python3 scripts/count-tests.py "$log" \
  $( [ -f "$retry_log" ] && echo "$retry_log"))

if [ -n "$fuzz_build" ]; then
  if scripts/run-fuzz.sh "$fuzz_build" "$fuzz_seconds"; then
    n=$(find "$fuzz_build/fuzz" -maxdepth 1 -type f -name 'fuzz_*' -executable | wc -l)
    passed=$((passed + n))
  else
    failed=$((failed + 1))
  fi
fi

# Repeat the failures last: CI often keeps only the end of the log.
if [ -n "$first_failures" ]; then
  echo "FLAKY OR FAILED on the first run (each was run again; see below):"
  echo "$first_failures"
fi
if [ -f "$retry_log" ]; then
  python3 scripts/failed-tests.py "$retry_log"
fi

if [ "$meson_status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1   # meson saw a failure the counter could not attribute
fi
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]

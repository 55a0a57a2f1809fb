#!/usr/bin/env bash
# bench/run_exchange.sh [BUILD_DIR] - the exchange's matching engine alone
# (bench/exchange_bench.c): a release build's orders matched per second on
# a seeded random stream, median of rounds. Builds BUILD_DIR (default
# build-bench, -Dbench=true, release, no sanitizers) if needed.
# Environment: EXCHANGE_ORDERS (default 2000000), EXCHANGE_ROUNDS (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build-bench}
if [ ! -d "$BUILD_DIR" ]; then
  meson setup "$BUILD_DIR" -Dbench=true -Dtests=false -Dbuildtype=release >/dev/null
fi
ninja -C "$BUILD_DIR" -j2 bench/exchange_bench >/dev/null
"$BUILD_DIR"/bench/exchange_bench "${EXCHANGE_ORDERS:-2000000}" "${EXCHANGE_ROUNDS:-5}" 42

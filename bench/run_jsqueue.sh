#!/usr/bin/env bash
# bench/run_jsqueue.sh BUILD_DIR - durable submits/s of the persister on the
# local disk, on JetStream R1 (one nats-server) and on JetStream R3 (three
# nats-servers on this machine), in one run, and the ratios: the cost of
# replication that docs/cluster.md quotes. 16 clients wait for each
# acknowledgement; a service answers every request.
# Environment: KC_JSQUEUE_SUBMITS (5000), KC_JSQUEUE_CLIENTS (16),
# NATS_SERVER (/usr/sbin/nats-server).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
BUILD_DIR=$(cd "$1" && pwd)
BENCH=$BUILD_DIR/bench/jsqueue_bench
KCOBRA=$BUILD_DIR/src/cmd/kcobra
NATS_SERVER=${NATS_SERVER:-/usr/sbin/nats-server}
[ -x "$BENCH" ] || { echo "run_jsqueue: $BENCH not built (needs cmocka)" >&2; exit 0; }
[ -x "$NATS_SERVER" ] || { echo "run_jsqueue: no $NATS_SERVER: skipped" >&2; exit 0; }
"$BENCH" "$NATS_SERVER" "$KCOBRA" bench 2>&1 | grep '^jsqueue bench:'

#!/usr/bin/env bash
# bench/run_queue.sh BUILD_DIR - durable submits: kcobrad's persister against
# nats-server JetStream, measured in the same run (docs/queue.md, "Speed").
#
# Each round starts a fresh kcobrad (persister in batch mode, the default) and
# a fresh `nats-server -js -sd DIR` on ephemeral 127.0.0.1 ports, each with its
# own scratch directory, and runs BUILD_DIR/bench/queue_bench against each:
# THREADS submitters, each on its own connection, one request at a time,
# PAYLOAD-byte payloads; kcobrad: a request to kc.submit.bench waiting for the
# acknowledgement; JetStream: js_Publish to a file-storage stream on
# kc.submit.> waiting for the publish ack. Also kcobrad with durability none,
# which is what JetStream does by default (it acknowledges after the write and
# syncs every 2 minutes). The order of the servers flips every round.
#
# Then pipelined: ASYNC_CLIENTS clients, each keeping WINDOW submits in flight
# (kcobrad in batch mode: libkingcobra's kc_client_submit_async with
# submits_in_flight_max = WINDOW; JetStream: js_PublishAsync with
# PublishAsync.MaxPending = WINDOW, same file storage, same payload), also
# alternating.
#
# Then the log alone: appends/s with THREADS appenders in batch mode against a
# plain write + fdatasync loop of the same record size (the device's limit for
# one writer) and one writing the log's mean group per fdatasync (target: the
# log >= 0.9 of it), and the time the persister takes to recover a log of
# RECOVER_BYTES (written first, durability none).
#
# Prints medians and the ratios; every run is kept in BUILD_DIR/bench-queue.json.
# Environment: BENCH_QUEUE_ROUNDS (5), BENCH_QUEUE_DURATION_MS (4000),
# BENCH_QUEUE_THREADS (64), BENCH_QUEUE_PAYLOAD (256), BENCH_QUEUE_ASYNC_CLIENTS
# (4), BENCH_QUEUE_WINDOW (256), BENCH_QUEUE_SYNC (1; 0 skips the synchronous
# rounds), BENCH_QUEUE_RECOVER_BYTES
# (1073741824; 0 skips), NATS_SERVER (/usr/sbin/nats-server), KCOBRAD
# (BUILD_DIR/src/cmd/kcobrad).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
BUILD_DIR=$(cd "$1" && pwd)
ROUNDS=${BENCH_QUEUE_ROUNDS:-5}
DURATION_MS=${BENCH_QUEUE_DURATION_MS:-4000}
THREADS=${BENCH_QUEUE_THREADS:-64}
PAYLOAD=${BENCH_QUEUE_PAYLOAD:-256}
ASYNC_CLIENTS=${BENCH_QUEUE_ASYNC_CLIENTS:-4}
WINDOW=${BENCH_QUEUE_WINDOW:-256}
SYNC=${BENCH_QUEUE_SYNC:-1}
RECOVER_BYTES=${BENCH_QUEUE_RECOVER_BYTES:-1073741824}
NATS_SERVER=${NATS_SERVER:-/usr/sbin/nats-server}
KCOBRAD=${KCOBRAD:-$BUILD_DIR/src/cmd/kcobrad}
BENCH=$BUILD_DIR/bench/queue_bench
RESULTS=$BUILD_DIR/bench-queue.json
READY_TRIES=200 # x 0.05 s
PYTHON=/usr/bin/python3

[ -x "$BENCH" ] || { echo "run_queue.sh: $BENCH not built (ninja -C $BUILD_DIR)" >&2; exit 1; }
[ -x "$KCOBRAD" ] || { echo "run_queue.sh: $KCOBRAD not built" >&2; exit 1; }
[ -x "$NATS_SERVER" ] || { echo "run_queue.sh: $NATS_SERVER missing (apt-get install nats-server)" >&2; exit 1; }

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/kc-bench-queue.XXXXXX")
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$SCRATCH"
}
trap cleanup EXIT
: > "$RESULTS.lines"

# start_server NAME DIR CMD...: runs CMD in DIR, waits for its port (from its log).
start_server() {
    local dir=$2
    shift 2
    mkdir -p "$dir"
    : > "$dir/server.log" # exists before the first read below (set -e)
    (cd "$dir" && exec "$@" > server.log 2>&1) &
    SERVER_PID=$!
    for _ in $(seq $READY_TRIES); do
        PORT=$(sed -n 's/.*Listening for client connections on [0-9.]*:\([0-9]*\).*/\1/p' "$dir/server.log" | head -1)
        if [ -n "$PORT" ] && grep -q "Server is ready" "$dir/server.log"; then return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$dir/server.log" >&2; return 1; }
        sleep 0.05
    done
    echo "run_queue.sh: server in $dir did not start" >&2
    return 1
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

measure() { # measure LABEL ROUND
    local label=$1 round=$2 dir=$SCRATCH/$1-$2 line
    case $label in
    kcobrad-async)
        start_server "$label" "$dir" "$KCOBRAD" -a 127.0.0.1 -p 0
        line=$("$BENCH" submit-async "nats://127.0.0.1:$PORT" "$ASYNC_CLIENTS" "$WINDOW" "$PAYLOAD" "$DURATION_MS") ;;
    jetstream-async)
        start_server "$label" "$dir" "$NATS_SERVER" -a 127.0.0.1 -p -1 -js -sd "$dir/store"
        line=$("$BENCH" jetstream-async "nats://127.0.0.1:$PORT" "$ASYNC_CLIENTS" "$WINDOW" "$PAYLOAD" "$DURATION_MS") ;;
    kcobrad-batch | kcobrad-none)
        printf 'persister { durability: %s }\n' "${label#kcobrad-}" > "$SCRATCH/$label.conf"
        start_server "$label" "$dir" "$KCOBRAD" -a 127.0.0.1 -p 0 -c "$SCRATCH/$label.conf"
        line=$("$BENCH" submit "nats://127.0.0.1:$PORT" "$THREADS" "$PAYLOAD" "$DURATION_MS") ;;
    jetstream)
        start_server "$label" "$dir" "$NATS_SERVER" -a 127.0.0.1 -p -1 -js -sd "$dir/store"
        line=$("$BENCH" jetstream "nats://127.0.0.1:$PORT" "$THREADS" "$PAYLOAD" "$DURATION_MS") ;;
    esac
    stop_server
    rm -rf "$dir"
    echo "{\"label\":\"$label\",\"round\":$round,\"result\":$line}" >> "$RESULTS.lines"
    echo "  round $round $label: $line"
}

if [ "$SYNC" -ne 0 ]; then
    echo "durable submits: $THREADS submitters, $PAYLOAD-byte payloads, ${DURATION_MS} ms per run, $ROUNDS rounds"
    for round in $(seq "$ROUNDS"); do
        if [ $((round % 2)) -eq 1 ]; then order="kcobrad-batch jetstream kcobrad-none"; else order="kcobrad-none jetstream kcobrad-batch"; fi
        for label in $order; do measure "$label" "$round"; done
    done
fi
echo "pipelined durable submits: $ASYNC_CLIENTS clients, window $WINDOW each, $PAYLOAD-byte payloads, ${DURATION_MS} ms per run, $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) -eq 1 ]; then order="kcobrad-async jetstream-async"; else order="jetstream-async kcobrad-async"; fi
    for label in $order; do measure "$label" "$round"; done
done

echo "the log alone:"
mkdir -p "$SCRATCH/raw"
RAW=$("$BENCH" raw "$SCRATCH/raw" "$PAYLOAD" 3000 "$THREADS")
rm -rf "$SCRATCH/raw"
echo "{\"label\":\"raw\",\"result\":$RAW}" >> "$RESULTS.lines"
echo "  $RAW"
if [ "$RECOVER_BYTES" -gt 0 ]; then
    echo "recovery of a $RECOVER_BYTES-byte log (writing it first):"
    RECOVER=$("$BENCH" recover "$SCRATCH/recover" "$RECOVER_BYTES")
    echo "{\"label\":\"recover\",\"result\":$RECOVER}" >> "$RESULTS.lines"
    echo "  $RECOVER"
    rm -rf "$SCRATCH/recover"
fi

"$PYTHON" - "$RESULTS.lines" "$RESULTS" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
json.dump(runs, open(sys.argv[2], "w"), indent=1)
def median(label, key):
    values = [r["result"][key] for r in runs if r["label"] == label]
    return statistics.median(values) if values else float("nan")
print()
print(f"{'':16}{'acked/s':>12}{'p50 µs':>10}{'p99 µs':>10}")
for label in ("kcobrad-batch", "kcobrad-none", "jetstream", "kcobrad-async", "jetstream-async"):
    print(f"{label:16}{median(label,'acked_per_s'):>12.0f}{median(label,'p50_us'):>10.0f}{median(label,'p99_us'):>10.0f}")
js = median("jetstream", "acked_per_s")
js_p99 = median("jetstream", "p99_us")
for label in ("kcobrad-batch", "kcobrad-none"):
    ratio = median(label, "acked_per_s") / js
    print(f"ratio {label}/jetstream: {ratio:.2f}x acked/s (target 1.0x for batch), p99 {median(label,'p99_us'):.0f} vs {js_p99:.0f} µs")
ratio = median("kcobrad-async", "acked_per_s") / median("jetstream-async", "acked_per_s")
print(f"ratio kcobrad-async/jetstream-async: {ratio:.2f}x acked/s (target 1.5x), p99 {median('kcobrad-async','p99_us'):.0f} vs {median('jetstream-async','p99_us'):.0f} µs")
for label in ("kcobrad-async", "jetstream-async"):
    values = [round(r["result"]["acked_per_s"]) for r in runs if r["label"] == label]
    print(f"  {label} rounds: {values}")
for r in runs:
    if r["label"] == "raw":
        x = r["result"]
        print(f"log appends/s {x['log_appends_per_s']} ({x['records_per_sync']} records per fdatasync) vs plain write+fdatasync {x['plain_write_fdatasync_per_s']}/s: ratio {x['ratio']:.1f}")
        print(f"  vs plain write+fdatasync of the same groups {x['plain_grouped_per_s']}/s: ratio {x['grouped_ratio']:.2f} (target 0.9)")
    if r["label"] == "recover":
        x = r["result"]
        print(f"recovery: {x['bytes']} bytes, {x['records']} records, {x['requests']} requests in {x['recover_ms']:.0f} ms ({x['mib_per_s']:.0f} MiB/s)")
PY

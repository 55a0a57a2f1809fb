#!/usr/bin/env bash
# bench/run_arbiter.sh BUILD_DIR - what the arbiter costs the cloud it
# watches: libkingcobra request/reply through kcobrad without the arbiter
# and through kcobrad hosting one (which observes every kc.req.> request and
# every reply, probes nothing here, and leaves the broker checking its
# quarantine flag on each delivery), measured in the same run.
#
# Each round starts both servers fresh on ephemeral 127.0.0.1 ports, runs
# BUILD_DIR/bench/bench_kingcobra (8 requesters, a service with 4 workers,
# 3 s) against each, in an order that flips every round, and stops them.
# Prints the median requests/s and p99 of each, and the ratio
# with-arbiter / without. Environment: BENCH_ROUNDS (default 5),
# KCOBRAD (default BUILD_DIR/src/cmd/kcobrad).
#
# With BASE_KCOBRAD set to a kcobrad built from before the quarantine hook
# (e.g. the branch point), a second section checks the broker's hot path:
# bench_nats fanout and reqrep8 against KCOBRAD and BASE_KCOBRAD, neither
# running the arbiter, alternating, and the ratio of the medians (1.00:
# the flag test per delivery costs nothing measurable).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
BUILD_DIR=$1
ROUNDS=${BENCH_ROUNDS:-5}
BENCH=$BUILD_DIR/bench/bench_kingcobra
KCOBRAD=${KCOBRAD:-$BUILD_DIR/src/cmd/kcobrad}
[ -x "$BENCH" ] || { echo "run_arbiter.sh: $BENCH not built (ninja -C $BUILD_DIR)" >&2; exit 1; }
[ -x "$KCOBRAD" ] || { echo "run_arbiter.sh: $KCOBRAD not built" >&2; exit 1; }
WORK=$(mktemp -d /tmp/kc-bench-arbiter-XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start NAME ARBITER(0|1): sets URL once the server accepts connections.
# Not in a $( ) subshell: the PID must reach PIDS for stop_all.
start() {
    local name=$1 arbiter=$2 port dir
    port=$(free_port)
    dir=$WORK/$name
    mkdir -p "$dir"
    {
        echo "listen: \"127.0.0.1:$port\""
        echo "data_dir: \"$dir/data\""
        [ "$arbiter" = 1 ] && echo 'arbiter { enabled: true, id: "bench-arbiter" }'
    } > "$dir/kcobrad.conf"
    (cd "$dir" && exec "$KCOBRAD" -c kcobrad.conf > kcobrad.log 2>&1) &
    PIDS+=($!)
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then URL="nats://127.0.0.1:$port"; return 0; fi
        sleep 0.05
    done
    echo "run_arbiter.sh: kcobrad ($name) did not start; see $dir/kcobrad.log" >&2
    return 1
}

stop_all() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    PIDS=()
}

run() { # LABEL URL
    "$BENCH" -l "$1" -d 3000 -r 8 -w 4 kingcobra "$2"
}

RESULTS=$WORK/results.jsonl
for round in $(seq "$ROUNDS"); do
    start plain 0
    plain=$URL
    start arbiter 1
    arbiter=$URL
    if [ $((round % 2)) -eq 1 ]; then
        run plain "$plain" >> "$RESULTS"; run arbiter "$arbiter" >> "$RESULTS"
    else
        run arbiter "$arbiter" >> "$RESULTS"; run plain "$plain" >> "$RESULTS"
    fi
    stop_all
done

/usr/bin/python3 - "$RESULTS" "$ROUNDS" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
def median(label, key):
    values = [r[key] for r in runs if r.get("server") == label and key in r]
    return statistics.median(values) if values else float("nan")
print(f"arbiter overhead: libkingcobra request/reply, 8 requesters, 4 workers, {sys.argv[2]} rounds (medians)")
print(f"{'kcobrad':<22} {'requests/s':>12} {'p99 us':>10}")
for label, name in (("plain", "without arbiter"), ("arbiter", "with arbiter")):
    print(f"{name:<22} {median(label, 'rps'):>12.0f} {median(label, 'p99_us'):>10.1f}")
print(f"ratio with/without: {median('arbiter', 'rps') / median('plain', 'rps'):.2f}")
PY

[ -n "${BASE_KCOBRAD:-}" ] || exit 0
[ -x "$BASE_KCOBRAD" ] || { echo "run_arbiter.sh: BASE_KCOBRAD=$BASE_KCOBRAD is not executable" >&2; exit 1; }
NATS_BENCH=$BUILD_DIR/bench/bench_nats
[ -x "$NATS_BENCH" ] || { echo "run_arbiter.sh: $NATS_BENCH not built" >&2; exit 1; }
HOT=$WORK/hot.jsonl
hot_run() { # LABEL BINARY
    local port pid
    port=$(free_port)
    "$2" -a 127.0.0.1 -p "$port" > "$WORK/$1.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.05
    done
    for workload in fanout reqrep8; do "$NATS_BENCH" -l "$1" "$workload" "nats://127.0.0.1:$port" >> "$HOT"; done
    stop_all
}
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) -eq 1 ]; then hot_run hook "$KCOBRAD"; hot_run base "$BASE_KCOBRAD";
    else hot_run base "$BASE_KCOBRAD"; hot_run hook "$KCOBRAD"; fi
done
/usr/bin/python3 - "$HOT" "$ROUNDS" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
print(f"broker hot path: this kcobrad (quarantine hook) / BASE_KCOBRAD, {sys.argv[2]} rounds (medians)")
for workload, key in (("fanout", "msgs_per_s"), ("reqrep8", "rps")):
    hook = statistics.median(r[key] for r in runs if r["workload"] == workload and r["server"] == "hook")
    base = statistics.median(r[key] for r in runs if r["workload"] == workload and r["server"] == "base")
    print(f"{workload:<8} {key:<11} hook {hook:>10.0f}  base {base:>10.0f}  ratio {hook / base:.3f}")
PY

#!/usr/bin/env bash
# bench/run_ledger_replay.sh BUILD_DIR - the ledger's state machine alone:
# BUILD_DIR/bench/ledger_replay replays a log of already-verified transfers
# (the replicated log's entries, batch_codec.h) into a fresh store on disk,
# as a standby and a restart do, then times the restart of that store.
#
# Two ways per round, each on a fresh store in a scratch directory:
#   entry  one LMDB transaction (one sync) per log entry of 1,024 transfers,
#          as a standby that keeps up applies them (kci_ledger_log_apply)
#   group  64 entries per transaction, as catching up on a backlog does
#          (kci_ledger_log_apply_group)
# Prints per round and the medians: transfers/s by the wall clock,
# transfers per CPU-second of the replaying thread (one core's rate,
# whatever the neighbours on a shared machine take), and the restart in ms.
#
# Environment: BENCH_REPLAY_ROUNDS (3), BENCH_REPLAY_TRANSFERS (1000000),
# BENCH_REPLAY_GROUP (64), BENCH_REPLAY_DIR (a directory for the stores;
# default under /tmp).
set -euo pipefail

ROUNDS=${BENCH_REPLAY_ROUNDS:-3}
TRANSFERS=${BENCH_REPLAY_TRANSFERS:-1000000}
GROUP=${BENCH_REPLAY_GROUP:-64}

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
REPLAY=$1/bench/ledger_replay
[ -x "$REPLAY" ] || { echo "run_ledger_replay.sh: $REPLAY is missing (build $1 first)" >&2; exit 2; }
SCRATCH=$(mktemp -d "${BENCH_REPLAY_DIR:-/tmp}/kc-bench-replay-XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT

median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
json_field() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.stdin.read())['$1'])"; }

echo "ledger replay: $TRANSFERS transfers in entries of 1024, groups of $GROUP, $ROUNDS rounds"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in entry group; do
    : >"$SCRATCH/$mode.tps"; : >"$SCRATCH/$mode.cpu"; : >"$SCRATCH/$mode.restart"
done
for round in $(seq 1 "$ROUNDS"); do
    for mode in entry group; do
        size=1
        [ $mode = entry ] || size=$GROUP
        mkdir "$SCRATCH/store"
        line=$("$REPLAY" --transfers "$TRANSFERS" --group "$size" --dir "$SCRATCH/store")
        rm -rf "$SCRATCH/store"
        echo "round $round $mode: $line"
        echo "$line" | json_field transfers_per_s >>"$SCRATCH/$mode.tps"
        echo "$line" | json_field transfers_per_cpu_s >>"$SCRATCH/$mode.cpu"
        echo "$line" | json_field restart_ms >>"$SCRATCH/$mode.restart"
    done
done
printf '\n%-8s %14s %18s %12s\n' "" "transfers/s" "transfers/cpu-s" "restart ms"
for mode in entry group; do
    printf '%-8s %14.0f %18.0f %12s\n' $mode "$(median <"$SCRATCH/$mode.tps")" \
        "$(median <"$SCRATCH/$mode.cpu")" "$(median <"$SCRATCH/$mode.restart")"
done
echo "target: 500000 transfers/s on one core; a restart under 3000 ms; medians of $ROUNDS rounds"
echo "command: BENCH_REPLAY_ROUNDS=$ROUNDS BENCH_REPLAY_TRANSFERS=$TRANSFERS BENCH_REPLAY_GROUP=$GROUP bench/run_ledger_replay.sh $1"

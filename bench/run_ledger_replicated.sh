#!/usr/bin/env bash
# bench/run_ledger_replicated.sh BUILD_DIR - the ledger replicated on
# JetStream (storage jetstream, docs/ledger.md) against storage local, in
# the same run, on a three-server cluster on this machine
# (scripts/js-cluster.sh); the figures docs/cluster.md quotes.
#
#   local    one `kcobra ledger serve --storage local` connected to kc-1;
#            BUILD_DIR/bench/ledger_bench (batched transfers, every signature
#            verified, acknowledged after the commit) -> transfers/s
#   R3       three `kcobra ledger serve --storage jetstream`, one per server,
#            sharing the log (R3) and the mint key; the same ledger_bench ->
#            transfers/s and the ratio to local
#   take-over  ROUNDS times: kill -9 the active ledger, time until another
#            answers (a balance query every 20 ms: only the active ledger
#            answers), start the killed one again. Median and worst.
# Environment: BENCH_LEDGER_R_CLIENTS (16), BENCH_LEDGER_R_TRANSFERS (per
# client, 1000), BENCH_LEDGER_R_BATCH (64), BENCH_LEDGER_R_ROUNDS (5),
# NATS_SERVER (/usr/sbin/nats-server).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
BUILD_DIR=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
for program in "$BUILD_DIR/bench/ledger_bench" "$BUILD_DIR/src/cmd/kcobra"; do
    [ -x "$program" ] || { echo "run_ledger_replicated: $program is missing" >&2; exit 2; }
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kc-bench-ledger-replicated-XXXXXX")
cleanup() {
    for pid_file in "$WORK"/*.pid; do
        if [ -f "$pid_file" ]; then kill "$(cat "$pid_file")" 2>/dev/null || true; fi
    done
    sleep 1
    "$ROOT/scripts/js-cluster.sh" stop "$WORK/cluster" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

"$ROOT/scripts/js-cluster.sh" start "$WORK/cluster" auto >/dev/null
/usr/bin/python3 - "$BUILD_DIR" "$WORK" <<'EOF'
import json, os, shutil, signal, statistics, subprocess, sys, time

build, work = sys.argv[1:3]
kcobra = os.path.join(build, "src", "cmd", "kcobra")
bench = os.path.join(build, "bench", "ledger_bench")
clients = os.environ.get("BENCH_LEDGER_R_CLIENTS", "16")
transfers = os.environ.get("BENCH_LEDGER_R_TRANSFERS", "1000")
batch = os.environ.get("BENCH_LEDGER_R_BATCH", "64")
rounds = int(os.environ.get("BENCH_LEDGER_R_ROUNDS", "5"))
urls = open(os.path.join(work, "cluster", "urls")).read().strip().split(",")
all_urls = ",".join(urls)
WAIT_S = 60  # a bound for one take-over, not a target
processes = {}

def spawn(name, server, storage):
    directory = os.path.join(work, name)
    order = ",".join(urls[server:] + urls[:server])
    arguments = [kcobra, "ledger", "serve", "--dir", directory, "--server", order,
                 "--node", name, "--storage", storage]
    if storage == "jetstream":
        arguments += ["--stream-replicas", "3", "--lease-replicas", "3"]
    log = open(os.path.join(work, name + ".log"), "a")
    process = subprocess.Popen(arguments, stdout=log, stderr=log)
    open(os.path.join(work, name + ".pid"), "w").write(str(process.pid))
    processes[name] = process

def stop(name, signal_number=signal.SIGTERM):
    process = processes.pop(name)
    process.send_signal(signal_number)
    process.wait(timeout=30)

def answered(timeout="300ms"):
    return subprocess.run([kcobra, "wallet", "balance", "00" * 32, "--server", all_urls,
                           "--timeout", timeout], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0

def wait_answered():
    deadline = time.monotonic() + WAIT_S
    while not answered():
        if time.monotonic() > deadline:
            sys.exit("run_ledger_replicated: no ledger answers")
        time.sleep(0.02)

def run_bench():
    output = subprocess.run([bench, "--server", urls[0], "--clients", clients,
                             "--transfers", transfers, "--batch", batch, "--coins", "100"],
                            check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])

def active_node():
    output = subprocess.run([kcobra, "ledger", "audit", "--replicas", "--json", "--server",
                             all_urls], capture_output=True, text=True).stdout
    for replica in json.loads(output)["replicas"]:
        if replica["active"]:
            return replica["node"]
    return None

spawn("local", 0, "local")
wait_answered()
local = run_bench()
stop("local")
print("storage local: %.0f transfers/s (p50 %.1f ms, p99 %.1f ms)" %
      (local["transfers_per_s"], local["p50_ms"], local["p99_ms"]))

names = ["ledger-%d" % index for index in range(3)]
spawn(names[0], 0, "jetstream")
wait_answered()
for index in (1, 2):
    directory = os.path.join(work, names[index])
    os.makedirs(directory, mode=0o700)
    shutil.copy2(os.path.join(work, names[0], "mint.key"), os.path.join(directory, "mint.key"))
    spawn(names[index], index, "jetstream")
time.sleep(2)
replicated = run_bench()
print("storage jetstream, R3: %.0f transfers/s (p50 %.1f ms, p99 %.1f ms); %.2f of local" %
      (replicated["transfers_per_s"], replicated["p50_ms"], replicated["p99_ms"],
       replicated["transfers_per_s"] / local["transfers_per_s"]))

takeovers = []
for round_index in range(rounds):
    victim = active_node()
    if victim is None:
        sys.exit("run_ledger_replicated: no active ledger")
    started = time.monotonic()
    stop(victim, signal.SIGKILL)
    wait_answered()
    takeovers.append((time.monotonic() - started) * 1000)
    spawn(victim, names.index(victim), "jetstream")
    time.sleep(2)  # the restarted one catches up
print("take-over after kill -9 of the active ledger: median %.0f ms, worst %.0f ms (%d kills)" %
      (statistics.median(takeovers), max(takeovers), len(takeovers)))
check = subprocess.run([kcobra, "ledger", "audit", "--replicas", "--server", all_urls],
                       capture_output=True, text=True)
print(check.stdout.strip().splitlines()[-1])
for name in list(processes):
    stop(name)
EOF

#!/usr/bin/env bash
# bench/run_lease.sh BUILD_DIR - take-over time of the active/standby lease
# (src/service/lease.h) on a three-server JetStream cluster on this machine
# (scripts/js-cluster.sh), the figure docs/cluster.md quotes.
#
# Three BUILD_DIR/bench/lease_contender processes, one per server, contend for
# one lease. ROUNDS times: kill -9 the active one, time until another reports
# itself active (both instants on the machine's monotonic clock), start a new
# contender in its place. Then LEADER_ROUNDS times: kill -9 the nats-server
# leading the lease's stream, time until a contender is active again, restart
# the server. Prints median and worst of each.
# Environment: BENCH_LEASE_ROUNDS (20), BENCH_LEASE_LEADER_ROUNDS (3),
# BENCH_LEASE_TTL_MS (1200), BENCH_LEASE_RENEW_MS (200),
# BENCH_LEASE_MARGIN_MS (200), NATS_SERVER (/usr/sbin/nats-server).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
BUILD_DIR=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONTENDER=$BUILD_DIR/bench/lease_contender
[ -x "$CONTENDER" ] || { echo "run_lease: $CONTENDER not built" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kc-bench-lease-XXXXXX")
cleanup() {
    "$ROOT/scripts/js-cluster.sh" stop "$WORK/cluster" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

"$ROOT/scripts/js-cluster.sh" start "$WORK/cluster" auto >/dev/null
/usr/bin/python3 - "$ROOT" "$WORK" "$CONTENDER" <<'EOF'
import json, os, signal, statistics, subprocess, sys, time, urllib.request

root, work, contender = sys.argv[1:4]
rounds = int(os.environ.get("BENCH_LEASE_ROUNDS", "20"))
leader_rounds = int(os.environ.get("BENCH_LEASE_LEADER_ROUNDS", "3"))
ttl = os.environ.get("BENCH_LEASE_TTL_MS", "1200")
renew = os.environ.get("BENCH_LEASE_RENEW_MS", "200")
margin = os.environ.get("BENCH_LEASE_MARGIN_MS", "200")
cluster = os.path.join(work, "cluster")
script = os.path.join(root, "scripts", "js-cluster.sh")
urls = open(os.path.join(cluster, "urls")).read().strip().split(",")
bucket, stream = "kc_bench_lease", "KV_kc_bench_lease"
WAIT_S = 30  # for any one take-over: a bound, not a target

def now_ms():
    return time.monotonic() * 1000  # CLOCK_MONOTONIC, as the contenders print

contenders = []  # [process, output path, server index]

def spawn(server):
    path = os.path.join(work, "contender-%d.out" % len(contenders))
    order = ",".join(urls[server:] + urls[:server])
    process = subprocess.Popen([contender, order, bucket, "role", "bench-%d" % len(contenders),
                                ttl, renew, margin, "3"], stdout=open(path, "w"),
                               stderr=subprocess.DEVNULL)
    contenders.append([process, path, server])

def events(index):
    with open(contenders[index][1]) as output:
        return [line.split() for line in output if not line.startswith("active")]

def holder():
    for index, (process, _, _) in enumerate(contenders):
        if process.poll() is None:
            acquired_lost = [e for e in events(index) if e and e[0] in ("acquired", "lost")]
            if acquired_lost and acquired_lost[-1][0] == "acquired":
                return index
    return None

def acquired_after(since_ms, excluded):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for index, (process, _, _) in enumerate(contenders):
            if index == excluded or process.poll() is not None:
                continue
            for event in events(index):
                if event[0] == "acquired" and float(event[2]) >= since_ms:
                    return float(event[2])
        time.sleep(0.01)
    raise SystemExit("run_lease: no take-over within %d s" % WAIT_S)

def wait_holder():
    deadline = time.monotonic() + WAIT_S
    while holder() is None:
        if time.monotonic() > deadline:
            raise SystemExit("run_lease: nobody holds the lease")
        time.sleep(0.05)
    return holder()

def stream_leader():
    for n in (1, 2, 3):
        try:
            port = [l.split("=")[1] for l in open(os.path.join(cluster, "kc-%d.ports" % n))
                    if l.startswith("monitor=")][0].strip()
            jsz = json.load(urllib.request.urlopen("http://127.0.0.1:%s/jsz?streams=true" % port,
                                                   timeout=2))
            for account in jsz.get("account_details", []):
                for detail in account.get("stream_detail", []):
                    if detail["name"] == stream and detail.get("cluster", {}).get("leader"):
                        return int(detail["cluster"]["leader"].split("-")[1])
        except OSError:
            continue
    raise SystemExit("run_lease: no leader of %s" % stream)

try:
    for server in range(3):
        spawn(server)
    wait_holder()
    takeovers = []
    for _ in range(rounds):
        time.sleep(1)
        victim = wait_holder()
        killed = now_ms()
        contenders[victim][0].send_signal(signal.SIGKILL)
        contenders[victim][0].wait()
        takeovers.append(acquired_after(killed, victim) - killed)
        spawn(contenders[victim][2])
    leader_takeovers = []
    for _ in range(leader_rounds):
        time.sleep(1)
        wait_holder()
        server = stream_leader()
        killed = now_ms()
        subprocess.run([script, "kill", cluster, str(server)], check=True)
        leader_takeovers.append(acquired_after(killed, None) - killed)
        subprocess.run([script, "restart", cluster, str(server)], check=True,
                       stdout=subprocess.DEVNULL)
finally:
    for process, _, _ in contenders:
        if process.poll() is None:
            process.terminate()
            process.wait()

print("lease take-over (ttl %s ms, renew %s ms, margin %s ms), 3 servers on this machine:"
      % (ttl, renew, margin))
print("  kill -9 of the active process:       median %6.0f ms, worst %6.0f ms (%d kills)"
      % (statistics.median(takeovers), max(takeovers), len(takeovers)))
if leader_takeovers:
    print("  kill -9 of the stream's leader:      median %6.0f ms, worst %6.0f ms (%d kills)"
          % (statistics.median(leader_takeovers), max(leader_takeovers), len(leader_takeovers)))
EOF

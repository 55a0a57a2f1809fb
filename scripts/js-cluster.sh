#!/usr/bin/env bash
# scripts/js-cluster.sh - a three-server nats-server cluster with JetStream on
# 127.0.0.1, for benchmarks, for trying docs/cluster.md, and for poking at
# leases by hand. The tests start their own (tests/integration/js_cluster.c);
# this is the same shape as a script.
#
#   scripts/js-cluster.sh start DIR [BASE_PORT]   start kc-1..kc-3, wait for a
#                                                  JetStream meta leader, print
#                                                  the client URLs
#   scripts/js-cluster.sh stop DIR                 SIGTERM all three, then wait
#   scripts/js-cluster.sh kill DIR N               kill -9 kc-N
#   scripts/js-cluster.sh pause DIR N | resume DIR N   SIGSTOP / SIGCONT kc-N
#   scripts/js-cluster.sh restart DIR N            start kc-N again (same ports,
#                                                  same store)
#   scripts/js-cluster.sh status DIR               pid, ports, the meta leader
#
# Server kc-N (N = 1..3) listens for clients on BASE_PORT+N-1, for routes on
# BASE_PORT+2000+N-1 and serves monitoring on BASE_PORT+4000+N-1 (BASE_PORT
# 14222 by default: the table in docs/cluster.md). BASE_PORT "auto" picks free
# ports. Everything lives under DIR: kc-N.conf, kc-N.log, kc-N.pid and the
# JetStream store DIR/kc-N/store. DIR/urls holds the comma-separated client
# URLs (for KCOBRA_SERVER or a benchmark's --servers).
# Environment: NATS_SERVER (/usr/sbin/nats-server).
set -euo pipefail

NATS_SERVER=${NATS_SERVER:-/usr/sbin/nats-server}
SIZE=3
READY_TRIES=300 # x 0.1 s: routes and the meta leader
STOP_TRIES=100  # x 0.1 s

usage() {
    sed -n '7,16p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# Three ports the kernel hands out for port 0 (free a moment ago).
free_ports() {
    /usr/bin/python3 - "$1" <<'EOF'
import socket, sys
sockets = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    sockets.append(s)
print(" ".join(str(s.getsockname()[1]) for s in sockets))
EOF
}

# port_of DIR N KIND -> the port written at start (client|route|monitor).
port_of() { sed -n "s/^$3=//p" "$1/kc-$2.ports"; }

write_config() { # DIR N
    local dir=$1 n=$2 routes="" i
    for i in $(seq 1 $SIZE); do
        routes+="    nats://127.0.0.1:$(port_of "$dir" "$i" route)"$'\n'
    done
    mkdir -p "$dir/kc-$n/store"
    cat >"$dir/kc-$n.conf" <<EOF
server_name: kc-$n
listen: 127.0.0.1:$(port_of "$dir" "$n" client)
http: 127.0.0.1:$(port_of "$dir" "$n" monitor)
jetstream {
  store_dir: "$dir/kc-$n/store"
}
cluster {
  name: kingcobra
  listen: 127.0.0.1:$(port_of "$dir" "$n" route)
  routes: [
$routes  ]
}
EOF
}

start_one() { # DIR N
    local dir=$1 n=$2
    "$NATS_SERVER" -c "$dir/kc-$n.conf" >>"$dir/kc-$n.log" 2>&1 &
    echo $! >"$dir/kc-$n.pid"
}

pid_of() { cat "$1/kc-$2.pid" 2>/dev/null || true; }

# The meta leader's name as server n sees it, or nothing.
meta_leader() { # DIR N
    curl -s --max-time 1 "http://127.0.0.1:$(port_of "$1" "$2" monitor)/jsz" 2>/dev/null |
        jq -r '.meta_cluster.leader // empty' 2>/dev/null || true
}

# Running and not stopped by SIGSTOP (state T in /proc): it should answer.
awake() { # PID
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null &&
        [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != T ]
}

# Ready: every awake server names the same meta leader.
wait_ready() { # DIR
    local dir=$1 n leader first
    for _ in $(seq 1 $READY_TRIES); do
        first=""
        for n in $(seq 1 $SIZE); do
            awake "$(pid_of "$dir" "$n")" || continue
            leader=$(meta_leader "$dir" "$n")
            if [ -z "$leader" ] || { [ -n "$first" ] && [ "$leader" != "$first" ]; }; then
                first=""
                break
            fi
            first=$leader
        done
        if [ -n "$first" ]; then
            echo "meta leader: $first"
            return 0
        fi
        sleep 0.1
    done
    echo "js-cluster: no agreed JetStream meta leader after $((READY_TRIES / 10)) s; see $dir/kc-*.log" >&2
    return 1
}

start() { # DIR [BASE]
    local dir=$1 base=${2:-14222} n ports
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ "$base" = auto ]; then
        read -r -a ports <<<"$(free_ports $((3 * SIZE)))"
    else
        ports=()
        for n in 0 1 2; do ports+=($((base + n))); done
        for n in 0 1 2; do ports+=($((base + 2000 + n))); done
        for n in 0 1 2; do ports+=($((base + 4000 + n))); done
    fi
    for n in $(seq 1 $SIZE); do
        printf 'client=%s\nroute=%s\nmonitor=%s\n' "${ports[$((n - 1))]}" \
            "${ports[$((SIZE + n - 1))]}" "${ports[$((2 * SIZE + n - 1))]}" >"$dir/kc-$n.ports"
    done
    for n in $(seq 1 $SIZE); do write_config "$dir" "$n"; done
    for n in $(seq 1 $SIZE); do start_one "$dir" "$n"; done
    wait_ready "$dir"
    local urls=""
    for n in $(seq 1 $SIZE); do
        urls+="${urls:+,}nats://127.0.0.1:$(port_of "$dir" "$n" client)"
    done
    echo "$urls" >"$dir/urls"
    echo "$urls"
}

stop() { # DIR
    local dir=$1 n pid
    for n in $(seq 1 $SIZE); do
        pid=$(pid_of "$dir" "$n")
        [ -n "$pid" ] || continue
        kill -CONT "$pid" 2>/dev/null || true
        kill -TERM "$pid" 2>/dev/null || true
    done
    for n in $(seq 1 $SIZE); do
        pid=$(pid_of "$dir" "$n")
        [ -n "$pid" ] || continue
        for _ in $(seq 1 $STOP_TRIES); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$dir/kc-$n.pid"
    done
}

signal_one() { # DIR N SIGNAL
    local pid
    pid=$(pid_of "$1" "$2")
    [ -n "$pid" ] || { echo "js-cluster: kc-$2 is not running" >&2; exit 1; }
    kill "-$3" "$pid"
    if [ "$3" = KILL ]; then rm -f "$1/kc-$2.pid"; fi
}

status() { # DIR
    local dir=$1 n pid state
    for n in $(seq 1 $SIZE); do
        pid=$(pid_of "$dir" "$n")
        state=down
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then state="pid $pid (paused)"; fi
        if awake "$pid"; then state="pid $pid"; fi
        echo "kc-$n: $state, client $(port_of "$dir" "$n" client)," \
            "monitor $(port_of "$dir" "$n" monitor), meta leader: $(meta_leader "$dir" "$n")"
    done
}

[ $# -ge 2 ] || usage
command=$1
dir=$2
case "$command" in
start) start "$dir" "${3:-14222}" ;;
stop) stop "$dir" ;;
kill) signal_one "$dir" "${3:?N}" KILL ;;
pause) signal_one "$dir" "${3:?N}" STOP ;;
resume) signal_one "$dir" "${3:?N}" CONT ;;
restart)
    [ -z "$(pid_of "$dir" "${3:?N}")" ] || { echo "js-cluster: kc-$3 still runs" >&2; exit 1; }
    start_one "$dir" "$3"
    wait_ready "$dir"
    ;;
status) status "$dir" ;;
*) usage ;;
esac

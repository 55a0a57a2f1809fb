#!/usr/bin/env bash
# bench/run_abuse.sh KCOBRAD [NATS_SERVER] - what cheap abuse costs a server:
# log lines a second and CPU, kcobrad against nats-server in the same run.
#
#   emfile  the server runs under `prlimit --nofile=256`; 400 connections
#           are opened and held for BENCH_ABUSE_SECONDS (default 5): log
#           lines/s and the server's CPU (utime+stime from /proc) in that time.
#           A server that retries a failed accept(2) at once spins here.
#   badpass a user/password config (plain password, so nothing is slow on
#           purpose); 4 clients send CONNECTs with a wrong password as fast as
#           they are refused, for BENCH_ABUSE_SECONDS: refusals/s and log
#           lines/s.
# Everything talks to 127.0.0.1; every loop is bounded by the time above.
# Needs python3 (the client side) and prlimit (util-linux).
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 KCOBRAD [NATS_SERVER]" >&2; exit 2; }
KCOBRAD=$(realpath "$1")
NATS_SERVER=${2:-/usr/sbin/nats-server}
SECONDS_PER_RUN=${BENCH_ABUSE_SECONDS:-5}
DESCRIPTORS=256
CONNECTIONS=400
READY_TRIES=100 # x 0.05 s

WORK=$(mktemp -d)
SERVER_PID=
trap '[ -z "$SERVER_PID" ] || kill "$SERVER_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

cat >"$WORK/auth.conf" <<'EOF'
authorization { users: [ { user: alice, password: wonder } ] }
EOF

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() { # BINARY LOG [CONFIG]: sets SERVER_PID and PORT
    PORT=$(free_port)
    local config=()
    [ $# -lt 3 ] || config=(-c "$3")
    (cd "$WORK" && exec prlimit --nofile=$DESCRIPTORS "$1" -a 127.0.0.1 -p "$PORT" "${config[@]}") \
        >"$2" 2>&1 &
    SERVER_PID=$!
    for ((try = 0; try < READY_TRIES; try++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "run_abuse.sh: $1 did not start: $(tail -3 "$2")" >&2
    exit 1
}

stop() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

cpu_ms() { # PID: utime+stime in ms
    python3 - "$1" <<'EOF'
import os, sys
fields = open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")", 1)[1].split()
print((int(fields[11]) + int(fields[12])) * 1000 // os.sysconf("SC_CLK_TCK"))
EOF
}

lines() { wc -l <"$1"; }

emfile() { # NAME BINARY
    local log="$WORK/$1-emfile.log"
    start "$2" "$log"
    python3 - "$PORT" "$CONNECTIONS" "$SECONDS_PER_RUN" "$log" "$SERVER_PID" <<'EOF' &
import socket, sys, time
port, count, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
held = []
for _ in range(count):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        held.append(s)
    except OSError:
        s.close()
time.sleep(seconds + 1)
EOF
    local holder=$!
    sleep 0.5
    local lines0 cpu0 lines1 cpu1
    lines0=$(lines "$log"); cpu0=$(cpu_ms "$SERVER_PID")
    sleep "$SECONDS_PER_RUN"
    lines1=$(lines "$log"); cpu1=$(cpu_ms "$SERVER_PID")
    wait "$holder" 2>/dev/null || true
    stop
    printf '%-12s emfile   %10.0f log lines/s  %6.1f%% CPU  (%d log bytes in all)\n' "$1" \
        "$(echo "($lines1 - $lines0) / $SECONDS_PER_RUN" | bc -l)" \
        "$(echo "($cpu1 - $cpu0) / ($SECONDS_PER_RUN * 10)" | bc -l)" "$(stat -c %s "$log")"
}

badpass() { # NAME BINARY
    local log="$WORK/$1-badpass.log"
    start "$2" "$log" "$WORK/auth.conf"
    local lines0 refused
    lines0=$(lines "$log")
    refused=$(python3 - "$PORT" "$SECONDS_PER_RUN" <<'EOF'
import socket, sys, threading, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
bad = b'CONNECT {"verbose":false,"user":"alice","pass":"wander"}\r\nPING\r\n'
deadline = time.monotonic() + seconds
counts = [0] * 4
def flood(index):
    while time.monotonic() < deadline:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.sendall(bad)
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        s.close()
        counts[index] += b"Authorization Violation" in data
threads = [threading.Thread(target=flood, args=(i,)) for i in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(sum(counts))
EOF
)
    local lines1
    lines1=$(lines "$log")
    stop
    printf '%-12s badpass  %10.0f refusals/s   %10.0f log lines/s\n' "$1" \
        "$(echo "$refused / $SECONDS_PER_RUN" | bc -l)" \
        "$(echo "($lines1 - $lines0) / $SECONDS_PER_RUN" | bc -l)"
}

emfile kcobrad "$KCOBRAD"
emfile nats-server "$NATS_SERVER"
badpass kcobrad "$KCOBRAD"
badpass nats-server "$NATS_SERVER"

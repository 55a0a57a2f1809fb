#!/usr/bin/env bash
# bench/run_auth.sh BUILD_DIR - bcrypt'd passwords: kcobrad against nats-server,
# measured in the same run.
#
# Both servers get the same config: user "user" with a bcrypt hash of cost
# BENCH_AUTH_COST (default 10: about 50-100 ms a check here) and user "plain"
# with a plain password. Each round starts both fresh (kcobrad's cache of
# verified passwords starts empty) and runs, against each, in alternating
# order:
#   storm      8 clients log in, PING, close, again and again for 3 s
#              (legitimate reconnects): connects/s, login p50/p99 in ms
#   bystander  a logged-in client's PING round trips while 8 clients log in
#              with wrong passwords (a bcrypt each, never cacheable) for 3 s:
#              round trip p50/p99 in us, refusals/s
# Prints medians over the rounds and the ratio kcobrad/nats-server. kcobrad
# caches successful verifications, nats-server does not: "storm" shows what
# that buys. "bystander" shows what a flood of bad logins does to traffic.
#
# Environment: BENCH_ROUNDS (default 3), BENCH_AUTH_COST (default 10),
# NATS_SERVER (default /usr/sbin/nats-server), KCOBRAD (default
# BUILD_DIR/src/cmd/kcobrad or BUILD_DIR/kcobrad). About 15 s a round.
set -euo pipefail

ROUNDS=${BENCH_ROUNDS:-3}
COST=${BENCH_AUTH_COST:-10}
SECONDS_PER_RUN=3
THREADS=8
NATS_SERVER=${NATS_SERVER:-/usr/sbin/nats-server}
READY_TRIES=100 # x 0.05 s
RUN_TIMEOUT_S=60

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
BUILD_DIR=$1
BENCH=$BUILD_DIR/bench/auth_connect
[ -x "$BENCH" ] || { echo "run_auth.sh: $BENCH not built (ninja -C $BUILD_DIR)" >&2; exit 1; }
[ -x "$NATS_SERVER" ] || { echo "run_auth.sh: $NATS_SERVER missing" >&2; exit 1; }
KCOBRAD=${KCOBRAD:-}
for candidate in "$BUILD_DIR/src/cmd/kcobrad" "$BUILD_DIR/kcobrad"; do
    [ -n "$KCOBRAD" ] || [ ! -x "$candidate" ] || KCOBRAD=$candidate
done
[ -n "$KCOBRAD" ] && [ -x "$KCOBRAD" ] || { echo "run_auth.sh: no kcobrad in $BUILD_DIR" >&2; exit 1; }
KCOBRAD=$(realpath "$KCOBRAD")

WORK=$(mktemp -d)
declare -A PID
trap 'for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT

HASH=$("$BENCH" hash secret "$COST")
# Quoted: nats-server 2.9 reads only "$2a$" unquoted.
cat >"$WORK/auth.conf" <<EOF
authorization {
  users: [
    { user: user, password: "$HASH" }
    { user: plain, password: plain }
  ]
}
EOF

binary_of() { [ "$1" = nats-server ] && echo "$NATS_SERVER" || echo "$KCOBRAD"; }

start_server() { # NAME ROUND: sets PORT (not in a subshell: PID must stick)
    local name=$1 port try
    port=$("$BENCH" free-port)
    (cd "$WORK" && exec "$(binary_of "$name")" -a 127.0.0.1 -p "$port" -c auth.conf) \
        >"$WORK/$name-$2.log" 2>&1 &
    PID[$name]=$!
    for ((try = 0; try < READY_TRIES; try++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            PORT=$port
            return 0
        fi
        sleep 0.05
    done
    echo "run_auth.sh: $name did not start (log: $(cat "$WORK/$name-$2.log"))" >&2
    return 1
}

stop_server() {
    kill "${PID[$1]}" 2>/dev/null || true
    wait "${PID[$1]}" 2>/dev/null || true
    unset "PID[$1]"
}

field() { # JSON_LINE NAME
    sed -n "s/.*\"$2\":\([-0-9.]*\).*/\1/p" <<<"$1"
}

median() { # values on stdin
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

declare -A VALUES
failures=0
echo "run_auth.sh: cost $COST, $ROUNDS rounds, $THREADS clients, ${SECONDS_PER_RUN} s per run" >&2
for ((round = 1; round <= ROUNDS; round++)); do
    order=(nats-server kcobrad)
    [ $((round % 2)) -eq 0 ] && order=(kcobrad nats-server)
    for name in "${order[@]}"; do
        start_server "$name" "$round" || { failures=$((failures + 1)); stop_server "$name"; continue; }
        port=$PORT
        for workload in storm bystander; do
            line=$(timeout "$RUN_TIMEOUT_S" "$BENCH" "$workload" "$port" "$SECONDS_PER_RUN" "$THREADS") ||
                failures=$((failures + 1))
            echo "  round $round $(printf '%-11s' "$name") $line" >&2
            case $workload in
            storm) figures="connects_per_s login_p50_ms login_p99_ms" ;;
            bystander) figures="rtt_p50_us rtt_p99_us refused_per_s" ;;
            esac
            for figure in $figures; do
                VALUES[$name,$figure]+="$(field "$line" "$figure") "
            done
        done
        stop_server "$name"
    done
done

printf '\n%-28s %14s %14s %10s\n' "figure (median)" nats-server kcobrad ratio
for figure in connects_per_s login_p50_ms login_p99_ms rtt_p50_us rtt_p99_us refused_per_s; do
    theirs=$(tr ' ' '\n' <<<"${VALUES[nats-server,$figure]:-}" | grep . | median)
    ours=$(tr ' ' '\n' <<<"${VALUES[kcobrad,$figure]:-}" | grep . | median)
    ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.3g", a / b }')
    printf '%-28s %14s %14s %10s\n' "$figure" "$theirs" "$ours" "$ratio"
done
echo "ratio = kcobrad / nats-server (connects/s, refused/s: higher is better; ms, us: lower)"
[ "$failures" -eq 0 ] || { echo "run_auth.sh: $failures run(s) failed" >&2; exit 1; }

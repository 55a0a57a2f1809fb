#!/usr/bin/env bash
# bench/run.sh BUILD_DIR - kcobrad against nats-server, measured in the same run.
#
# Each round starts a fresh nats-server and a fresh kcobrad side by side on
# ephemeral 127.0.0.1 ports with the same flags (-a 127.0.0.1 -p PORT), runs
# every workload of BUILD_DIR/bench/bench_nats against each of them, and stops
# both. The order of the two servers flips with every workload and round, so
# neither is always first on a noisy shared machine. Servers are fresh per
# round because the idle workload (run first) reads resident memory, which a
# server that already carried traffic keeps (Go's heap, malloc arenas).
#
# Prints medians per figure and the ratio kcobrad/nats-server; writes every
# run to BUILD_DIR/bench-results.json (a JSON array, one object per run).
# Without a kcobrad binary it measures nats-server alone and says so.
#
# Environment: BENCH_ROUNDS (default 9), BENCH_BUDGET_S (default 480: no new
# round starts after that), NATS_SERVER (default /usr/sbin/nats-server),
# KCOBRAD (default BUILD_DIR/kcobrad or BUILD_DIR/src/cmd/kcobrad). Pointing
# KCOBRAD at a script that execs nats-server shows the noise floor: every
# ratio should then be 1.00, and the "per round" column how far it strays.
set -euo pipefail

ROUNDS=${BENCH_ROUNDS:-9}
BUDGET_S=${BENCH_BUDGET_S:-480}
NATS_SERVER=${NATS_SERVER:-/usr/sbin/nats-server}
WORKLOADS=(idle reqrep1 reqrep8 pubsub fanout) # idle first: fresh servers
RUN_TIMEOUT_S=60        # one workload against one server (bench_nats bounds itself)
READY_TIMEOUT_TRIES=100 # x 0.05 s for a server to accept connections
STOP_TIMEOUT_TRIES=100  # x 0.05 s for a server to exit on SIGTERM
FILE_DESCRIPTORS_MIN=4096

usage() {
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
}

[ $# -eq 1 ] || usage
BUILD_DIR=$1
BENCH=$BUILD_DIR/bench/bench_nats
RESULTS=$BUILD_DIR/bench-results.json
LOG_DIR=$BUILD_DIR/bench-logs
[ -x "$BENCH" ] || { echo "run.sh: $BENCH not built (ninja -C $BUILD_DIR)" >&2; exit 1; }
[ -x "$NATS_SERVER" ] || { echo "run.sh: $NATS_SERVER missing (apt-get install nats-server)" >&2; exit 1; }

KCOBRAD=${KCOBRAD:-}
if [ -z "$KCOBRAD" ]; then
    for candidate in "$BUILD_DIR/kcobrad" "$BUILD_DIR/src/cmd/kcobrad"; do
        if [ -x "$candidate" ]; then KCOBRAD=$candidate; break; fi
    done
fi
[ -z "$KCOBRAD" ] || [ -x "$KCOBRAD" ] || { echo "run.sh: KCOBRAD=$KCOBRAD is not executable" >&2; exit 1; }
SERVERS=(nats-server)
if [ -n "$KCOBRAD" ]; then
    SERVERS+=(kcobrad)
else
    echo "run.sh: kcobrad is missing ($BUILD_DIR/kcobrad, $BUILD_DIR/src/cmd/kcobrad):" \
        "measuring nats-server only" >&2
fi

# 1,000 idle connections per server, and the bench's own, need descriptors.
soft=$(ulimit -Sn)
if [ "$soft" != unlimited ] && [ "$soft" -lt "$FILE_DESCRIPTORS_MIN" ]; then
    ulimit -Sn "$FILE_DESCRIPTORS_MIN" 2>/dev/null ||
        echo "run.sh: cannot raise the open-file limit to $FILE_DESCRIPTORS_MIN" >&2
fi

mkdir -p "$LOG_DIR"
RAW=$(mktemp "$BUILD_DIR/bench-results.XXXXXX")
declare -A PID PORT
failures=0

# stop_server NAME: SIGTERM, then SIGKILL if it is still there after a while.
stop_server() {
    local name=$1 try
    kill "${PID[$name]}" 2>/dev/null || true
    for ((try = 0; try < STOP_TIMEOUT_TRIES; try++)); do
        kill -0 "${PID[$name]}" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "${PID[$name]}" 2>/dev/null || true
    wait "${PID[$name]}" 2>/dev/null || true
    unset "PID[$name]"
}

stop_servers() {
    local name
    for name in "${!PID[@]}"; do stop_server "$name"; done
}
trap 'stop_servers; rm -f "$RAW"' EXIT
trap 'exit 130' INT TERM

binary_of() {
    case $1 in
    nats-server) echo "$NATS_SERVER" ;;
    kcobrad) echo "$KCOBRAD" ;;
    esac
}

# start_server NAME ROUND: starts it and waits until it accepts connections.
start_server() {
    local name=$1 round=$2 port try
    port=$("$BENCH" free-port)
    "$(binary_of "$name")" -a 127.0.0.1 -p "$port" >"$LOG_DIR/$name-round$round.log" 2>&1 &
    PID[$name]=$!
    PORT[$name]=$port
    for ((try = 0; try < READY_TIMEOUT_TRIES; try++)); do
        kill -0 "${PID[$name]}" 2>/dev/null || break
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "run.sh: $name did not start on 127.0.0.1:$port (see $LOG_DIR/$name-round$round.log)" >&2
    kill "${PID[$name]}" 2>/dev/null || true
    unset "PID[$name]"
    return 1
}

# run_one NAME WORKLOAD ROUND: one bench run, its JSON line appended to RAW.
run_one() {
    local name=$1 workload=$2 round=$3 line
    if [ -z "${PID[$name]:-}" ]; then
        line="{\"workload\":\"$workload\",\"server\":\"$name\",\"error\":\"server not running\"}"
    else
        line=$(timeout "$RUN_TIMEOUT_S" "$BENCH" -l "$name" -p "${PID[$name]}" "$workload" \
            "nats://127.0.0.1:${PORT[$name]}" 2>>"$LOG_DIR/bench.log" | tail -n 1) || true
        [ -n "$line" ] ||
            line="{\"workload\":\"$workload\",\"server\":\"$name\",\"error\":\"no result (crash or timeout)\"}"
    fi
    case $line in *'"error"'*) failures=$((failures + 1)) ;; esac
    if [ -n "${PID[$name]:-}" ] && ! kill -0 "${PID[$name]}" 2>/dev/null; then
        echo "run.sh: $name is gone after $workload (see $LOG_DIR/$name-round$round.log)" >&2
        stop_server "$name"
    fi
    echo "{\"round\":$round,${line#\{}" >>"$RAW"
    echo "  round $round  $(printf '%-11s %-8s' "$name" "$workload")  ${line}" >&2
}

run_round() {
    local round=$1 index name
    for name in "${SERVERS[@]}"; do start_server "$name" "$round" || true; done
    for index in "${!WORKLOADS[@]}"; do
        local order=("${SERVERS[@]}")
        if [ ${#SERVERS[@]} -eq 2 ] && [ $(((round + index) % 2)) -eq 1 ]; then
            order=("${SERVERS[1]}" "${SERVERS[0]}")
        fi
        for name in "${order[@]}"; do run_one "$name" "${WORKLOADS[$index]}" "$round"; done
    done
    stop_servers
}

started_s=$SECONDS
for ((round = 1; round <= ROUNDS; round++)); do
    if ((SECONDS - started_s > BUDGET_S)); then
        echo "run.sh: time budget ${BUDGET_S}s spent; stopping after $((round - 1)) rounds" >&2
        break
    fi
    echo "run.sh: round $round of $ROUNDS" >&2
    run_round "$round"
done

{
    echo "["
    sed '$!s/$/,/' "$RAW"
    echo "]"
} >"$RESULTS"

# The table: medians per workload, figure and server, from the raw lines.
TABLE_PROGRAM=$(
    cat <<'AWK'
function field(line, name,    start) {
    if (!match(line, "\"" name "\":(\"[^\"]*\"|[^,}]*)")) return ""
    start = RSTART + length(name) + 3
    return substr(line, start, RSTART + RLENGTH - start)
}
function median_of(values, n,    i, j, swap) {
    if (n == 0) return ""
    for (i = 2; i <= n; i++)
        for (j = i; j > 1 && values[j - 1] > values[j]; j--) {
            swap = values[j]; values[j] = values[j - 1]; values[j - 1] = swap
        }
    return n % 2 ? values[(n + 1) / 2] : (values[n / 2] + values[n / 2 + 1]) / 2
}
function median(figure, server,    n, round, values) {
    n = 0
    for (round = 1; round <= rounds; round++)
        if ((figure, server, round) in value) values[++n] = value[figure, server, round]
    return median_of(values, n)
}
# "min..max" of kcobrad/nats-server per round, both measured minutes apart.
function paired(figure,    round, ratio, low, high, n) {
    n = 0
    for (round = 1; round <= rounds; round++) {
        if (!((figure, "nats-server", round) in value) || !((figure, "kcobrad", round) in value)) continue
        if (value[figure, "nats-server", round] <= 0) continue
        ratio = value[figure, "kcobrad", round] / value[figure, "nats-server", round]
        if (n++ == 0 || ratio < low) low = ratio
        if (n == 1 || ratio > high) high = ratio
    }
    return n == 0 ? "-" : sprintf("%.2f..%.2f", low, high)
}
function show(number, decimals) {
    return number == "" ? "-" : sprintf("%." decimals "f", number)
}
BEGIN {
    # workload:field:label:better, one figure per row of the table
    figures = split("reqrep1:rps:requests/s:higher," \
                    "reqrep1:p50_us:p50 latency us:lower," \
                    "reqrep1:p99_us:p99 latency us:lower," \
                    "reqrep1:server_cpu_ns_per_op:server CPU ns/request:lower," \
                    "reqrep8:rps:requests/s:higher," \
                    "reqrep8:p50_us:p50 latency us:lower," \
                    "reqrep8:p99_us:p99 latency us:lower," \
                    "reqrep8:server_cpu_ns_per_op:server CPU ns/request:lower," \
                    "pubsub:msgs_per_s:msgs/s at subscriber:higher," \
                    "pubsub:server_cpu_ns_per_op:server CPU ns/msg:lower," \
                    "fanout:msgs_per_s:msgs/s delivered (4 subs):higher," \
                    "fanout:server_cpu_ns_per_op:server CPU ns/delivery:lower," \
                    "idle:bytes_per_conn:RSS bytes per idle conn:lower," \
                    "idle:rss_before_bytes:RSS bytes at start:lower," \
                    "idle:rss_after_bytes:RSS bytes with 1000 idle:lower", rows, ",")
}
{
    workload = field($0, "workload"); gsub(/"/, "", workload)
    server = field($0, "server"); gsub(/"/, "", server)
    round = field($0, "round") + 0
    if (round > rounds) rounds = round
    if (field($0, "error") != "") { errors[server]++; next }
    for (i = 1; i <= figures; i++) {
        split(rows[i], part, ":")
        number = field($0, part[2])
        if (part[1] == workload && number != "") value[i, server, round] = number + 0
    }
    dropped[server] += field($0, "dropped") + 0
    request_errors[server] += field($0, "errors") + 0
}
END {
    printf "\n%-8s  %-26s  %12s  %12s  %-31s  %s\n", "workload", "figure", "nats-server",
           "kcobrad", "kcobrad/nats-server", "per round"
    for (i = 1; i <= figures; i++) {
        split(rows[i], part, ":")
        base = median(i, "nats-server")
        ours = median(i, "kcobrad")
        decimals = part[2] ~ /_us$/ ? 1 : 0
        ratio = (base != "" && ours != "" && base > 0) ? sprintf("%.2f", ours / base) : "-"
        printf "%-8s  %-26s  %12s  %12s  %-31s  %s\n", part[1], part[3], show(base, decimals),
               show(ours, decimals), ratio " (" part[4] " is better)", paired(i)
    }
    printf "\nMedians over %d rounds; ratio = kcobrad median / nats-server median;\n", rounds
    print "per round = lowest..highest ratio of the two servers measured in the same round."
    if (kcobrad_present == "") print "kcobrad is missing: measured nats-server only."
    for (server in errors) printf "%s: %d failed runs (see bench-results.json)\n", server, errors[server]
    for (server in dropped) if (dropped[server] > 0)
        printf "%s: %d messages dropped in pubsub/fanout\n", server, dropped[server]
    for (server in request_errors) if (request_errors[server] > 0)
        printf "%s: %d request errors (timeouts) in reqrep\n", server, request_errors[server]
}
AWK
)
awk -v kcobrad_present="${KCOBRAD:+yes}" "$TABLE_PROGRAM" "$RAW"
echo "raw results: $RESULTS" >&2
[ "$failures" -eq 0 ]

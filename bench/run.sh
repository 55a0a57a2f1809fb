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
#
# Section "libkingcobra overhead" (after the table): a fresh kcobrad per round
# and BUILD_DIR/bench/bench_kingcobra, request/reply through libkingcobra
# (kc_client_request to a kc_service echo with 1 and with 4 workers) and
# through nats.c alone (natsConnection_Request to a raw echo; and raw-inbox,
# nats.c with the requester's own sync inbox, for reference), at 1 and 8
# requesters, interleaved (the order flips every round). Prints requests/s
# medians and the ratio libkingcobra/raw (target >= 0.90); writes every run to
# BUILD_DIR/bench-overhead.json. Environment: BENCH_SECTIONS (default
# "servers overhead": which sections run), BENCH_OVERHEAD_ROUNDS (default 5),
# BENCH_OVERHEAD_BUDGET_S (default 240: no new overhead round after that).
set -euo pipefail

ROUNDS=${BENCH_ROUNDS:-9}
BUDGET_S=${BENCH_BUDGET_S:-480}
NATS_SERVER=${NATS_SERVER:-/usr/sbin/nats-server}
WORKLOADS=(idle reqrep1 reqrep8 pubsub fanout) # idle first: fresh servers
RUN_TIMEOUT_S=60        # one workload against one server (bench_nats bounds itself)
READY_TIMEOUT_TRIES=100 # x 0.05 s for a server to accept connections
STOP_TIMEOUT_TRIES=100  # x 0.05 s for a server to exit on SIGTERM
FILE_DESCRIPTORS_MIN=4096
SECTIONS=${BENCH_SECTIONS:-servers overhead}
OVERHEAD_ROUNDS=${BENCH_OVERHEAD_ROUNDS:-5}
OVERHEAD_BUDGET_S=${BENCH_OVERHEAD_BUDGET_S:-240}
OVERHEAD_TARGET=0.90
# requesters:service workers:client, in odd rounds' order (even rounds reverse it)
OVERHEAD_RUNS=(1:1:raw 1:1:kingcobra 1:4:kingcobra 1:1:raw-inbox 8:1:raw 8:1:kingcobra 8:4:kingcobra 8:1:raw-inbox)

usage() {
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
}

[ $# -eq 1 ] || usage
for section in $SECTIONS; do
    case $section in servers | overhead) ;; *) echo "run.sh: unknown section '$section' in BENCH_SECTIONS" >&2; exit 2 ;; esac
done
section_enabled() { case " $SECTIONS " in *" $1 "*) return 0 ;; esac; return 1; }
section_enabled servers || ROUNDS=0
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
LOG_DIR=$(cd "$LOG_DIR" && pwd)
# Servers run in a scratch directory: kcobrad keeps data (suggestions)
# relative to its working directory, and two kcobrads must not share it.
SERVER_DIR=$(mktemp -d)
RAW=$(mktemp "$BUILD_DIR/bench-results.XXXXXX")
OVERHEAD_RAW=$(mktemp "$BUILD_DIR/bench-overhead.XXXXXX")
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
trap 'stop_servers; rm -f "$RAW" "$OVERHEAD_RAW"; rm -rf "$SERVER_DIR"' EXIT
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
    local binary
    binary=$(realpath "$(binary_of "$name")")
    (cd "$SERVER_DIR" && exec "$binary" -a 127.0.0.1 -p "$port") \
        >"$LOG_DIR/$name-round$round.log" 2>&1 &
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

if section_enabled servers; then
    {
        echo "["
        sed '$!s/$/,/' "$RAW"
        echo "]"
    } >"$RESULTS"
fi

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
if section_enabled servers; then
    awk -v kcobrad_present="${KCOBRAD:+yes}" "$TABLE_PROGRAM" "$RAW"
    echo "raw results: $RESULTS" >&2
fi

# ---- libkingcobra overhead ------------------------------------------------

OVERHEAD_BENCH=$BUILD_DIR/bench/bench_kingcobra
OVERHEAD_RESULTS=$BUILD_DIR/bench-overhead.json

# run_overhead_one ROUND REQUESTERS:WORKERS:CLIENT: one run, appended to OVERHEAD_RAW.
run_overhead_one() {
    local round=$1 requesters workers client line
    IFS=: read -r requesters workers client <<<"$2"
    local what="\"workload\":\"$client\",\"server\":\"kcobrad\",\"workers\":$workers,\"requesters\":$requesters"
    if [ -z "${PID[kcobrad]:-}" ]; then
        line="{$what,\"error\":\"server not running\"}"
    else
        line=$(timeout "$RUN_TIMEOUT_S" "$OVERHEAD_BENCH" -l kcobrad -r "$requesters" -w "$workers" \
            "$client" "nats://127.0.0.1:${PORT[kcobrad]}" 2>>"$LOG_DIR/bench.log" | tail -n 1) || true
        [ -n "$line" ] || line="{$what,\"error\":\"no result (crash or timeout)\"}"
    fi
    case $line in *'"error"'*) failures=$((failures + 1)) ;; esac
    echo "{\"round\":$round,${line#\{}" >>"$OVERHEAD_RAW"
    echo "  overhead round $round  ${line}" >&2
}

run_overhead_round() {
    local round=$1 index count=${#OVERHEAD_RUNS[@]}
    start_server kcobrad "overhead$round" || true
    for ((index = 0; index < count; index++)); do
        if ((round % 2 == 1)); then
            run_overhead_one "$round" "${OVERHEAD_RUNS[$index]}"
        else
            run_overhead_one "$round" "${OVERHEAD_RUNS[$((count - 1 - index))]}"
        fi
    done
    stop_servers
}

# The overhead table: per requesters and workers, medians and the ratio.
OVERHEAD_PROGRAM=$(
    cat <<'AWK'
function field(line, name,    start) {
    if (!match(line, "\"" name "\":(\"[^\"]*\"|[^,}]*)")) return ""
    start = RSTART + length(name) + 3
    return substr(line, start, RSTART + RLENGTH - start)
}
function median(figure, key,    n, round, values, i, j, swap) {
    n = 0
    for (round = 1; round <= rounds; round++)
        if ((figure, key, round) in value) values[++n] = value[figure, key, round]
    if (n == 0) return ""
    for (i = 2; i <= n; i++)
        for (j = i; j > 1 && values[j - 1] > values[j]; j--) {
            swap = values[j]; values[j] = values[j - 1]; values[j - 1] = swap
        }
    return n % 2 ? values[(n + 1) / 2] : (values[n / 2] + values[n / 2 + 1]) / 2
}
# "min..max" of libkingcobra/raw requests/s within one round.
function paired(ours, base,    round, ratio, low, high, n) {
    n = 0
    for (round = 1; round <= rounds; round++) {
        if (!(("rps", ours, round) in value) || !(("rps", base, round) in value)) continue
        if (value["rps", base, round] <= 0) continue
        ratio = value["rps", ours, round] / value["rps", base, round]
        if (n++ == 0 || ratio < low) low = ratio
        if (n == 1 || ratio > high) high = ratio
    }
    return n == 0 ? "-" : sprintf("%.2f..%.2f", low, high)
}
function latency(key,    p50, p99) {
    p50 = median("p50_us", key); p99 = median("p99_us", key)
    return p50 == "" ? "-" : sprintf("%.0f/%.0f", p50, p99)
}
{
    client = field($0, "workload"); gsub(/"/, "", client)
    round = field($0, "round") + 0
    if (round > rounds) rounds = round
    if (field($0, "error") != "") { errors++; next }
    key = field($0, "requesters") ":" (client == "raw" ? "raw" : client == "raw-inbox" ? "inbox" : field($0, "workers"))
    value["rps", key, round] = field($0, "rps") + 0
    value["p50_us", key, round] = field($0, "p50_us") + 0
    value["p99_us", key, round] = field($0, "p99_us") + 0
    request_errors += field($0, "errors") + 0
}
END {
    printf "\nlibkingcobra overhead (kcobrad, 128-byte request/reply; workers: the kc_service's)\n"
    printf "%-10s  %-7s  %12s  %12s  %-16s  %-10s  %-16s  %-16s  %s\n", "requesters", "workers",
           "raw req/s", "libkc req/s", "libkc/raw", "per round", "raw p50/p99 us",
           "libkc p50/p99 us", "libkc/raw-inbox"
    rows = split("1:1,1:4,8:1,8:4", row, ",")
    for (i = 1; i <= rows; i++) {
        split(row[i], part, ":")
        base = part[1] ":raw"; ours = row[i]
        base_rps = median("rps", base); ours_rps = median("rps", ours)
        ratio = "-"; verdict = ""
        if (base_rps != "" && ours_rps != "" && base_rps > 0) {
            ratio = sprintf("%.2f", ours_rps / base_rps)
            verdict = ours_rps / base_rps >= target ? " ok" : " (< " target ")"
        }
        inbox_rps = median("rps", part[1] ":inbox")
        printf "%-10s  %-7s  %12s  %12s  %-16s  %-10s  %-16s  %-16s  %s\n", part[1], part[2],
               base_rps == "" ? "-" : sprintf("%.0f", base_rps),
               ours_rps == "" ? "-" : sprintf("%.0f", ours_rps), ratio verdict,
               paired(ours, base), latency(base), latency(ours),
               inbox_rps == "" || inbox_rps <= 0 ? "-" : sprintf("%.2f", ours_rps / inbox_rps)
    }
    printf "\nMedians over %d rounds; target libkingcobra/raw >= %s (overhead at most 10%%).\n",
           rounds, target
    printf "raw: natsConnection_Request. raw-inbox: nats.c with the requester's own sync inbox,\n"
    printf "the pattern kc_client_request uses: libkc/raw-inbox is the library's cost alone.\n"
    if (errors > 0) printf "%d failed runs (see bench-overhead.json)\n", errors
    if (request_errors > 0) printf "%d request errors (timeouts)\n", request_errors
}
AWK
)

if section_enabled overhead; then
    if [ -z "$KCOBRAD" ]; then
        echo "run.sh: libkingcobra overhead skipped: kcobrad is missing" >&2
    elif [ ! -x "$OVERHEAD_BENCH" ]; then
        echo "run.sh: libkingcobra overhead skipped: $OVERHEAD_BENCH not built" >&2
    else
        overhead_started_s=$SECONDS
        for ((round = 1; round <= OVERHEAD_ROUNDS; round++)); do
            if ((SECONDS - overhead_started_s > OVERHEAD_BUDGET_S)); then
                echo "run.sh: overhead budget ${OVERHEAD_BUDGET_S}s spent; stopping after $((round - 1)) rounds" >&2
                break
            fi
            echo "run.sh: libkingcobra overhead, round $round of $OVERHEAD_ROUNDS" >&2
            run_overhead_round "$round"
        done
        {
            echo "["
            sed '$!s/$/,/' "$OVERHEAD_RAW"
            echo "]"
        } >"$OVERHEAD_RESULTS"
        awk -v target="$OVERHEAD_TARGET" "$OVERHEAD_PROGRAM" "$OVERHEAD_RAW"
        echo "overhead results: $OVERHEAD_RESULTS" >&2
    fi
fi
[ "$failures" -eq 0 ]

#!/usr/bin/env bash
# bench/run_ledger.sh BUILD_DIR - acknowledged, durable transfers/s through the
# ledger (kcobrad's ledger component) beside the same workload on PostgreSQL,
# measured in the same run.
#
# Ledger: a fresh kcobrad per round with a ledger in a scratch directory;
# BUILD_DIR/bench/ledger_bench mints (untimed) one coin per client slot to
# random wallets among 10,000, pre-signs (untimed) random payer -> payee
# transfers of one coin, then CLIENTS connections each send them in
# kc.ledger.transfer.batch requests of BATCH and wait for each
# acknowledgement (sent after the LMDB commit, fsync'd). Every transfer's
# Ed25519 signature is verified by the ledger.
#
# PostgreSQL (Debian postgresql 15): a scratch cluster (initdb, pg_ctl on
# 127.0.0.1, a socket in the scratch directory; run as the user "nobody"
# when this script runs as root), a coins table (id, owner, hops) with the
# same number of coins among 10,000 wallets and a trail table; pgbench runs
# CLIENTS clients for DURATION seconds, one SERIALIZABLE transaction per
# transfer that reads the coin's owner (the check), moves it to a random
# payee only if it is still that owner, and appends the trail row
# (synchronous_commit on: durable like the ledger). Serialization failures
# are retried (--max-tries) and counted by pgbench. No signatures: Postgres
# is given the bookkeeping only.
#
# The limit, in the same run: `ledger_bench
# --verify-limit WORKERS`, just before and just after each ledger round
# (their mean), loops crypto_sign_verify_detached over one signed
# transfer's bytes on as many threads as the ledger has workers (nothing
# else: no broker, no client, no LMDB); every transfer costs the ledger one
# such verification, so ledger/limit is how close it comes to its bound.
# Then a sweep: BENCH_LEDGER_SWEEP_ROUNDS rounds of the ledger with 1 and
# with 2 workers, each beside the limit on as many threads.
#
# Then latency against offered load: at 25%, 50% and 90% of the ledger's
# median peak, ledger_bench --rate (each client on a fixed schedule, open
# loop) and pgbench -R at the same rate; latencies count from when each
# batch or transaction was due, so a queue shows in them.
#
# Prints per round and the medians: transfers/s, p50 and p99 latency (a
# ledger transfer's latency is its batch's round trip; PostgreSQL's is one
# transaction's), the ratio ledger/PostgreSQL and the ratio ledger/limit.
#
# Environment: BENCH_LEDGER_ROUNDS (5), BENCH_LEDGER_CLIENTS (16),
# BENCH_LEDGER_BATCH (64), BENCH_LEDGER_TRANSFERS (per client, 4000),
# BENCH_LEDGER_PG_SECONDS (10), BENCH_LEDGER_WORKERS (the ledger's default:
# one per core), BENCH_LEDGER_LIMIT_SECONDS (3), BENCH_LEDGER_SWEEP_ROUNDS
# (3; 0 skips the 1/2-worker sweep), BENCH_LEDGER_RATE_PERCENTS ("25 50
# 90"; "" skips the offered-load rows), BENCH_LEDGER_RATE_SECONDS (5), PG_BIN (/usr/lib/postgresql/15/bin),
# KCOBRAD (BUILD_DIR/src/cmd/kcobrad).
set -euo pipefail

ROUNDS=${BENCH_LEDGER_ROUNDS:-5}
CLIENTS=${BENCH_LEDGER_CLIENTS:-16}
BATCH=${BENCH_LEDGER_BATCH:-64}
TRANSFERS=${BENCH_LEDGER_TRANSFERS:-4000}
PG_SECONDS=${BENCH_LEDGER_PG_SECONDS:-10}
WORKERS=${BENCH_LEDGER_WORKERS:-$(nproc)}
LIMIT_SECONDS=${BENCH_LEDGER_LIMIT_SECONDS:-3}
SWEEP_ROUNDS=${BENCH_LEDGER_SWEEP_ROUNDS:-3}
RATE_PERCENTS=${BENCH_LEDGER_RATE_PERCENTS:-25 50 90}
RATE_SECONDS=${BENCH_LEDGER_RATE_SECONDS:-5}
WALLETS=10000
COINS_PER_CLIENT=500
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
READY_TRIES=100 # x 0.05 s

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
BUILD_DIR=$1
BENCH=$BUILD_DIR/bench/ledger_bench
KCOBRAD=${KCOBRAD:-$BUILD_DIR/src/cmd/kcobrad}
for program in "$BENCH" "$KCOBRAD"; do
    [ -x "$program" ] || { echo "run_ledger.sh: $program is missing (build $BUILD_DIR first)" >&2; exit 2; }
done
PG_OK=1
for program in "$PG_BIN/initdb" "$PG_BIN/pg_ctl" "$(command -v pgbench || true)"; do
    if [ -z "$program" ] || [ ! -x "$program" ]; then
        echo "run_ledger.sh: PostgreSQL not found ($PG_BIN, pgbench): the ledger alone" >&2
        PG_OK=0
    fi
done

SCRATCH=$(mktemp -d /tmp/kc-bench-ledger-XXXXXX)
KCOBRAD_PID=""
PG_DATA=""
cleanup() {
    [ -z "$KCOBRAD_PID" ] || { kill "$KCOBRAD_PID" 2>/dev/null || true; wait "$KCOBRAD_PID" 2>/dev/null || true; }
    [ -z "$PG_DATA" ] || as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$SCRATCH"
}
trap cleanup EXIT

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# PostgreSQL refuses to run as root.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi
}

median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

json_field() { # json_field FIELD < line
    /usr/bin/python3 -c "import json,sys; print(json.loads(sys.stdin.read())['$1'])"
}

ledger_round() { # ledger_round ROUND WORKERS [LEDGER_BENCH_OPTIONS...]
    local round=$1 workers=$2 port dir audit=""
    shift 2
    [ "$round" != 1 ] || audit=--audit # once: it re-checks every signature
    port=$(free_port)
    dir=$SCRATCH/ledger-$round-$workers
    mkdir -p "$dir"
    printf 'data_dir: "%s/data"\nledger { dir: "%s/ledger", mint_open: true, workers: %d }\n' \
        "$dir" "$dir" "$workers" >"$dir/kcobrad.conf"
    "$KCOBRAD" -a 127.0.0.1 -p "$port" -c "$dir/kcobrad.conf" >"$dir/kcobrad.log" 2>&1 &
    KCOBRAD_PID=$!
    local tries=0
    until grep -q "Server is ready" "$dir/kcobrad.log" 2>/dev/null; do
        tries=$((tries + 1))
        [ $tries -lt $READY_TRIES ] || { echo "run_ledger.sh: kcobrad did not start:" >&2; cat "$dir/kcobrad.log" >&2; exit 1; }
        sleep 0.05
    done
    "$BENCH" --server "nats://127.0.0.1:$port" --wallets $WALLETS --clients "$CLIENTS" \
        --coins $COINS_PER_CLIENT --transfers "$TRANSFERS" --batch "$BATCH" $audit "$@" >"$dir/result.json"
    kill "$KCOBRAD_PID"
    wait "$KCOBRAD_PID" 2>/dev/null || true
    KCOBRAD_PID=""
    cat "$dir/result.json"
}

limit_round() { # limit_round THREADS: verifications/s, nothing else of ours running
    "$BENCH" --verify-limit "$1" --seconds "$LIMIT_SECONDS" | json_field verifies_per_s
}

# The limit around a ledger round: the mean of one just before and one just
# after, so that a shared machine's load weighs on both alike.
limited_round() { # limited_round ROUND WORKERS: sets LINE and LIMIT
    local before after
    before=$(limit_round "$2")
    LINE=$(ledger_round "$1" "$2")
    after=$(limit_round "$2")
    LIMIT=$(awk -v a="$before" -v b="$after" 'BEGIN {printf "%.0f", (a + b) / 2}')
}

pg_setup() {
    PG_DATA=$SCRATCH/pg
    local socket=$SCRATCH/pgsock
    mkdir -p "$PG_DATA" "$socket"
    [ "$(id -u)" -ne 0 ] || chown -R nobody "$SCRATCH"
    PG_PORT=$(free_port)
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres >"$SCRATCH/initdb.log" 2>&1
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$SCRATCH/pg.log" -w \
        -o "-k $socket -p $PG_PORT -c listen_addresses=127.0.0.1 -c max_connections=$((CLIENTS + 10))" \
        start >/dev/null
    PG_CONNECT=(-h 127.0.0.1 -p "$PG_PORT" -U postgres)
    psql "${PG_CONNECT[@]}" -q -v ON_ERROR_STOP=1 postgres >/dev/null <<SQL
CREATE TABLE coins (id bigint PRIMARY KEY, owner int NOT NULL, hops int NOT NULL);
CREATE TABLE trail (coin bigint NOT NULL, hop int NOT NULL, payer int NOT NULL, payee int NOT NULL,
                    amount bigint NOT NULL, at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (coin, hop));
INSERT INTO coins SELECT g, 1 + (random() * ($WALLETS - 1))::int, 1
    FROM generate_series(1, $((CLIENTS * COINS_PER_CLIENT))) g;
VACUUM ANALYZE;
SQL
    cat >"$SCRATCH/transfer.sql" <<SQL
\set coin random(1, $((CLIENTS * COINS_PER_CLIENT)))
\set payee random(1, $WALLETS)
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT owner AS payer, hops AS hop FROM coins WHERE id = :coin \gset
UPDATE coins SET owner = :payee, hops = hops + 1 WHERE id = :coin AND owner = :payer;
INSERT INTO trail (coin, hop, payer, payee, amount) VALUES (:coin, :hop, :payer, :payee, 1);
END;
SQL
    [ "$(id -u)" -ne 0 ] || chown -R nobody "$SCRATCH"
}

pg_round() { # pg_round ROUND [RATE SECONDS]: with a rate, pgbench -R, latency from when due
    local round=$1 dir=$SCRATCH/pgrun-$1 seconds=$PG_SECONDS rate=() lag=0
    if [ $# -eq 3 ]; then rate=(-R "$2"); seconds=$3; lag=1; fi
    mkdir -p "$dir"
    [ "$(id -u)" -ne 0 ] || chown nobody "$dir"
    (cd "$dir" && as_pg pgbench "${PG_CONNECT[@]}" -n -f "$SCRATCH/transfer.sql" -c "$CLIENTS" -j 2 \
        -T "$seconds" "${rate[@]}" --protocol=prepared --max-tries=10 -l --log-prefix=tx postgres) \
        >"$dir/pgbench.out" 2>&1 || { cat "$dir/pgbench.out" >&2; exit 1; }
    local tps p50 p99
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$dir/pgbench.out" | head -1)
    # Per-transaction log: column 3 is the latency in microseconds; with -R,
    # column 7 the schedule lag (the wait past when it was due).
    cat "$dir"/tx.* | awk -v lag=$lag '{print $3 + (lag ? $7 : 0)}' | sort -n >"$dir/latencies"
    p50=$(awk -v n="$(wc -l <"$dir/latencies")" 'NR==int(n*0.50)+1 {printf "%.2f", $1/1000; exit}' "$dir/latencies")
    p99=$(awk -v n="$(wc -l <"$dir/latencies")" 'NR==int(n*0.99)+1 {printf "%.2f", $1/1000; exit}' "$dir/latencies")
    printf '{"transfers_per_s":%s,"p50_ms":%s,"p99_ms":%s}\n' "$tps" "${p50:-0}" "${p99:-0}"
}

echo "ledger benchmark: $CLIENTS clients, batches of $BATCH, $WALLETS wallets, $WORKERS workers, $ROUNDS rounds"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
[ $PG_OK -eq 0 ] || pg_setup
: >"$SCRATCH/ledger.tps"; : >"$SCRATCH/ledger.p50"; : >"$SCRATCH/ledger.p99"
: >"$SCRATCH/pg.tps"; : >"$SCRATCH/pg.p50"; : >"$SCRATCH/pg.p99"; : >"$SCRATCH/limit"
for round in $(seq 1 "$ROUNDS"); do
    limited_round "$round" "$WORKERS"
    line=$LINE
    echo "round $round ledger:     $line"
    echo "round $round limit:      $LIMIT verifications/s on $WORKERS threads (before and after)"
    echo "$LIMIT" >>"$SCRATCH/limit"
    echo "$line" | json_field transfers_per_s >>"$SCRATCH/ledger.tps"
    echo "$line" | json_field p50_ms >>"$SCRATCH/ledger.p50"
    echo "$line" | json_field p99_ms >>"$SCRATCH/ledger.p99"
    if [ $PG_OK -eq 1 ]; then
        line=$(pg_round "$round")
        echo "round $round postgresql: $line"
        echo "$line" | json_field transfers_per_s >>"$SCRATCH/pg.tps"
        echo "$line" | json_field p50_ms >>"$SCRATCH/pg.p50"
        echo "$line" | json_field p99_ms >>"$SCRATCH/pg.p99"
    fi
done
for workers in 1 2; do
    : >"$SCRATCH/sweep-$workers.tps"; : >"$SCRATCH/sweep-$workers.limit"
    for round in $(seq 1 "$SWEEP_ROUNDS"); do
        limited_round "sweep$round" "$workers"
        echo "sweep $workers worker(s) round $round: $LINE; limit $LIMIT/s"
        echo "$LINE" | json_field transfers_per_s >>"$SCRATCH/sweep-$workers.tps"
        echo "$LIMIT" >>"$SCRATCH/sweep-$workers.limit"
    done
done
ledger_tps=$(median <"$SCRATCH/ledger.tps")
limit_tps=$(median <"$SCRATCH/limit")
# Latency against offered load: fixed-rate clients at 25%, 50% and 90% of
# the ledger's peak (the median above), the ledger and PostgreSQL at the
# same rates (pgbench -R); each latency counts from when it was due.
: >"$SCRATCH/rates"
for percent in $RATE_PERCENTS; do
    rate=$(awk -v p="$ledger_tps" -v f="$percent" 'BEGIN {printf "%.0f", p * f / 100}')
    line=$(ledger_round "rate$percent" "$WORKERS" --rate "$rate" --seconds "$RATE_SECONDS")
    echo "rate $percent% ($rate/s) ledger:     $line"
    pg='{"transfers_per_s":0,"p50_ms":0,"p99_ms":0}'
    [ $PG_OK -eq 0 ] || pg=$(pg_round "rate$percent" "$rate" "$RATE_SECONDS")
    echo "rate $percent% ($rate/s) postgresql: $pg"
    echo "$percent $rate $(echo "$line" | json_field transfers_per_s) $(echo "$line" | json_field p50_ms)" \
        "$(echo "$line" | json_field p99_ms) $(echo "$pg" | json_field transfers_per_s)" \
        "$(echo "$pg" | json_field p50_ms) $(echo "$pg" | json_field p99_ms)" >>"$SCRATCH/rates"
done
printf '\n%-12s %14s %10s %10s\n' "" "transfers/s" "p50 ms" "p99 ms"
printf '%-12s %14.0f %10s %10s\n' ledger "$ledger_tps" "$(median <"$SCRATCH/ledger.p50")" "$(median <"$SCRATCH/ledger.p99")"
printf '%-12s %14.0f %10s %10s\n' limit "$limit_tps" "-" "-"
if [ $PG_OK -eq 1 ]; then
    pg_tps=$(median <"$SCRATCH/pg.tps")
    printf '%-12s %14.0f %10s %10s\n' postgresql "$pg_tps" "$(median <"$SCRATCH/pg.p50")" "$(median <"$SCRATCH/pg.p99")"
    awk -v a="$ledger_tps" -v b="$pg_tps" 'BEGIN {printf "ratio ledger/postgresql: %.2fx (target 20x)\n", a / b}'
fi
awk -v a="$ledger_tps" -v b="$limit_tps" -v w="$WORKERS" \
    'BEGIN {printf "ratio ledger/limit: %.2f (limit: crypto_sign_verify_detached on %d threads; target 0.9)\n", a / b, w}'
if [ -s "$SCRATCH/rates" ]; then
    printf '\n%-8s %9s | %-26s | %-26s\n' "offered" "rate/s" "ledger: done/s p50 p99 ms" "postgresql: done/s p50 p99 ms"
    while read -r percent rate ltps lp50 lp99 ptps pp50 pp99; do
        printf '%-8s %9s | %8.0f %8s %8s | %8.0f %8s %8s\n' "$percent%" "$rate" "$ltps" "$lp50" "$lp99" \
            "$ptps" "$pp50" "$pp99"
    done <"$SCRATCH/rates"
    echo "target: ledger p99 <= 5 ms at 50% of the peak"
fi
if [ "$SWEEP_ROUNDS" -gt 0 ]; then
    printf '\n%-12s %14s %14s %8s\n' workers "transfers/s" "limit/s" "ratio"
    for workers in 1 2; do
        tps=$(median <"$SCRATCH/sweep-$workers.tps")
        lim=$(median <"$SCRATCH/sweep-$workers.limit")
        awk -v w="$workers" -v a="$tps" -v b="$lim" 'BEGIN {printf "%-12d %14.0f %14.0f %8.2f\n", w, a, b, a / b}'
    done
fi
echo "target: 100000 transfers/s; medians of $ROUNDS rounds ($SWEEP_ROUNDS for the sweep)"
echo "command: BENCH_LEDGER_ROUNDS=$ROUNDS BENCH_LEDGER_CLIENTS=$CLIENTS BENCH_LEDGER_BATCH=$BATCH BENCH_LEDGER_TRANSFERS=$TRANSFERS BENCH_LEDGER_WORKERS=$WORKERS BENCH_LEDGER_SWEEP_ROUNDS=$SWEEP_ROUNDS BENCH_LEDGER_RATE_PERCENTS=\"$RATE_PERCENTS\" BENCH_LEDGER_RATE_SECONDS=$RATE_SECONDS bench/run_ledger.sh $BUILD_DIR"

#!/usr/bin/env bash
# bench/run_econ.sh BUILD_DIR - `kcobra econ` against what an analyst would
# otherwise use, side by side in one run on the same instances:
#
#  - max-flow (value and minimum cut, --no-vertex-cut: the same work as
#    networkx.minimum_cut) and strongly connected components (--no-cycles)
#    on a random money-flow graph of 1,000,000 payments (100,000 accounts,
#    seed 42), against networkx (Debian python3-networkx);
#  - the equilibrium of a 200 buyers x 200 goods Fisher market (seed 7,
#    every utility positive) against CVXOPT (python3-cvxopt) solving the dual
#    Eisenberg-Gale program at its tightest tolerance (1e-12); both KKT
#    residuals are printed (same definitions: docs/econ.md).
#
# Times are medians over rounds: "load+compute" (reading the CSV or JSON and
# building the graph, then the algorithm) and "compute" alone, in wall time
# and in CPU time (user + system: on a shared, busy machine the wall-clock
# ratio swings with the neighbours' load, the CPU-time ratio much less).
# kcobra's come from its --stats line (monotonic clock, getrusage); networkx's
# and CVXOPT's from time.perf_counter, time.process_time and
# resource.getrusage in tests/econ/reference.py. networkx needs about a minute per max-flow round on
# this graph, so its rounds are bounded (ECON_NX_ROUNDS, default 3).
#
# Environment: ECON_ROUNDS (kcobra rounds, default 5), ECON_NX_ROUNDS
# (default 3), ECON_CVXOPT_ROUNDS (default 3), ECON_EDGES (default 1000000),
# ECON_NODES (default 100000). Writes BUILD_DIR/bench-econ.json.
set -euo pipefail

BUILD_DIR=${1:?usage: bench/run_econ.sh BUILD_DIR}
ROUNDS=${ECON_ROUNDS:-5}
NX_ROUNDS=${ECON_NX_ROUNDS:-3}
CVXOPT_ROUNDS=${ECON_CVXOPT_ROUNDS:-3}
EDGES=${ECON_EDGES:-1000000}
NODES=${ECON_NODES:-100000}
PYTHON=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
REFERENCE="$HERE/../tests/econ/reference.py"
KCOBRA="$BUILD_DIR/src/cmd/kcobra"
[ -x "$KCOBRA" ] || KCOBRA="$BUILD_DIR/kcobra"
if [ ! -x "$KCOBRA" ] || ! "$KCOBRA" econ --help >/dev/null 2>&1; then
    echo "run_econ.sh: no kcobra with econ in $BUILD_DIR" >&2
    exit 1
fi
if ! "$PYTHON" -c 'import networkx, cvxopt' 2>/dev/null; then
    echo "run_econ.sh: needs python3-networkx and python3-cvxopt for $PYTHON" >&2
    exit 1
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
GRAPH="$WORK/graph.csv"
MARKET="$WORK/market.json"
SOURCE=n1
SINK=n2
echo "econ benchmark: generating $EDGES payments over $NODES accounts and a 200 x 200 market"
"$PYTHON" "$REFERENCE" gen-graph 42 "$NODES" "$EDGES" "$GRAPH"
"$PYTHON" "$REFERENCE" gen-market 7 200 200 "$MARKET"

# One kcobra run: prints "wall_ms load_ms compute_ms load_cpu_ms compute_cpu_ms peak_rss_kib".
kcobra_round() {
    local started ended stats
    started=$(date +%s%N)
    stats=$("$KCOBRA" econ "$@" --stats --json 2>&1 >"$WORK/out.json" | grep '^kcobra-stats')
    ended=$(date +%s%N)
    echo "$(( (ended - started) / 1000000 )) $(echo "$stats" | sed -E 's/.*load_ms=([0-9.]+) compute_ms=([0-9.]+) load_cpu_ms=([0-9.]+) compute_cpu_ms=([0-9.]+) peak_rss_kib=([0-9]+).*/\1 \2 \3 \4 \5/')"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

run_kcobra() { # name, args...
    local name=$1
    shift
    : >"$WORK/$name.rounds"
    for _ in $(seq "$ROUNDS"); do kcobra_round "$@" >>"$WORK/$name.rounds"; done
}

# Interleaved: each round runs kcobra, then networkx and CVXOPT (each in a
# fresh process, one round), so both sides see the same neighbours' load.
MAX_ROUNDS=$(printf '%s\n' "$ROUNDS" "$NX_ROUNDS" "$CVXOPT_ROUNDS" | sort -n | tail -1)
for name in maxflow maxflow_vertex scc equilibrium; do : >"$WORK/$name.rounds"; done
: >"$WORK/nx.rounds"
: >"$WORK/cvxopt.rounds"
for round in $(seq "$MAX_ROUNDS"); do
    echo "round $round of $MAX_ROUNDS (kcobra $ROUNDS, networkx $NX_ROUNDS at about a minute each, CVXOPT $CVXOPT_ROUNDS)"
    if [ "$round" -le "$ROUNDS" ]; then
        kcobra_round maxflow --edges "$GRAPH" --source "$SOURCE" --sink "$SINK" --no-vertex-cut >>"$WORK/maxflow.rounds"
        FLOW_VALUE=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["value"])' "$WORK/out.json")
        kcobra_round maxflow --edges "$GRAPH" --source "$SOURCE" --sink "$SINK" >>"$WORK/maxflow_vertex.rounds"
        kcobra_round scc --edges "$GRAPH" --no-cycles >>"$WORK/scc.rounds"
        SCC_COUNT=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["components"])' "$WORK/out.json")
        kcobra_round equilibrium --market "$MARKET" >>"$WORK/equilibrium.rounds"
        OUR_KKT=$("$PYTHON" -c 'import json,sys; print("%.2e" % json.load(open(sys.argv[1]))["kkt"]["max"])' "$WORK/out.json")
    fi
    if [ "$round" -le "$NX_ROUNDS" ]; then
        "$PYTHON" "$REFERENCE" bench-graph "$GRAPH" "$SOURCE" "$SINK" 1 >>"$WORK/nx.rounds"
    fi
    if [ "$round" -le "$CVXOPT_ROUNDS" ]; then
        "$PYTHON" "$REFERENCE" bench-market "$MARKET" 1 >>"$WORK/cvxopt.rounds"
    fi
done
# Medians of every figure over the peer's rounds (answers from the last).
"$PYTHON" - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
for name in ("nx", "cvxopt"):
    rows = [json.loads(line) for line in open("%s/%s.rounds" % (work, name))]
    out = dict(rows[-1])
    for key, value in rows[-1].items():
        if isinstance(value, (int, float)) and key not in ("value", "components"):
            values = sorted(row[key] for row in rows)
            out[key] = values[(len(values) - 1) // 2]
    out["rounds"] = len(rows)
    json.dump(out, open("%s/%s.json" % (work, name), "w"))
PY

column() { awk -v k="$2" '{ print $k }' "$WORK/$1.rounds" | median; }
sum_columns() { awk -v a="$2" -v b="$3" '{ print $a + $b }' "$WORK/$1.rounds" | median; }
nx() { "$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, d))' "$WORK/nx.json" "$1"; }
cv() { "$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, d))' "$WORK/cvxopt.json" "$1"; }

NX_LOAD_MS=$(nx 'load_s * 1000')
NX_FLOW_MS=$(nx 'maxflow_s * 1000')
NX_SCC_MS=$(nx 'scc_s * 1000')
NX_LOAD_CPU=$(nx 'load_cpu_s * 1000')
NX_FLOW_CPU=$(nx 'maxflow_cpu_s * 1000')
NX_SCC_CPU=$(nx 'scc_cpu_s * 1000')
NX_VALUE=$(nx 'value')
NX_COMPONENTS=$(nx 'components')
NX_PEAK=$(nx 'peak_rss_kib')
CV_MS=$(cv 'solve_s * 1000')
CV_CPU=$(cv 'solve_cpu_s * 1000')
CV_KKT=$(cv '"%.2e" % kkt["max"]')
CV_PEAK=$(cv 'peak_rss_kib')
add() { awk -v a="$1" -v b="$2" 'BEGIN { print a + b }'; }

row() { # label, ours_ms, theirs_ms, ours_cpu_ms, theirs_cpu_ms
    awk -v l="$1" -v a="$2" -v b="$3" -v c="$4" -v d="$5" 'BEGIN {
        printf "  %-36s %10.1f %12.1f %7.1fx %10.1f %12.1f %7.1fx\n", l, a, b, b / a, c, d, d / c }'
}
header() {
    printf "  %-36s %10s %12s %8s %10s %12s %8s\n" "" "kcobra ms" "$1 ms" "ratio" "kcobra cpu" "$1 cpu" "ratio"
}
echo
echo "kcobra econ vs networkx: $EDGES payments, $NODES accounts (medians; kcobra $ROUNDS rounds, networkx $NX_ROUNDS)"
echo "  wall time, and CPU time (user + system: less disturbed by a busy machine)"
header networkx
row "max-flow + min cut, compute" "$(column maxflow 3)" "$NX_FLOW_MS" "$(column maxflow 5)" "$NX_FLOW_CPU"
row "max-flow + min cut, load+compute" "$(sum_columns maxflow 2 3)" "$(add "$NX_LOAD_MS" "$NX_FLOW_MS")" \
    "$(sum_columns maxflow 4 5)" "$(add "$NX_LOAD_CPU" "$NX_FLOW_CPU")"
row "SCC, compute" "$(column scc 3)" "$NX_SCC_MS" "$(column scc 5)" "$NX_SCC_CPU"
row "SCC, load+compute" "$(sum_columns scc 2 3)" "$(add "$NX_LOAD_MS" "$NX_SCC_MS")" \
    "$(sum_columns scc 4 5)" "$(add "$NX_LOAD_CPU" "$NX_SCC_CPU")"
printf "  %-36s %10.1f %12s %8s %10.1f\n" "max-flow + crucial accounts, compute" "$(column maxflow_vertex 3)" "-" "" "$(column maxflow_vertex 5)"
printf "  %-36s %10s %12s\n" "peak RSS (KiB)" "$(column maxflow_vertex 6)" "$NX_PEAK"
printf "  answers: max-flow %s vs %s, components %s vs %s\n" "$FLOW_VALUE" "$NX_VALUE" "$SCC_COUNT" "$NX_COMPONENTS"
echo
echo "kcobra econ equilibrium vs CVXOPT: 200 buyers x 200 goods (medians; $ROUNDS and $CVXOPT_ROUNDS rounds)"
header "CVXOPT"
row "equilibrium, compute" "$(column equilibrium 3)" "$CV_MS" "$(column equilibrium 5)" "$CV_CPU"
printf "  %-36s %10s %12s\n" "KKT residual (max, relative)" "$OUR_KKT" "$CV_KKT"
printf "  %-36s %10s %12s\n" "peak RSS (KiB)" "$(column equilibrium 6)" "$CV_PEAK"

"$PYTHON" - "$WORK" "$BUILD_DIR/bench-econ.json" <<'PY'
import json, sys
work, out = sys.argv[1], sys.argv[2]
def rounds(name):
    rows = [line.split() for line in open("%s/%s.rounds" % (work, name))]
    return [{"wall_ms": float(r[0]), "load_ms": float(r[1]), "compute_ms": float(r[2]),
             "load_cpu_ms": float(r[3]), "compute_cpu_ms": float(r[4]),
             "peak_rss_kib": int(r[5])} for r in rows]
result = {name: rounds(name) for name in ("maxflow", "maxflow_vertex", "scc", "equilibrium")}
result["networkx"] = [json.loads(line) for line in open(work + "/nx.rounds")]
result["cvxopt"] = [json.loads(line) for line in open(work + "/cvxopt.rounds")]
json.dump(result, open(out, "w"), indent=1)
PY
echo
echo "every run: $BUILD_DIR/bench-econ.json"

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
# building the graph, then the algorithm) and "compute" alone. kcobra's come
# from its --stats line (monotonic clock, getrusage peak RSS); networkx's and
# CVXOPT's from time.perf_counter and resource.getrusage in
# tests/econ/reference.py. networkx needs about a minute per max-flow round on
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

# One kcobra run: prints "wall_ms load_ms compute_ms peak_rss_kib".
kcobra_round() {
    local started ended stats
    started=$(date +%s%N)
    stats=$("$KCOBRA" econ "$@" --stats --json 2>&1 >"$WORK/out.json" | grep '^kcobra-stats')
    ended=$(date +%s%N)
    echo "$(( (ended - started) / 1000000 )) $(echo "$stats" | sed -E 's/.*load_ms=([0-9.]+) compute_ms=([0-9.]+) peak_rss_kib=([0-9]+).*/\1 \2 \3/')"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

run_kcobra() { # name, args...
    local name=$1
    shift
    : >"$WORK/$name.rounds"
    for _ in $(seq "$ROUNDS"); do kcobra_round "$@" >>"$WORK/$name.rounds"; done
}

echo "kcobra: $ROUNDS rounds each"
run_kcobra maxflow maxflow --edges "$GRAPH" --source "$SOURCE" --sink "$SINK" --no-vertex-cut
FLOW_VALUE=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["value"])' "$WORK/out.json")
run_kcobra maxflow_vertex maxflow --edges "$GRAPH" --source "$SOURCE" --sink "$SINK"
run_kcobra scc scc --edges "$GRAPH" --no-cycles
SCC_COUNT=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["components"])' "$WORK/out.json")
run_kcobra equilibrium equilibrium --market "$MARKET"
OUR_KKT=$("$PYTHON" -c 'import json,sys; print("%.2e" % json.load(open(sys.argv[1]))["kkt"]["max"])' "$WORK/out.json")

echo "networkx: $NX_ROUNDS rounds (about a minute each)"
"$PYTHON" "$REFERENCE" bench-graph "$GRAPH" "$SOURCE" "$SINK" "$NX_ROUNDS" >"$WORK/nx.json"
echo "CVXOPT: $CVXOPT_ROUNDS rounds"
"$PYTHON" "$REFERENCE" bench-market "$MARKET" "$CVXOPT_ROUNDS" >"$WORK/cvxopt.json"

column() { awk -v k="$2" '{ print $k }' "$WORK/$1.rounds" | median; }
sum_columns() { awk '{ print $2 + $3 }' "$WORK/$1.rounds" | median; }
nx() { "$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, d))' "$WORK/nx.json" "$1"; }
cv() { "$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, d))' "$WORK/cvxopt.json" "$1"; }

NX_LOAD_MS=$(nx 'load_s * 1000')
NX_FLOW_MS=$(nx 'maxflow_s * 1000')
NX_SCC_MS=$(nx 'scc_s * 1000')
NX_VALUE=$(nx 'value')
NX_COMPONENTS=$(nx 'components')
NX_PEAK=$(nx 'peak_rss_kib')
CV_MS=$(cv 'solve_s * 1000')
CV_KKT=$(cv '"%.2e" % kkt["max"]')
CV_PEAK=$(cv 'peak_rss_kib')

row() { # label, ours_ms, theirs_ms
    awk -v l="$1" -v a="$2" -v b="$3" 'BEGIN { printf "  %-34s %12.1f %12.1f %9.1fx\n", l, a, b, b / a }'
}
echo
echo "kcobra econ vs networkx: $EDGES payments, $NODES accounts (medians; kcobra $ROUNDS rounds, networkx $NX_ROUNDS)"
printf "  %-34s %12s %12s %10s\n" "" "kcobra ms" "networkx ms" "ratio"
row "max-flow + min cut, compute" "$(column maxflow 3)" "$NX_FLOW_MS"
row "max-flow + min cut, load+compute" "$(sum_columns maxflow)" "$(awk -v a="$NX_LOAD_MS" -v b="$NX_FLOW_MS" 'BEGIN { print a + b }')"
row "SCC, compute" "$(column scc 3)" "$NX_SCC_MS"
row "SCC, load+compute" "$(sum_columns scc)" "$(awk -v a="$NX_LOAD_MS" -v b="$NX_SCC_MS" 'BEGIN { print a + b }')"
printf "  %-34s %12.1f %12s\n" "max-flow + crucial accounts, compute" "$(column maxflow_vertex 3)" "-"
printf "  %-34s %12s %12s\n" "peak RSS (KiB)" "$(column maxflow_vertex 4)" "$NX_PEAK"
printf "  answers: max-flow %s vs %s, components %s vs %s\n" "$FLOW_VALUE" "$NX_VALUE" "$SCC_COUNT" "$NX_COMPONENTS"
echo
echo "kcobra econ equilibrium vs CVXOPT: 200 buyers x 200 goods (medians; $ROUNDS and $CVXOPT_ROUNDS rounds)"
printf "  %-34s %12s %12s %10s\n" "" "kcobra ms" "CVXOPT ms" "ratio"
row "equilibrium, compute" "$(column equilibrium 3)" "$CV_MS"
printf "  %-34s %12s %12s\n" "KKT residual (max, relative)" "$OUR_KKT" "$CV_KKT"
printf "  %-34s %12s %12s\n" "peak RSS (KiB)" "$(column equilibrium 4)" "$CV_PEAK"

"$PYTHON" - "$WORK" "$BUILD_DIR/bench-econ.json" <<'PY'
import json, sys
work, out = sys.argv[1], sys.argv[2]
def rounds(name):
    rows = [line.split() for line in open("%s/%s.rounds" % (work, name))]
    return [{"wall_ms": float(r[0]), "load_ms": float(r[1]), "compute_ms": float(r[2]),
             "peak_rss_kib": int(r[3])} for r in rows]
result = {name: rounds(name) for name in ("maxflow", "maxflow_vertex", "scc", "equilibrium")}
result["networkx"] = json.load(open(work + "/nx.json"))
result["cvxopt"] = json.load(open(work + "/cvxopt.json"))
json.dump(result, open(out, "w"), indent=1)
PY
echo
echo "every run: $BUILD_DIR/bench-econ.json"

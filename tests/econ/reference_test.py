#!/usr/bin/python3
"""The reference test: random instances, seeded, solved by `kcobra econ ...
--json` and by independent references (networkx for max-flow value, min-cut
weight, the SCC partition and coreness; CVXOPT for the Eisenberg-Gale
prices), which must agree.

usage: reference_test.py KCOBRA REFERENCE_PY [SEED]
"""
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile

KCOBRA = sys.argv[1]
spec = importlib.util.spec_from_file_location("reference", sys.argv[2])
reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reference)
SEED = int(sys.argv[3]) if len(sys.argv) > 3 else int(os.environ.get("ECON_SEED", "20261121"))
failures = []


def kcobra(*args):
    run = subprocess.run([KCOBRA, "econ", *args, "--json"], capture_output=True, text=True,
                         timeout=120)
    return run.returncode, (json.loads(run.stdout) if run.returncode == 0 else None), run.stderr


def check(condition, what):
    if not condition:
        failures.append(what)
        print("FAIL:", what)


def close(a, b, relative):
    return abs(a - b) <= relative * max(1.0, abs(a), abs(b))


def graph_case(directory, seed, rng):
    nodes = rng.randint(5, 300)
    edges = rng.randint(nodes, 8 * nodes)
    path = os.path.join(directory, "g%d.csv" % seed)
    reference.gen_graph(seed, nodes, edges, path)
    names = sorted({name for pair in reference.load_edges(path) for name in pair})
    source, sink = rng.sample(names, 2)
    label = "graph seed %d (%d nodes, %d edges) %s->%s" % (seed, nodes, edges, source, sink)
    status, ours, stderr = kcobra("maxflow", "--edges", path, "--source", source, "--sink", sink)
    import networkx as nx
    g = reference.graph(path)
    if not nx.has_path(g, source, sink):
        check(status == 1 and "disconnected" in stderr, label + ": disconnected not reported")
    else:
        theirs = reference.maxflow(path, source, sink)
        check(status == 0, label + ": maxflow failed: " + stderr)
        if status == 0:
            check(close(ours["value"], theirs["value"], 1e-9),
                  "%s: max-flow %r vs networkx %r" % (label, ours["value"], theirs["value"]))
            check(close(ours["cut_weight"], theirs["cut_weight"], 1e-9),
                  "%s: min-cut weight %r vs networkx %r" % (label, ours["cut_weight"],
                                                            theirs["cut_weight"]))
            if ours.get("crucial") is not None:
                # removing the crucial accounts must disconnect source from sink
                h = g.copy()
                h.remove_nodes_from(ours["crucial"])
                check(not nx.has_path(h, source, sink), label + ": crucial accounts do not cut")
                # Menger: the minimum size is the local node connectivity
                # (networkx 2.8's minimum_node_cut(g, s, t) returns {} on some
                # directed graphs, so it is not used)
                from networkx.algorithms.connectivity import local_node_connectivity
                check(len(ours["crucial"]) == local_node_connectivity(g, source, sink),
                      label + ": vertex cut not minimum")
    status, ours, stderr = kcobra("scc", "--edges", path)
    theirs = reference.scc(path)
    check(status == 0, label + ": scc failed: " + stderr)
    if status == 0:
        check(ours["components"] == theirs["components"],
              "%s: %d components vs networkx %d" % (label, ours["components"], theirs["components"]))
        mine = sorted(sorted(industry["members"]) for industry in ours["industries"])
        check(mine == theirs["industries"], label + ": SCC partition differs from networkx")
        for industry in ours["industries"]:
            cycle = industry["cycle"]
            check(all(g.has_edge(cycle[k], cycle[(k + 1) % len(cycle)]) for k in range(len(cycle)))
                  and set(cycle) <= set(industry["members"]), label + ": a cycle is not a cycle")
    status, ours, stderr = kcobra("hubs", "--edges", path)
    theirs = reference.cores(path)
    check(status == 0 and ours["coreness"] == theirs["coreness"],
          label + ": coreness differs from networkx")


def market_case(directory, seed, rng, buyers, goods, integer=False):
    density = rng.choice([0.2, 0.5, 1.0])
    path = os.path.join(directory, "m%d.json" % seed)
    reference.gen_market(seed, buyers, goods, path, density, integer)
    label = "market seed %d (%d x %d, density %g%s)" % (seed, buyers, goods, density,
                                                         ", integer" if integer else "")
    status, ours, stderr = kcobra("equilibrium", "--market", path)
    check(status == 0, label + ": equilibrium failed: " + stderr)
    if status != 0:
        return
    # 1. Our prices and allocation satisfy the KKT conditions, measured here
    #    independently of kcobra's own residuals (sufficient for optimality:
    #    the program is convex).
    goods, supplies, budgets, utilities = reference.read_market(path)
    index = {name: k for k, name in enumerate(goods)}
    buyer_index = {"b%d" % i: i for i in range(len(budgets))}
    x = [[0.0] * len(goods) for _ in budgets]
    for cell in ours["allocation"]:
        x[buyer_index[cell["buyer"]]][index[cell["good"]]] = cell["amount"]
    mine = reference.kkt(supplies, budgets, utilities, ours["prices"], x)
    check(mine["max"] <= 1e-9, "%s: KKT residual %.3g (checked in Python)" % (label, mine["max"]))
    check(ours["kkt"]["max"] <= 1e-9, "%s: KKT residual %.3g" % (label, ours["kkt"]["max"]))
    # 2. CVXOPT's prices agree. Equilibrium prices are unique, but at a
    #    degenerate equilibrium (ties, frequent with integer utilities) an
    #    interior point's prices are only as good as the square root of its
    #    residual, so the bound there is that, with 1e-6 as the floor.
    theirs = reference.equilibrium(path)
    if theirs["kkt"]["max"] > 1e-6:
        print("note: %s: CVXOPT stopped at KKT residual %.2g (%s): no price comparison"
              % (label, theirs["kkt"]["max"], theirs["status"]))
        return None
    worst = max(abs(a - b) / b for a, b in zip(ours["prices"], theirs["prices"]))
    bound = max(1e-6, 100 * theirs["kkt"]["max"] ** 0.5) if integer else 1e-6
    check(worst <= bound, "%s: prices differ from CVXOPT by %.3g relative (bound %.2g)"
          % (label, worst, bound))
    return worst, ours["kkt"]["max"], theirs["kkt"]["max"]


def main():
    rng = random.Random(SEED)
    print("seed", SEED, "(ECON_SEED or argv[3] to repeat)")
    with tempfile.TemporaryDirectory() as directory:
        for case in range(12):
            graph_case(directory, SEED + case, rng)
        worst = []
        for case in range(25):
            buyers, goods = rng.randint(1, 14), rng.randint(1, 14)
            result = market_case(directory, SEED + 100 + case, rng, buyers, goods, case % 3 == 0)
            if result:
                worst.append(result)
        result = market_case(directory, SEED + 999, rng, 60, 50)
        if result:
            worst.append(result)
        if worst:
            print("markets: worst price gap to CVXOPT %.2e, worst KKT ours %.2e, CVXOPT %.2e"
                  % tuple(max(w[k] for w in worst) for k in range(3)))
    if failures:
        print(len(failures), "failures")
        sys.exit(1)
    print("all agree")


main()

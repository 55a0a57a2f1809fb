#!/usr/bin/python3
"""Independent references for `kcobra econ`, and the random instances.

Run with Debian's /usr/bin/python3 (networkx and cvxopt are Debian packages).

  reference.py gen-graph SEED NODES EDGES OUT.csv   random money-flow graph
  reference.py gen-market SEED BUYERS GOODS OUT.json [DENSITY]
  reference.py maxflow FILE S T      {"value", "cut_weight"}       networkx
  reference.py scc FILE              {"components", "industries"}  networkx
  reference.py cores FILE            {"coreness": {name: k}}       networkx
  reference.py equilibrium FILE      {"prices", "kkt", ...}        cvxopt
  reference.py bench-graph FILE S T ROUNDS   timings of networkx max-flow and SCC
  reference.py bench-market FILE ROUNDS      timings of cvxopt on the EG dual

Duplicate (from, to) rows are summed and self-payments dropped, as kcobra does.
"""
import csv
import json
import math
import random
import resource
import sys
import time


def load_edges(path, names=None):
    """(from, to) -> summed amount; names, if a set, gets every account,
    also those that only paid themselves (kcobra keeps them as vertices)."""
    sums = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            a, b = row["from"], row["to"]
            if names is not None:
                names.update((a, b))
            if a == b:
                continue
            sums[(a, b)] = sums.get((a, b), 0.0) + float(row["amount"])
    return sums


def graph(path):
    import networkx as nx
    g = nx.DiGraph()
    names = set()
    for (a, b), amount in load_edges(path, names).items():
        g.add_edge(a, b, capacity=amount)
    g.add_nodes_from(names)
    return g


def gen_graph(seed, nodes, edges, out):
    rng = random.Random(seed)
    with open(out, "w") as handle:
        handle.write("from,to,amount\n")
        lines = []
        for _ in range(edges):
            a = rng.randrange(nodes)
            b = rng.randrange(nodes)
            lines.append("n%d,n%d,%d\n" % (a, b, rng.randint(1, 1000)))
        handle.write("".join(lines))


def gen_market(seed, buyers, goods, out, density=1.0, integer=False):
    """integer: small integer utilities, budgets and supplies, so that ties
    (degenerate equilibria, cycles in the support) are common."""
    rng = random.Random(seed)

    def value(low, high):
        return float(rng.randint(1, 3)) if integer else round(rng.uniform(low, high), 6)

    utilities = [[0.0] * goods for _ in range(buyers)]
    for i in range(buyers):
        for j in range(goods):
            if rng.random() < density:
                utilities[i][j] = value(0.1, 10.0)
        utilities[i][rng.randrange(goods)] = value(0.1, 10.0)
    for j in range(goods):
        if all(utilities[i][j] == 0 for i in range(buyers)):
            utilities[rng.randrange(buyers)][j] = value(0.1, 10.0)
    market = {
        "goods": [{"name": "g%d" % j, "supply": value(0.5, 5.0)} for j in range(goods)],
        "buyers": [{"name": "b%d" % i, "budget": value(1.0, 100.0),
                    "utilities": utilities[i]} for i in range(buyers)],
    }
    with open(out, "w") as handle:
        json.dump(market, handle)


def maxflow(path, s, t):
    import networkx as nx
    g = graph(path)
    value, (side_s, side_t) = nx.minimum_cut(g, s, t)
    weight = sum(g[a][b]["capacity"] for a in side_s for b in g[a] if b in side_t)
    return {"value": value, "cut_weight": weight}


def scc(path):
    import networkx as nx
    g = graph(path)
    components = list(nx.strongly_connected_components(g))
    industries = sorted(sorted(c) for c in components if len(c) > 1)
    return {"components": len(components), "industries": industries}


def cores(path):
    import networkx as nx
    g = graph(path)
    return {"coreness": nx.core_number(g)}


def read_market(path):
    with open(path) as handle:
        market = json.load(handle)
    goods = [g["name"] for g in market["goods"]]
    supplies = [float(g.get("supply", 1.0)) for g in market["goods"]]
    budgets = [float(b["budget"]) for b in market["buyers"]]
    utilities = []
    for b in market["buyers"]:
        u = b["utilities"]
        if isinstance(u, dict):
            u = [float(u.get(name, 0.0)) for name in goods]
        utilities.append([float(v) for v in u])
    return goods, supplies, budgets, utilities


def kkt(supplies, budgets, utilities, prices, x):
    n, m = len(budgets), len(supplies)
    supply = max(abs(sum(x[i][j] for i in range(n)) - supplies[j]) / supplies[j] for j in range(m))
    budget = bang = nonneg = 0.0
    for i in range(n):
        alpha = max(utilities[i][j] / prices[j] for j in range(m))
        spent = sum(prices[j] * x[i][j] for j in range(m) if x[i][j] > 0)
        mis = sum(prices[j] * x[i][j] * (1 - utilities[i][j] / prices[j] / alpha)
                  for j in range(m) if x[i][j] > 0)
        budget = max(budget, abs(spent - budgets[i]) / budgets[i])
        bang = max(bang, mis / budgets[i])
        nonneg = max(nonneg, max(-x[i][j] / supplies[j] for j in range(m)))
    return {"supply": supply, "budget": budget, "bang": bang, "nonnegative": max(0.0, nonneg),
            "max": max(supply, budget, bang, nonneg)}


def equilibrium(path, tolerance=1e-12):
    """The dual of Eisenberg-Gale with cvxopt.solvers.cp:
    min sum_j s_j p_j - sum_i B_i log beta_i  s.t.  u_ij beta_i - p_j <= 0."""
    from cvxopt import matrix, spmatrix, solvers, log
    goods, supplies_given, budgets_given, utilities_given = read_market(path)
    n, m = len(budgets_given), len(goods)
    # Conditioning: supplies scaled to 1 (u_ij s_j), budgets to sum 1, each
    # buyer's best utility to 1; prices are mapped back below.
    total = sum(budgets_given)
    budgets = [b / total for b in budgets_given]
    supplies = [1.0] * m
    utilities = []
    for i in range(n):
        row = [utilities_given[i][j] * supplies_given[j] for j in range(m)]
        best = max(row)
        utilities.append([v / best for v in row])
    edges = [(i, j) for i in range(n) for j in range(m) if utilities[i][j] > 0]
    # variables: p_0..p_{m-1}, beta_0..beta_{n-1}
    values, rows, cols = [], [], []
    for k, (i, j) in enumerate(edges):
        values += [utilities[i][j], -1.0]
        rows += [k, k]
        cols += [m + i, j]
    G = spmatrix(values, rows, cols, (len(edges), m + n))
    h = matrix(0.0, (len(edges), 1))
    B = matrix(budgets)

    def F(x=None, z=None):
        if x is None:
            x0 = matrix(0.0, (m + n, 1))
            for i in range(n):
                x0[m + i] = 1.0 / m
            for j in range(m):
                x0[j] = 2.0 / m + 1.0
            return 0, x0
        beta = x[m:]
        if min(beta) <= 0:
            return None
        f = sum(x[j] for j in range(m)) - sum(B[i] * math.log(beta[i]) for i in range(n))
        Df = matrix(0.0, (1, m + n))
        for j in range(m):
            Df[j] = 1.0
        for i in range(n):
            Df[m + i] = -B[i] / beta[i]
        if z is None:
            return f, Df
        H = spmatrix([z[0] * B[i] / beta[i] ** 2 for i in range(n)],
                     list(range(m, m + n)), list(range(m, m + n)), (m + n, m + n))
        return f, Df, H

    solvers.options["show_progress"] = False
    solvers.options["abstol"] = tolerance
    solvers.options["reltol"] = tolerance
    solvers.options["feastol"] = tolerance
    solvers.options["maxiters"] = 200
    solution = solvers.cp(F, G, h)
    prices = [solution["x"][j] * total / supplies_given[j] for j in range(m)]
    z = solution["zl"]
    x = [[0.0] * m for _ in range(n)]
    for k, (i, j) in enumerate(edges):
        x[i][j] = z[k] * supplies_given[j]
    return {"status": solution["status"], "goods": goods, "prices": prices,
            "kkt": kkt(supplies_given, budgets_given, utilities_given, prices, x),
            "iterations": solution.get("iterations")}


def peak_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def bench_graph(path, s, t, rounds):
    """Medians of wall (perf_counter) and CPU (process_time) seconds."""
    import networkx as nx
    out = {"rounds": rounds}
    phases = {"load": [], "maxflow": [], "scc": []}
    cpu = {"load": [], "maxflow": [], "scc": []}
    for _ in range(rounds):
        marks = [(time.perf_counter(), time.process_time())]
        g = graph(path)
        marks.append((time.perf_counter(), time.process_time()))
        value = nx.maximum_flow_value(g, s, t)
        marks.append((time.perf_counter(), time.process_time()))
        count = sum(1 for _ in nx.strongly_connected_components(g))
        marks.append((time.perf_counter(), time.process_time()))
        for k, phase in enumerate(("load", "maxflow", "scc")):
            phases[phase].append(marks[k + 1][0] - marks[k][0])
            cpu[phase].append(marks[k + 1][1] - marks[k][1])
        out["value"], out["components"] = value, count
        del g
    for phase in phases:
        out[phase + "_s"] = median(phases[phase])
        out[phase + "_cpu_s"] = median(cpu[phase])
    out["peak_rss_kib"] = peak_kib()
    return out


def bench_market(path, rounds):
    times, cpu, result = [], [], None
    for _ in range(rounds):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = equilibrium(path, 1e-12)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {"rounds": rounds, "solve_s": median(times), "solve_cpu_s": median(cpu),
            "kkt": result["kkt"], "status": result["status"], "peak_rss_kib": peak_kib()}


def main(argv):
    command = argv[1]
    if command == "gen-graph":
        gen_graph(int(argv[2]), int(argv[3]), int(argv[4]), argv[5])
        return
    if command == "gen-market":
        gen_market(int(argv[2]), int(argv[3]), int(argv[4]), argv[5],
                   float(argv[6]) if len(argv) > 6 else 1.0, len(argv) > 7 and argv[7] == "integer")
        return
    if command == "maxflow":
        out = maxflow(argv[2], argv[3], argv[4])
    elif command == "scc":
        out = scc(argv[2])
    elif command == "cores":
        out = cores(argv[2])
    elif command == "equilibrium":
        out = equilibrium(argv[2])
    elif command == "bench-graph":
        out = bench_graph(argv[2], argv[3], argv[4], int(argv[5]))
    elif command == "bench-market":
        out = bench_market(argv[2], int(argv[3]))
    else:
        sys.exit("unknown command " + command)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv)

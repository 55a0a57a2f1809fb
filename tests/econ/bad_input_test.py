#!/usr/bin/python3
"""Bad input to `kcobra econ`: every case must exit non-zero with a message
naming the problem (and the line, for a malformed file); good input must
give parseable --json and the DOT/SVG files.

usage: bad_input_test.py KCOBRA
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

KCOBRA = sys.argv[1]
failures = []

GRAPH = "from,to,amount\ns,a,10\ns,b,5\na,b,15\na,t,4\nb,t,9\nt,s,3\nx,y,1\n"
MARKET = {"goods": [{"name": "g1"}, {"name": "g2"}],
          "buyers": [{"name": "b1", "budget": 1, "utilities": [2, 1]},
                     {"name": "b2", "budget": 1, "utilities": [1, 2]}]}


def run(*args):
    return subprocess.run([KCOBRA, "econ", *args], capture_output=True, text=True, timeout=60)


def expect(args, status, message, files):
    result = run(*[a.format(**files) for a in args])
    label = "kcobra econ " + " ".join(args)
    if result.returncode != status:
        failures.append("%s: exit %d, expected %d (stderr: %s)"
                        % (label, result.returncode, status, result.stderr.strip()))
    elif message not in result.stderr:
        failures.append("%s: stderr %r lacks %r" % (label, result.stderr.strip(), message))
    return result


def main():
    directory = tempfile.mkdtemp()
    try:
        files = {}

        def write(name, text):
            path = os.path.join(directory, name)
            with open(path, "w") as handle:
                handle.write(text)
            files[name.replace(".", "_")] = path

        write("good.csv", GRAPH)
        write("bad_line.csv", "from,to,amount\na,b,1\na,b,1\na,b,zz\n")
        write("negative.csv", "from,to,amount\na,b,1\na,b,-3\n")
        write("quote.csv", "from,to,amount\n\"a,b,1\n")
        write("header.csv", "payer,payee,amount\na,b,1\n")
        write("bad.json", '{"edges": [\n  {"from": "a", "to": "b", "amount": 1},\n  oops\n]}')
        write("market.json", json.dumps(MARKET))
        nobody = json.loads(json.dumps(MARKET))
        nobody["goods"].append({"name": "junk"})
        for buyer in nobody["buyers"]:
            buyer["utilities"].append(0)
        write("nobody.json", json.dumps(nobody))
        broke = json.loads(json.dumps(MARKET))
        broke["buyers"][0]["budget"] = 0
        write("broke.json", json.dumps(broke))
        write("market_bad.json", '{"goods": [\n{"name": "g"}\n,,]}')
        write("cycle_bom.json", '{"items": {"a": {"cost": 1, "ingredients": {"b": 1}},'
                                '"b": {"cost": 1, "ingredients": {"a": 1}}}}')
        expect(["maxflow", "--edges", "{bad_line_csv}", "--source", "a", "--sink", "b"], 1,
               "line 4: amount 'zz' is not a decimal number", files)
        expect(["scc", "--edges", "{negative_csv}"], 1, "line 3: negative amount -3", files)
        expect(["scc", "--edges", "{quote_csv}"], 1, "line 2: the file ends inside a quoted", files)
        expect(["scc", "--edges", "{header_csv}"], 1, "line 1: the header must name", files)
        expect(["hubs", "--edges", "{bad_json}"], 1, "line 3", files)
        expect(["hubs", "--edges", "/nonexistent/x.csv"], 1, "cannot open /nonexistent/x.csv", files)
        expect(["maxflow", "--edges", "{good_csv}", "--source", "zz", "--sink", "t"], 1,
               "unknown account 'zz' (given as --source)", files)
        expect(["maxflow", "--edges", "{good_csv}", "--source", "s", "--sink", "y"], 1,
               "source and sink are disconnected", files)
        expect(["maxflow", "--edges", "{good_csv}", "--source", "s"], 2, "--sink are required", files)
        expect(["maxflow", "--source", "s", "--sink", "t"], 2, "exactly one of --edges", files)
        expect(["strata", "--edges", "{good_csv}", "--threshold", "lots"], 2,
               "--threshold 'lots' is not a number", files)
        expect(["poverty", "--edges", "{good_csv}", "--epsilon", "50", "--threshold", "5"], 1,
               "infeasible", files)
        expect(["colored", "--edges", "{good_csv}", "--hub", "t", "--rate", "0.1"], 2,
               "needs --source and --sink", files)
        expect(["equilibrium", "--market", "{nobody_json}"], 1, "good 'junk' is wanted by nobody",
               files)
        expect(["equilibrium", "--market", "{broke_json}"], 1, "buyer 'b1' has no budget", files)
        expect(["equilibrium", "--market", "{market_bad_json}"], 1, "line 3", files)
        expect(["value", "--bom", "{cycle_bom_json}", "--item", "a"], 1,
               "cycle: a -> b -> a", files)
        expect(["value", "--bom", "{cycle_bom_json}", "--item", "zz"], 1, "has no item 'zz'", files)
        expect(["nonsense"], 2, "unknown subcommand 'nonsense'", files)
        # good input: --json parses, DOT and SVG are written
        dot = os.path.join(directory, "flow.dot")
        svg = os.path.join(directory, "flow.svg")
        result = run("maxflow", "--edges", files["good_csv"], "--source", "s", "--sink", "t",
                     "--json", "--dot", dot, "--svg", svg)
        if result.returncode != 0 or json.loads(result.stdout)["value"] != 13:
            failures.append("maxflow on good input: " + result.stdout + result.stderr)
        if "n0 -> n1" not in open(dot).read() or "color=red" not in open(dot).read():
            failures.append("the DOT file lacks the highlighted graph")
        if shutil.which("dot") and "<svg" not in open(svg).read():
            failures.append("no SVG written although dot is installed")
        plot = os.path.join(directory, "dynamics.svg")
        result = run("dynamics", "--market", files["market_json"], "--steps", "50", "--json",
                     "--plot", plot)
        if result.returncode != 0 or len(json.loads(result.stdout)["series"]) != 51:
            failures.append("dynamics: " + result.stdout + result.stderr)
        if "<polyline" not in open(plot).read():
            failures.append("the dynamics plot has no series")
        for args in (["--help"], ["maxflow", "--help"], ["equilibrium", "--help"]):
            result = run(*args)
            if result.returncode != 0 or "Usage: kcobra econ" not in result.stdout:
                failures.append("kcobra econ %s: no help" % " ".join(args))
    finally:
        shutil.rmtree(directory)
    for failure in failures:
        print("FAIL:", failure)
    if failures:
        sys.exit(1)
    print("all bad inputs refused clearly")


main()

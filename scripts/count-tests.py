"""Counts test cases from meson's testlog.json (one JSON object a line).

    count-tests.py TESTLOG [RETRYLOG]

cmocka programs print '[  PASSED  ] N test(s).' and '[  FAILED  ] N test(s)';
each such program contributes its own counts. Any other test counts as one
case, passed if meson says OK (SKIP is ignored). A program in RETRYLOG (the
second run of the ones that failed, scripts/run-tests.sh) counts by that run."""
import json
import re
import sys

pass_re = re.compile(r"\[  PASSED  \] (\d+) test")
fail_re = re.compile(r"\[  FAILED  \] (\d+) test")


def load(path):
    tests = {}
    with open(path, encoding="utf-8", errors="replace") as log:
        for line in log:
            line = line.strip()
            if line:
                test = json.loads(line)
                tests[test.get("name")] = test
    return tests


def counts(test):
    result = test.get("result", "")
    if result == "SKIP":
        return 0, 0
    out = (test.get("stdout") or "") + (test.get("stderr") or "")
    p = sum(int(m) for m in pass_re.findall(out))
    f = sum(int(m) for m in fail_re.findall(out))
    if p == 0 and f == 0:
        return (1, 0) if result == "OK" else (0, 1)
    if result != "OK" and f == 0:
        f = 1  # the program crashed or timed out after some passes
    return p, f


tests = load(sys.argv[1])
if len(sys.argv) > 2:
    tests.update(load(sys.argv[2]))
passed = failed = 0
for test in tests.values():
    p, f = counts(test)
    passed += p
    failed += f
print(passed, failed)

"""Counts test cases from meson's testlog.json (one JSON object a line).

cmocka programs print '[  PASSED  ] N test(s).' and '[  FAILED  ] N test(s)';
each such program contributes its own counts. Any other test counts as one
case, passed if meson says OK (or SKIP is ignored)."""
import json
import re
import sys

passed = failed = 0
pass_re = re.compile(r"\[  PASSED  \] (\d+) test")
fail_re = re.compile(r"\[  FAILED  \] (\d+) test")
with open(sys.argv[1], encoding="utf-8", errors="replace") as log:
    for line in log:
        line = line.strip()
        if not line:
            continue
        test = json.loads(line)
        result = test.get("result", "")
        if result == "SKIP":
            continue
        out = (test.get("stdout") or "") + (test.get("stderr") or "")
        p = sum(int(m) for m in pass_re.findall(out))
        f = sum(int(m) for m in fail_re.findall(out))
        if p == 0 and f == 0:
            if result == "OK":
                passed += 1
            else:
                failed += 1
            continue
        if result != "OK" and f == 0:
            f = 1  # the program crashed or timed out after some passes
        passed += p
        failed += f
print(passed, failed)

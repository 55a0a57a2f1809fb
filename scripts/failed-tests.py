"""Prints each failed test from meson's testlog.json with the tail of its
output, so the end of a CI log (often all that is kept) names the failure."""
import json
import sys

TAIL_LINES = 25
with open(sys.argv[1], encoding="utf-8", errors="replace") as log:
    for line in log:
        line = line.strip()
        if not line:
            continue
        test = json.loads(line)
        if test.get("result") in ("OK", "SKIP", "EXPECTEDFAIL"):
            continue
        print(f"FAILED TEST: {test.get('name')} ({test.get('result')}, "
              f"{test.get('duration', 0):.1f} s, exit {test.get('returncode')})")
        out = ((test.get("stdout") or "") + (test.get("stderr") or "")).splitlines()
        for text in out[-TAIL_LINES:]:
            print(f"  | {text}")

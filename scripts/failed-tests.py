"""The failed tests in meson's testlog.json.

    failed-tests.py --names TESTLOG   their names, one a line
    failed-tests.py TESTLOG           each with the tail of its output, so the
                                      end of a CI log (often all that is kept)
                                      says what failed and how"""
import json
import sys

TAIL_LINES = 25
names_only = sys.argv[1] == "--names"
with open(sys.argv[-1], encoding="utf-8", errors="replace") as log:
    for line in log:
        line = line.strip()
        if not line:
            continue
        test = json.loads(line)
        if test.get("result") in ("OK", "SKIP", "EXPECTEDFAIL"):
            continue
        if names_only:
            print(test.get("name").split(" / ")[-1])
            continue
        print(f"FAILED TEST: {test.get('name')} ({test.get('result')}, "
              f"{test.get('duration', 0):.1f} s, exit {test.get('returncode')})")
        out = ((test.get("stdout") or "") + (test.get("stderr") or "")).splitlines()
        for text in out[-TAIL_LINES:]:
            print(f"  | {text}")

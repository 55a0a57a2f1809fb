#!/usr/bin/env bash
# The code as we agreed to write it (../shared/STYLE.md, point 10):
#   clang-format   every tracked .c and .h matches .clang-format
#   cppcheck       src/, tests/, bench/ and fuzz/ clean with the warning and
#                  portability checks (style checks are left to review);
#                  an inline "cppcheck-suppress" names its reason
# Prints each offending file or finding and exits 1; `make format` fixes the
# first kind.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0

unformatted=()
while IFS= read -r file; do
  clang-format --dry-run --Werror "$file" >/dev/null 2>&1 || unformatted+=("$file")
done < <(git ls-files '*.c' '*.h')
if [ ${#unformatted[@]} -gt 0 ]; then
  echo "lint: not clang-formatted (run make format): ${unformatted[*]}"
  status=1
fi

findings=$(cppcheck --quiet --std=c11 -D_GNU_SOURCE -Iinclude -Isrc \
  --enable=warning,portability --inline-suppr -j2 src tests bench fuzz 2>&1 |
  grep -E '^[^ ].*: (error|warning|portability):')
if [ -n "$findings" ]; then
  echo "lint: cppcheck findings:"
  echo "$findings"
  status=1
fi

[ $status -eq 0 ] && echo "lint: clang-format and cppcheck clean"
exit $status

#!/usr/bin/env bash
# scripts/deps.sh's sets (issue 18): `make run` must not install the tests'
# and benchmarks' packages (clang, nats-server, networkx, CVXOPT, ...), and the
# default set that `make test` and .ci/run install must still hold every
# package the tests need, which the run set lacks.
set -euo pipefail
deps=$1
fail() { echo "deps_test: FAIL: $*" >&2; exit 1; }

run=$(bash "$deps" run --list) || fail "deps.sh run --list failed"
test_set=$(bash "$deps" test --list)
bench=$(bash "$deps" bench --list)
grep -q 'set_name=${1:-test}' "$deps" || fail "the default set is not the test set"
for package in clang libclang-rt-14-dev clang-format cppcheck libcmocka-dev nats-server \
    python3-networkx python3-cvxopt nodejs debhelper postgresql; do
  grep -qxF "$package" <<<"$run" && fail "the run set installs $package"
done
for package in gcc meson ninja-build libnats-dev libjansson-dev liblmdb-dev libsodium-dev \
    libigraph-dev libglpk-dev libssl-dev python3; do
  grep -qxF "$package" <<<"$run" || fail "the run set lacks $package"
done
for package in $run clang libcmocka-dev nats-server python3-networkx python3-cvxopt nodejs \
    cppcheck clang-format openssl man-db; do
  grep -qxF "$package" <<<"$test_set" || fail "the test set lacks $package"
done
grep -qxF postgresql <<<"$bench" || fail "the bench set lacks postgresql"
echo "deps_test: run $(wc -l <<<"$run") packages, test $(wc -l <<<"$test_set"), bench $(wc -l <<<"$bench")"

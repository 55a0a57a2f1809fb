#!/usr/bin/env bash
# Installs the Debian packages KingCobra needs, only those that are missing.
# As root it runs apt-get; otherwise it prints the exact line to run.
#
# Sets (issue 18: `make run` installed clang, nats-server, networkx, CVXOPT
# before it could start the broker):
#   scripts/deps.sh run     what building and running kcobrad and kcobra need
#                           (make, make run)
#   scripts/deps.sh [test]  run + everything the tests, lint, fuzzers, man page
#                           checks and make deb need (make test, .ci/run; the
#                           default, so CI installs everything it runs)
#   scripts/deps.sh bench   test + the benchmarks' peers (make bench)
#   scripts/deps.sh SET --list   print the set, install nothing
set -euo pipefail

set_name=${1:-test}
case "$set_name" in
  run|test|bench) ;;
  *) echo "deps: unknown set '$set_name' (run, test or bench)" >&2; exit 2 ;;
esac

packages=(
  gcc make pkg-config meson ninja-build          # build
  libssl-dev                                       # TLS
  libjansson-dev                                   # JSON: CONNECT, monitoring, CLI output
  libnats-dev                                      # the NATS C client (libkingcobra, kcobra)
  liblmdb-dev                                      # ledger state
  libsodium-dev                                    # Ed25519 wallets, coin trail signatures
  libcrypt-dev                                     # bcrypt password hashes (libxcrypt crypt_rn)
  libigraph-dev                                    # money-flow graph algorithms
  libglpk-dev                                      # linear programs (poverty LP)
  graphviz                                         # kcobra econ --svg (dot)
  python3                                          # man pages generated at build (scripts/gen-docs.py)
)
if [ "$set_name" != run ]; then
  packages+=(
    clang libclang-rt-14-dev                       # libFuzzer targets
    clang-format cppcheck                          # scripts/lint.sh (make test)
    openssl                                        # test certificates
    libcmocka-dev                                  # unit tests
    nats-server                                    # the peer for differential tests and bench
    python3-networkx python3-cvxopt                # reference results in econ tests and bench
    nodejs                                         # the nats.js services test (services_js)
    groff-base                                     # man pages rendered by tests/install
    man-db bsdextrautils systemd                   # tests/install: man -l, col, systemd-analyze verify
    debhelper dpkg-dev fakeroot                    # make deb (dpkg-buildpackage)
    chromium                                       # the web console's browser test (console_browser)
  )
  # npm for that test (it installs @nats-io/services under the build dir). A
  # nodejs that bundles npm (e.g. NodeSource's) conflicts with Debian's npm
  # package, so it is asked for only when there is no npm command.
  if ! command -v npm >/dev/null 2>&1; then
    packages+=(npm)
  fi
fi
if [ "$set_name" = bench ]; then
  packages+=(postgresql)                           # the ledger benchmark's peer
fi

# "scripts/deps.sh SET --list": the set's packages, one a line, nothing installed.
if [ "${2:-}" = --list ]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

line="apt-get update && apt-get install -y ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
else
  echo "deps: missing Debian packages; run as root:" >&2
  echo "  sudo sh -c '$line'" >&2
  exit 1
fi

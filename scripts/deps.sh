#!/usr/bin/env bash
# Installs the Debian packages KingCobra needs, only those that are missing.
# As root it runs apt-get; otherwise it prints the exact line to run.
set -euo pipefail

packages=(
  gcc make pkg-config meson ninja-build          # build
  clang libclang-rt-14-dev                         # libFuzzer targets
  clang-format cppcheck                            # scripts/lint.sh (make test)
  libssl-dev openssl                               # TLS (and test certificates)
  libjansson-dev                                   # JSON: CONNECT, monitoring, CLI output
  libnats-dev                                      # the NATS C client (tests, bench, libkingcobra)
  libcmocka-dev                                    # unit tests
  nats-server                                      # the peer for differential tests and bench
  liblmdb-dev                                      # ledger state
  libsodium-dev                                    # Ed25519 wallets, coin trail signatures
  libcrypt-dev                                     # bcrypt password hashes (libxcrypt crypt_rn)
  libigraph-dev                                    # money-flow graph algorithms
  libglpk-dev                                      # linear programs (poverty LP)
  graphviz                                         # kcobra econ --svg (dot)
  python3-networkx python3-cvxopt                  # reference results in econ tests and bench
  nodejs                                           # the nats.js services test (services_js)
  python3 groff-base                               # man pages generated at build (scripts/gen-docs.py)
  man-db bsdextrautils systemd                     # tests/install: man -l, col, systemd-analyze verify
  debhelper dpkg-dev fakeroot                      # make deb (dpkg-buildpackage)
  chromium                                         # the web console's browser test (console_browser)
)
# npm for that test (it installs @nats-io/services under the build dir). A
# nodejs that bundles npm (e.g. NodeSource's) conflicts with Debian's npm
# package, so it is asked for only when there is no npm command.
if ! command -v npm >/dev/null 2>&1; then
  packages+=(npm)
fi
# "scripts/deps.sh bench" also installs the benchmarks' peers.
if [ "${1:-}" = bench ]; then
  packages+=(postgresql)                           # the ledger benchmark's peer
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

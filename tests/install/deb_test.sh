#!/usr/bin/env bash
# deb_test.sh - the Debian package `make deb` built, installed as a user of
# it would get it, but into a fresh directory tree (dpkg -x: no root, no
# chroot, no container): every file in place; the installed kcobrad checks
# the installed configuration (-t); then the installed kcobrad runs (on
# free 127.0.0.1 ports, its data in a temporary directory) and a request
# goes through the installed kcobra, served by the installed kcobra serve;
# its /metrics answers. scripts/make-deb.sh runs it on what it built (not
# part of `make test`: building the package takes minutes).
#   deb_test.sh PACKAGE.deb
set -euo pipefail
deb=$(realpath "${1:?package}")
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "deb_test: FAIL: $*" >&2; [ -f "$work/kcobrad.log" ] && tail -20 "$work/kcobrad.log" >&2; exit 1; }

root=$work/root
dpkg -x "$deb" "$root"
for file in usr/bin/kcobrad usr/bin/kcobra etc/kingcobra/kcobrad.conf \
    usr/lib/systemd/system/kcobrad.service usr/include/kingcobra/kingcobra.h \
    usr/share/man/man1/kcobra.1.gz usr/share/man/man8/kcobrad.8.gz \
    usr/share/bash-completion/completions/kcobra; do
  [ -e "$root/$file" ] || fail "the package lacks /$file"
done
ls "$root"/usr/lib/*/libkingcobra.so.0 "$root"/usr/lib/*/libkingcobra.a \
  "$root"/usr/lib/*/pkgconfig/kingcobra.pc >/dev/null || fail "the package lacks libkingcobra"
"$root/usr/bin/kcobrad" -c "$root/etc/kingcobra/kcobrad.conf" -t >/dev/null 2>&1 ||
  fail "the installed kcobrad refuses the installed configuration"
echo "deb_test: the package unpacks whole; kcobrad -t accepts /etc/kingcobra/kcobrad.conf"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
monitor=$(free_port)
mkdir -p "$work/state"
# The installed configuration, as kcobrad.service starts it; flags move the ports.
(cd "$work/state" && exec "$root/usr/bin/kcobrad" -c "$root/etc/kingcobra/kcobrad.conf" \
  -a 127.0.0.1 -p "$port" -m "$monitor") >"$work/kcobrad.log" 2>&1 &
pids+=($!)
server=nats://127.0.0.1:$port
for _ in $(seq 100); do
  grep -q "Server is ready" "$work/kcobrad.log" && break
  sleep 0.1
done
grep -q "Server is ready" "$work/kcobrad.log" || fail "the installed kcobrad did not start"

"$root/usr/bin/kcobra" serve upper --exec 'tr a-z A-Z' --server "$server" >"$work/serve.log" 2>&1 &
pids+=($!)
answer=""
for _ in $(seq 50); do # until the service has subscribed (bounded)
  answer=$("$root/usr/bin/kcobra" request upper hello --server "$server" --timeout 2s 2>/dev/null) && break
  sleep 0.2
done
[ "$answer" = HELLO ] || fail "a request through the installed kcobra got '$answer'"
echo "deb_test: the installed kcobra requested, the installed kcobra serve answered: $answer"

metrics=$(python3 -c "import urllib.request,sys; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())" \
  "http://127.0.0.1:$monitor/metrics") || fail "no /metrics on the installed kcobrad"
grep -q '^kcobra_broker_in_messages_total [1-9]' <<<"$metrics" || fail "/metrics does not count the request"
echo "deb_test: /metrics of the installed kcobrad counts it"
echo "1 passed, 0 failed"

#!/usr/bin/env bash
# What a client's bad Kc-Notify headers (a subject with spaces, every
# 100 ms) cost another client's durable submits: on kcobrad (its own
# persister) and on nats-server with `kcobra queue serve`, same run.
#   bench/run_deputy.sh BUILD_DIR [SECONDS] [ROUNDS]
# KCOBRAD and KCOBRA override the binaries (e.g. an older build, for the
# figure before a change); the client is always BUILD_DIR's notify_abuse.
set -euo pipefail
build=${1:?build dir}
seconds=${2:-5}
rounds=${3:-3}
kcobrad=${KCOBRAD:-$build/src/cmd/kcobrad}
kcobra=${KCOBRA:-$build/src/cmd/kcobra}
client=$build/bench/notify_abuse
nats_server=$(command -v nats-server || echo /usr/sbin/nats-server)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }

for round in $(seq "$rounds"); do
  p=$(port); mkdir -p "$work/k$round"
  "$kcobrad" -a 127.0.0.1 -p "$p" --data_dir "$work/k$round" >"$work/k$round.log" 2>&1 &
  pids+=($!); wait_port "$p"; sleep 0.5
  echo "kcobrad      round $round: $("$client" "nats://127.0.0.1:$p" "$seconds" 100)"
  kill "${pids[-1]}" 2>/dev/null || true; wait "${pids[-1]}" 2>/dev/null || true

  p=$(port)
  "$nats_server" -a 127.0.0.1 -p "$p" >"$work/n$round.log" 2>&1 &
  pids+=($!); wait_port "$p"
  "$kcobra" queue serve --server "nats://127.0.0.1:$p" --dir "$work/q$round" >"$work/q$round.log" 2>&1 &
  pids+=($!); sleep 1
  echo "nats-server  round $round: $("$client" "nats://127.0.0.1:$p" "$seconds" 100)"
  kill "${pids[-1]}" "${pids[-2]}" 2>/dev/null || true; wait "${pids[-1]}" "${pids[-2]}" 2>/dev/null || true
done

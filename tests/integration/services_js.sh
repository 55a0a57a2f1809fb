#!/usr/bin/env bash
# services_js.sh - the NATS services protocol proved with the real nats.js
# services client (npm @nats-io/services on @nats-io/transport-node; see
# services_js.js for what it checks), against kcobrad with its components
# and against nats-server with the same components as `kcobra <part> serve`;
# a `kcobra serve calc` on each.
#
# The npm packages are installed into WORK/npm (under the build directory)
# on the first run. Skips (exit 77) only when node is not installed, and
# says so; everything else that goes wrong fails.
#
# Usage: services_js.sh KCOBRAD KCOBRA NATS_SERVER|'' WORK SCRIPT_DIR
set -euo pipefail

kcobrad=$1 kcobra=$2 nats_server=$3 work=$4 script_dir=$5
readonly READY_TRIES=150 # x 0.2 s: a server's port

if ! command -v node >/dev/null 2>&1; then
  echo "SKIP services_js: node is not installed (scripts/deps.sh installs nodejs)"
  exit 77
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "FAIL services_js: node is installed but npm is not" >&2
  exit 1
fi

mkdir -p "$work/npm"
if [ ! -d "$work/npm/node_modules/@nats-io/services" ] ||
   [ ! -d "$work/npm/node_modules/@nats-io/transport-node" ]; then
  echo "services_js: npm install @nats-io/services @nats-io/transport-node into $work/npm"
  [ -f "$work/npm/package.json" ] || echo '{"private": true}' > "$work/npm/package.json"
  (cd "$work/npm" && npm install --no-audit --no-fund --loglevel=error \
     @nats-io/services @nats-io/transport-node)
fi
export NODE_PATH="$work/npm/node_modules"

run_dir=$(mktemp -d "$work/run.XXXXXX")
pids=()
stop_all() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; rm -rf "$run_dir"' EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
  local port=$1 try
  for ((try = 0; try < READY_TRIES; try++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "FAIL services_js: nothing listens on $port" >&2
  return 1
}

calc_command='read x; if [ "$x" = fail ]; then echo bad input >&2; exit 3; fi; echo "ok $x"'

# $1: a name for the logs; the server listens on $port.
run_client() {
  local name=$1 url="nats://127.0.0.1:$port"
  "$kcobra" serve calc --exec "$calc_command" --server "$url" 2>>"$run_dir/$name-calc.log" &
  pids+=($!)
  echo "services_js: nats.js against $name"
  local started=$SECONDS
  if ! node "$script_dir/services_js.js" "$url" "$kcobra"; then
    echo "--- logs of $name" >&2
    tail -n 20 "$run_dir"/*.log >&2 || true
    return 1
  fi
  echo "services_js: $name checked in $((SECONDS - started)) s"
  stop_all
}

# kcobrad: its components (keeper and persister by default; ledger, arbiter on).
port=$(free_port)
mkdir -p "$run_dir/kcobrad"
printf 'data_dir: "%s/kcobrad/data"\nledger { enabled: true }\narbiter { enabled: true }\n' \
  "$run_dir" > "$run_dir/kcobrad.conf"
"$kcobrad" -a 127.0.0.1 -p "$port" -c "$run_dir/kcobrad.conf" 2>>"$run_dir/kcobrad.log" &
pids+=($!)
wait_port "$port"
run_client kcobrad

# nats-server: the same components as processes of their own.
if [ -n "$nats_server" ] && [ -x "$nats_server" ]; then
  port=$(free_port)
  "$nats_server" -a 127.0.0.1 -p "$port" 2>>"$run_dir/nats-server.log" &
  pids+=($!)
  wait_port "$port"
  url="nats://127.0.0.1:$port"
  mkdir -p "$run_dir/parts"
  "$kcobra" queue serve --dir "$run_dir/parts/queue" --server "$url" 2>>"$run_dir/queue.log" &
  pids+=($!)
  "$kcobra" ledger serve --dir "$run_dir/parts/ledger" --server "$url" 2>>"$run_dir/ledger.log" &
  pids+=($!)
  "$kcobra" keeper serve --file "$run_dir/parts/suggestions.jsonl" --server "$url" \
    2>>"$run_dir/keeper.log" &
  pids+=($!)
  "$kcobra" arbiter serve --data-dir "$run_dir/parts" --server "$url" 2>>"$run_dir/arbiter.log" &
  pids+=($!)
  run_client nats-server
else
  echo "services_js: no nats-server; checked against kcobrad only"
fi
echo "services_js: passed"

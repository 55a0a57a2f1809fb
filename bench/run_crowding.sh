#!/usr/bin/env bash
# bench/run_crowding.sh BUILD_DIR - one client against the others (150,000
# SUBs on one connection; a subscriber reading at 16 KB/s beside a publisher
# and a fast subscriber): kcobrad against nats-server in the same run, and
# against an older kcobrad when KCOBRAD_BEFORE names one. See
# bench/crowding.py for what is measured. About 1 minute per server (more
# for a kcobrad without the sid index: its 150,000 SUBs take minutes).
#
# Environment: CROWDING_WORKLOADS (default subs,trickle,submit), NATS_SERVER
# (default /usr/sbin/nats-server), KCOBRAD (default
# BUILD_DIR/src/cmd/kcobrad), KCOBRAD_BEFORE (optional), TRICKLE_SECONDS
# (default 25).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
NATS_SERVER=${NATS_SERVER:-/usr/sbin/nats-server}
KCOBRAD=${KCOBRAD:-$1/src/cmd/kcobrad}
[ -x "$NATS_SERVER" ] || { echo "run_crowding.sh: $NATS_SERVER missing" >&2; exit 1; }
[ -x "$KCOBRAD" ] || { echo "run_crowding.sh: $KCOBRAD not built (ninja -C $1)" >&2; exit 1; }
SERVERS=("nats-server=$NATS_SERVER")
if [ -n "${KCOBRAD_BEFORE:-}" ]; then SERVERS+=("kcobrad-before=$KCOBRAD_BEFORE"); fi
SERVERS+=("kcobrad=$KCOBRAD")
exec timeout 1200 python3 "$(dirname "$0")/crowding.py" "${SERVERS[@]}"

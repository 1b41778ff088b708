#!/usr/bin/env bash
# vector_count/1 (durable SQN) with the bundled generator: the closed-loop
# maximum, then an open loop at 70 % of it (latency from the intended send
# time). Server on CPU0 (--cores 1), generator on CPU1.
# Usage: bench/aka_open_loop.sh [subscribers=100000] [seconds=10]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
secs=${2:-10}
. bench/common.sh
need_release
make_work
AUTHPLANE_STORAGE__DURABILITY=${DURABILITY:-sync} AUTHPLANE_STORAGE__COMPACT_WAL_BYTES=${COMPACT_WAL_BYTES:-67108864} taskset -c 0 target/release/authplane serve --cores 1 --listen 127.0.0.1:0 --data-dir "$work/data" > "$work/out" 2>/dev/null &
addr=$(listening_addr "$work/out")
load() { taskset -c 1 target/release/authplane-load --target "$addr" --threads 1 --connections "${CONNS:-64}" --subscribers "$n" "$@"; }
load --scenario hss-provision > /dev/null
max=$(load --scenario aka --duration "${secs}s" --json | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["throughput_per_s"]))')
echo "closed-loop maximum: $max vectors/s"
rate=$((max * 70 / 100))
load --scenario aka --duration "${secs}s" --rate "$rate" --hgrm "${HGRM:-/dev/null}"
# The server's own view of the same runs: from the request parsed to the
# reply written (durable wait included), not counting time in socket queues.
echo "server-side (all vector requests of both runs):"
curl -s "http://$addr/metrics" | grep 'request_duration_seconds{route="GET /auc/aka/vector_count' | sed 's/.*quantile="\([^"]*\)"} \(.*\)/  q\1 \2 s/'

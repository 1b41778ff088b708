#!/usr/bin/env bash
# authplane-load's maximum rate vs. wrk on the same target (/oam/ping),
# alternating in one run: server on CPU0 (--cores 1), the generator under
# test on CPU1, one thread, 64 connections, closed loop.
# Usage: bench/load_vs_wrk.sh [rounds=3] [seconds=10]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
secs=${2:-10}
. bench/common.sh
need_release
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
make_work
taskset -c 0 target/release/authplane serve --cores 1 --listen 127.0.0.1:0 --data-dir "$work/data" > "$work/out" 2>/dev/null &
addr=$(listening_addr "$work/out")
printf "%-18s %12s %12s\n" run req/s p99
for r in $(seq "$rounds"); do
    out=$(taskset -c 1 wrk -t1 -c64 -d"${secs}s" --latency "http://$addr/oam/ping")
    printf "%-18s %12s %12s\n" "wrk r$r" "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" "$(echo "$out" | awk '$1=="99%" {print $2}')"
    json=$(taskset -c 1 target/release/authplane-load --target "$addr" --scenario ping --threads 1 \
        --connections 64 --duration "${secs}s" --warmup 1s --json)
    printf "%-18s %12.0f %9.3fms\n" "authplane-load r$r" \
        "$(echo "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["throughput_per_s"])')" \
        "$(echo "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["latency_us"]["p99"]/1000)')"
done

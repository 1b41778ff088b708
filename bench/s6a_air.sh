#!/usr/bin/env bash
# S6a AIR over Diameter vs. vector_count/1 over HTTP, side by side in one
# run on one server: one core (CPU0), the bundled generator on CPU1, the
# same population (hss-provision), every vector recomputed by the
# generator. Each round runs: REST without KASME (aka), REST with KASME
# (aka-kasme, the work an AIR does), AIR one per round trip, AIR pipelined
# (PIPELINE requests per write, default 16). Reports vectors/s, p50/p99 and
# vectors per second of server CPU time.
# Usage: bench/s6a_air.sh [subscribers=10000] [seconds=10] [rounds=2]
#   CONNS=N      generator connections (default 64)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
secs=${2:-10}
rounds=${3:-2}
. bench/common.sh
need_release
make_work
diameter_server
load() { taskset -c 1 target/release/authplane-load --threads 1 --connections "${CONNS:-64}" --subscribers "$n" "$@"; }
load --target "$addr" --scenario hss-provision > /dev/null
# An S6a AIR needs the subscriber too (enabled, roaming): one per AuC.
hss_subscribers "$addr"
echo "$n subscribers, ${CONNS:-64} connections, ${secs}s each; server CPU0 (--cores 1), generator CPU1"
printf "%-18s %10s %8s %8s %7s %10s %6s\n" run vectors/s p50_us p99_us cpu_s per_cpu_s errors
for r in $(seq "$rounds"); do
    run "rest r$r" "$addr" aka
    run "rest+kasme r$r" "$addr" aka-kasme
    run "air r$r" "$dia" s6a-air
    run "air x${PIPELINE:-16} r$r" "$dia" s6a-air "${PIPELINE:-16}"
done

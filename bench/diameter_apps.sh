#!/usr/bin/env bash
# S6a AIR, Cx MAR and S13 ECR over Diameter side by side in one run on one
# server: one core (CPU0), the bundled generator on CPU1, the same
# population (hss-provision, a subscriber and an IMS subscriber each) and
# EIR_RULES EIR rules (default 10000; every hundredth a regular
# expression). Every vector is recomputed and every Equipment-Status
# checked by the generator. Each ECR names its device's owner, so a pair is
# written to the EIR history when first seen; "ecr new" names a random
# subscriber instead, nearly every check a new pair (a durable write). Each round runs every request one per round
# trip, then pipelined (PIPELINE per write, default 16). Reports answers/s,
# p50/p99 and answers per second of server CPU time.
# Usage: bench/diameter_apps.sh [subscribers=10000] [seconds=10] [rounds=2]
#   CONNS=N      generator connections (default 64)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
secs=${2:-10}
rounds=${3:-2}
rules=${EIR_RULES:-10000}
. bench/common.sh
need_release
make_work
diameter_server
load() { taskset -c 1 target/release/authplane-load --threads 1 --connections "${CONNS:-64}" --subscribers "$n" --eir-rules "$rules" "$@"; }
load --target "$addr" --scenario hss-provision > /dev/null
hss_subscribers "$addr"
load --target "$addr" --scenario ims-provision > /dev/null
load --target "$addr" --scenario eir-provision > /dev/null
echo "$n subscribers, $rules EIR rules, ${CONNS:-64} connections, ${secs}s each; server CPU0 (--cores 1), generator CPU1"
printf "%-18s %10s %8s %8s %7s %10s %6s\n" run answers/s p50_us p99_us cpu_s per_cpu_s errors
p=${PIPELINE:-16}
for r in $(seq "$rounds"); do
    run "s6a air r$r" "$dia" s6a-air
    run "cx mar r$r" "$dia" cx-mar
    run "s13 ecr r$r" "$dia" s13-ecr
    run "s13 ecr new r$r" "$dia" s13-ecr 1 --ecr-new-pairs
    run "s6a air x$p r$r" "$dia" s6a-air "$p"
    run "cx mar x$p r$r" "$dia" cx-mar "$p"
    run "s13 ecr x$p r$r" "$dia" s13-ecr "$p"
done

#!/usr/bin/env bash
# Storage at scale. For each population size: `authplane data generate`
# (time, rate, peak memory, bytes per subscriber), then `authplane serve`
# timed from exec to "listening on" and to its first read of a subscriber,
# with the page cache dropped and warm. Then vector_count/1 per second of
# server CPU on the smallest and the largest population, back to back in
# alternating rounds (each population's files read into the page cache
# first; wrk with a uniform random IMSI per request). Last, compactions of
# the largest population under that load (bench/storage_compaction.sh).
# Usage: [compact_secs=200] bench/storage_startup.sh ["1000000 10000000 100000000"] [cores=2] [seconds=10] [rounds=2]
# 100M takes about 9.2 GB of disk and 2 minutes to generate.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${1:-"1000000 10000000 100000000"}
cores=${2:-2}
secs=${3:-10}
rounds=${4:-2}
bin=target/release/authplane
[ -x "$bin" ] || cargo build --release
. bench/common.sh
make_work
first_imsi=1010000000000

serve() { serve_dir "$1" "$cores"; }

for n in $sizes; do
    echo "== $n subscribers, $cores shards"
    /usr/bin/time -f "generate: %e s wall, peak RSS %M kB" \
        "$bin" data generate "$work/d$n" --subscribers "$n" --cores "$cores"
    du -sb "$work/d$n" | awk -v n="$n" '{printf "on disk: %.0f bytes, %.1f per subscriber\n", $1, $1/n}'
    for run in cold warm; do
        if [ "$run" = cold ]; then
            sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || echo "(cannot drop caches: 'cold' is warm)"
        fi
        start=$(date +%s%N)
        serve "$work/d$n"
        listening=$(date +%s%N)
        imsi=$(printf "%015d" $((first_imsi + n / 2 + 12345)))
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/auc/imsi/$imsi")
        first=$(date +%s%N)
        rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
        printf "%s: listening after %d ms, first read (HTTP %s) after %d ms, RSS %d MiB\n" \
            "$run" $(((listening - start) / 1000000)) "$code" $(((first - start) / 1000000)) $((rss / 1024))
        kill "$pid"; wait "$pid" || true
    done
done

set -- $sizes
small=$1
large=${!#}
[ "$small" = "$large" ] && exit 0
hz=$(getconf CLK_TCK)
# vectors N: vector_count/1 on population N for $secs s.
vectors() {
    local n=$1
    # The same number of distinct subscribers (at most 1M) on every
    # population, spread over all of it: the SQN leases taken per request
    # are then alike, and only the lookups differ.
    cat "$work/d$n"/shard-*/table-*.snap > /dev/null
    serve "$work/d$n"
    vector_lua "$n" "$first_imsi"
    wrk -t1 -c64 -d2s -s "$work/aka.lua" "http://127.0.0.1:$port/" > /dev/null
    local before after out
    before=$(cpu_ticks "$pid")
    out=$(wrk -t1 -c64 -d"${secs}s" --latency -s "$work/aka.lua" "http://127.0.0.1:$port/")
    after=$(cpu_ticks "$pid")
    lag=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^authplane_executor_lag_seconds_max/ {print $2 * 1000}')
    kill "$pid"; wait "$pid" || true
    echo "$out" | awk -v n="$n" -v c="$((after - before))" -v hz="$hz" -v s="$secs" -v lag="$lag" '
        /Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2} /Non-2xx/ {e=$4}
        END {cpu=c/hz; printf "%-12s %10.0f %10s %10s %8.2f %12.0f %8d %10.1f\n", n, r, p50, p99, cpu, (cpu>0 ? r*s/cpu : 0), e, lag}'
}
echo "== vector_count/1 over 1M distinct subscribers spread across the population, durability sync, wrk -t1 -c64 -d${secs}s, server and wrk sharing the CPUs"
printf "%-12s %10s %10s %10s %8s %12s %8s %10s\n" population req/s p50 p99 cpu_s req/cpu_s non2xx max_lag_ms
for r in $(seq "$rounds"); do
    vectors "$small"
    vectors "$large"
done

# The same load on the largest population with compactions due every MiB
# of log: each rewrites a whole shard's snapshot under the load, paced
# (bench/storage_compaction.sh; $compact_secs, default 200 s, lets both
# shards of 100M compact).
kill $(jobs -p) 2>/dev/null || true
bench/storage_compaction.sh "$work/d$large" "$large" "${compact_secs:-200}" "$cores" "$first_imsi"

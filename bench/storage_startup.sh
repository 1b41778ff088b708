#!/usr/bin/env bash
# Storage at scale. For each population size: `authplane data generate`
# (time, rate, peak memory, bytes per subscriber), then `authplane serve`
# timed from exec to "listening on" and to its first read of a subscriber,
# with the page cache dropped and warm. Then vector_count/1 per second of
# server CPU on the smallest and the largest population, back to back in
# alternating rounds (each population's files read into the page cache
# first; wrk with a uniform random IMSI per request).
# Usage: bench/storage_startup.sh ["1000000 10000000 100000000"] [cores=2] [seconds=10] [rounds=2]
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

# serve DIR: starts a server on DIR; sets pid and port.
serve() {
    AUTHPLANE_STORAGE__COMPACT_WAL_BYTES=${compact_at:-67108864} "$bin" serve --cores "$cores" --listen 127.0.0.1:0 --data-dir "$1" > "$work/out" 2> "$work/err" &
    pid=$!
    until grep -q '^listening on' "$work/out" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || { cat "$work/err"; exit 1; }
        sleep 0.002
    done
    port=$(sed -n 's/^listening on 127.0.0.1://p' "$work/out")
}

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
    m=$(( n < 1000000 ? n : 1000000 )); stride=$(( n / m ))
    cat "$work/d$n"/shard-*/table-*.snap > /dev/null
    serve "$work/d$n"
    cat > "$work/aka.lua" <<LUA
math.randomseed(os.time())
request = function()
  local imsi = string.format("%015d", $first_imsi + math.random(0, $m - 1) * $stride)
  return wrk.format("GET", "/auc/aka/vector_count/1/imsi/" .. imsi)
end
LUA
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
# of log: each rewrites a whole shard's snapshot under the load, paced.
echo "== vector_count/1 on $large while shards compact (a compaction due every 1 MiB of log)"
cat "$work/d$large"/shard-*/table-*.snap > /dev/null
snap_bytes=$(du -sb "$work/d$large" | cut -f1)
compact_at=1048576 serve "$work/d$large"
( peak=0; while kill -0 "$pid" 2>/dev/null; do
      b=$(du -sb "$work/d$large" 2>/dev/null | cut -f1); [ "${b:-0}" -gt "$peak" ] && peak=$b
      echo "$peak" > "$work/peak_disk"; sleep 0.5; done ) &
out=$(wrk -t1 -c64 -d"$((secs * 3))s" --latency -s "$work/aka.lua" "http://127.0.0.1:$port/")
lag=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^authplane_executor_lag_seconds_max/ {print $2}')
kill "$pid"; wait "$pid" || true
echo "$out" | awk '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2} END {printf "req/s %.0f, p50 %s, p99 %s\n", r, p50, p99}'
echo "longest executor lag: ${lag}s; compactions finished: $(grep -c 'compaction done' "$work/err" || true), started snapshots $snap_bytes bytes, peak data directory $(cat "$work/peak_disk") bytes"

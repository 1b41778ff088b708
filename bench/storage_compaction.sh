#!/usr/bin/env bash
# Compactions of a large data directory under load: vector_count/1 for
# SECONDS on a server whose shards compact whenever 1 MiB of log has been
# written, so each compaction rewrites a whole shard's snapshot (paced)
# while the requests go on. Prints the load's rate and latency, the longest
# executor lag (and when it grew, with the server's major page faults
# then), each compaction's finish time, and the data directory's peak size
# against its size at the start and its largest snapshot.
# DIR holds N subscribers from FIRST_IMSI up (`data generate` or
# `bench/vendor_csv.py` then `hss import`); it is used in place.
# compact_at=BYTES sets the log size that starts a compaction (1 MiB; a
# size the run never reaches gives the same load without compactions).
# Usage: [compact_at=1048576] bench/storage_compaction.sh DIR N [seconds=180] [cores=2] [first_imsi=1010000000000]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$1
n=$2
secs=${3:-180}
cores=${4:-2}
first_imsi=${5:-1010000000000}
bin=target/release/authplane
[ -x "$bin" ] || cargo build --release
. bench/common.sh
make_work

# The same requests as bench/storage_startup.sh: 1M distinct subscribers
# (at most) spread over the whole population.
vector_lua "$n" "$first_imsi"

cat "$dir"/shard-*/table-*.snap > /dev/null
start_bytes=$(du -sb "$dir" | cut -f1)
largest=$(stat -c %s "$dir"/shard-*/table-*.snap | sort -n | tail -1)
compact_at=${compact_at:-1048576}
serve_dir "$dir" "$cores"
t0=$(date +%s%N)
# Every 0.5 s: the directory's size (its peak kept), the compactions
# finished so far (with the time each was first seen), and the longest
# executor lag so far (each rise noted with the major faults so far).
( peak=0; seen=0; lag_seen=0
  while kill -0 "$pid" 2>/dev/null; do
      lag_now=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^authplane_executor_lag_seconds_max/ {printf "%.1f", $2 * 1000}')
      if [ -n "$lag_now" ] && awk -v a="$lag_now" -v b="$lag_seen" 'BEGIN {exit !(a > b)}'; then
          lag_seen=$lag_now
          echo "lag rose to $lag_now ms by $(( ($(date +%s%N) - t0) / 1000000 )) ms; major faults so far $(awk '{print $12}' "/proc/$pid/stat")" >> "$work/finished"
      fi
      b=$(du -sb "$dir" 2>/dev/null | cut -f1); [ "${b:-0}" -gt "$peak" ] && peak=$b
      echo "$peak" > "$work/peak_disk"
      done_now=$(grep -c 'compaction done' "$work/err" || true)
      while [ "$seen" -lt "$done_now" ]; do
          seen=$((seen + 1))
          echo "compaction $seen finished at $(( ($(date +%s%N) - t0) / 1000000 )) ms" >> "$work/finished"
      done
      sleep 0.5
  done ) &
out=$(wrk -t1 -c64 -d"${secs}s" --latency -s "$work/aka.lua" "http://127.0.0.1:$port/")
lag=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^authplane_executor_lag_seconds_max/ {print $2 * 1000}')
sleep 1
kill "$pid"; wait "$pid" || true
echo "== vector_count/1 on $n subscribers for ${secs}s, a compaction due every $compact_at bytes of log, $cores shards"
echo "$out" | awk '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2} /Non-2xx/ {e=$4}
    END {printf "req/s %.0f, p50 %s, p99 %s, non-2xx %d\n", r, p50, p99, e}'
echo "longest executor lag: ${lag} ms"
cat "$work/finished" 2>/dev/null || echo "no compaction finished"
grep -E 'compaction (failed|done)|cannot remove' "$work/err" | sed 's/^/log: /' | head -20
peak=$(cat "$work/peak_disk")
echo "data directory: $start_bytes bytes at the start, peak $peak (+$((peak - start_bytes))), largest snapshot $largest"

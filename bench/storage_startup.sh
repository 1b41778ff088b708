#!/usr/bin/env bash
# Startup with N synthetic subscribers: generate a data directory, then time
# `authplane serve` from exec to "listening on" and to its first read of a
# subscriber, and report RSS and bytes per subscriber.
# Usage: bench/storage_startup.sh [subscribers=10000000] [cores=2]
# 100M needs about 40 GB of RAM for the generator and ~17 GB of disk.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000000}
cores=${2:-2}
bin=target/release/authplane
[ -x "$bin" ] || cargo build --release
. bench/common.sh
make_work
"$bin" data generate "$work/data" --subscribers "$n" --cores "$cores"
du -sb "$work/data" | awk -v n="$n" '{printf "on disk: %d bytes, %.1f per subscriber\n", $1, $1/n}'
for run in cold warm; do
    if [ "$run" = cold ]; then sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || echo "(cannot drop caches: 'cold' is warm)"; fi
    start=$(date +%s%N)
    "$bin" serve --cores "$cores" --listen 127.0.0.1:0 --data-dir "$work/data" > "$work/out" 2> "$work/err" &
    pid=$!
    until grep -q '^listening on' "$work/out" 2>/dev/null; do sleep 0.005; done
    listening=$(date +%s%N)
    port=$(sed -n 's/^listening on 127.0.0.1://p' "$work/out")
    imsi=$(printf "%015d" $((1010000000000 + n / 2)))
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/auc/imsi/$imsi")
    first=$(date +%s%N)
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    printf "%s: listening after %d ms, first read (HTTP %s) after %d ms, RSS %d MiB\n" \
        "$run" $(((listening - start) / 1000000)) "$code" $(((first - start) / 1000000)) $((rss / 1024))
    kill "$pid"; wait "$pid" || true
done

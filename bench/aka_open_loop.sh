#!/usr/bin/env bash
# vector_count/1 (durable SQN) with the bundled generator: the closed-loop
# maximum, then an open loop at 70 % of it (latency from the intended send
# time). Server on CPU0 (--cores 1), generator on CPU1.
# Usage: bench/aka_open_loop.sh [subscribers=100000] [seconds=10]
#   RUNS=N       open-loop runs at the same rate on the same server (default 1)
#   CONNS=N      generator connections (default 64)
#   HGRM=FILE    the last run's percentile distribution
# Each open-loop run is watched by cyclictest (Debian rt-tests), when it is
# installed: a SCHED_FIFO thread on each CPU wakes every millisecond and
# reports how late it woke. A wake-up late by milliseconds means the machine
# did not run that CPU (a hypervisor descheduling the vCPU, an SMI): every
# process on it, server or generator, stood still for that long.
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
watch=$(command -v cyclictest || true)
# The server's executor-lag buckets (cumulative counts), to take a run's share.
lag_buckets() { curl -s "http://$addr/metrics" | grep '^authplane_executor_lag_seconds_bucket' > "$1"; }
for run in $(seq "${RUNS:-1}"); do
    lag_buckets "$work/lag0"
    [[ ${RUNS:-1} == 1 ]] || echo "open loop, run $run:"
    if [[ -n $watch ]]; then
        # --laptop: leave /dev/cpu_dma_latency (C-states) as it is.
        "$watch" --laptop -m -q -p 90 -i 1000 -t 2 -a 0-1 -D "$((secs + 2))" -h 100000 \
            --json="$work/platform.json" > /dev/null 2>&1 &
        watcher=$!
    fi
    load --scenario aka --duration "${secs}s" --rate "$rate" --hgrm "${HGRM:-/dev/null}"
    lag_buckets "$work/lag1"
    python3 - "$work/lag0" "$work/lag1" <<'PY'
import re, sys
def read(path):
    return {m[1]: int(m[2]) for m in re.finditer(r'le="([^"]+)"} (\d+)', open(path).read())}
a, b = read(sys.argv[1]), read(sys.argv[2])
d = {le: b[le] - a.get(le, 0) for le in b}
total = d.get("+Inf", 0)
over = lambda le: total - d.get(le, 0)
print(f"  server     executor lag: {over('0.003')} of {total} probes over 3 ms, "
      f"{over('0.005')} over 5 ms, {over('0.01')} over 10 ms")
PY
    if [[ -n $watch ]]; then
        wait "$watcher" || true
        python3 - "$work/platform.json" <<'PY'
import json, sys
try:
    threads = json.load(open(sys.argv[1]))["thread"]
except (OSError, ValueError, KeyError):
    sys.exit(0)
for t in threads.values():
    late = sum(c for us, c in t.get("histogram", {}).items() if int(us) > 1000)
    print(f"  platform   CPU{t['cpu']}: wake-up late max {t['max'] / 1000:.3f} ms, "
          f"{late} of {t['cycles']} wake-ups late by over 1 ms")
PY
    fi
done
# The server's own view of the same runs: from the request parsed to the
# reply written (durable wait included), not counting time in socket queues.
metrics=$(curl -s "http://$addr/metrics")
echo "server-side (all vector requests of all runs):"
grep 'request_duration_seconds{route="GET /auc/aka/vector_count' <<<"$metrics" | sed 's/.*quantile="\([^"]*\)"} \(.*\)/  q\1 \2 s/'
grep '^authplane_executor_lag_seconds_max' <<<"$metrics" | sed 's/authplane_executor_lag_seconds_max/  executor lag max (whole life)/; s/$/ s/'

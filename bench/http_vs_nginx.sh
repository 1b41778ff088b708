#!/usr/bin/env bash
# GET /oam/ping on authplane vs. nginx returning the same body, side by side
# in one run. Server pinned to CPU0, wrk to CPU1, keep-alive, 64
# connections; alternating rounds (A B A B ...). Reports raw req/s, p99 and
# requests per second of server CPU time (utime+stime from /proc/PID/stat
# before and after each run), then the same with pipelining depth 16.
#
# Usage: bench/http_vs_nginx.sh [rounds=3] [seconds=10]
# Needs: wrk and nginx (Debian: apt-get install wrk nginx-light), a release
# build (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
secs=${2:-10}
bin=target/release/authplane
[ -x "$bin" ] || cargo build --release
command -v wrk >/dev/null && command -v nginx >/dev/null || {
    echo "needs wrk and nginx: apt-get install wrk nginx-light" >&2
    exit 1
}
. bench/common.sh
make_work
hz=$(getconf CLK_TCK)

# nginx: one worker on CPU0, the same JSON body as /oam/ping.
start_nginx " reuseport;"

# authplane on one core (CPU0).
taskset -c 0 "$bin" serve --cores 1 --listen 127.0.0.1:0 --data-dir "$work/data" > "$work/ap.out" 2> "$work/ap.err" &
apid=$!
for _ in $(seq 100); do grep -q '^listening on' "$work/ap.out" 2>/dev/null && break; sleep 0.1; done
aport=$(sed -n 's/^listening on 127.0.0.1://p' "$work/ap.out")

cat > "$work/pipeline.lua" <<'LUA'
init = function(args)
  local r = {}
  for i = 1, 16 do r[i] = wrk.format(nil, "/oam/ping") end
  req = table.concat(r)
end
request = function() return req end
LUA

# run NAME PID PORT [lua]: prints "name req/s p99_ms cpu_s req_per_cpu_s"
run() {
    local name=$1 pid=$2 port=$3 script=${4:-}
    local before after out rps p99 cpu
    before=$(cpu_ticks "$pid")
    if [ -n "$script" ]; then
        out=$(taskset -c 1 wrk -t1 -c64 -d"${secs}s" --latency -s "$script" "http://127.0.0.1:$port/oam/ping")
    else
        out=$(taskset -c 1 wrk -t1 -c64 -d"${secs}s" --latency "http://127.0.0.1:$port/oam/ping")
    fi
    after=$(cpu_ticks "$pid")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}')
    # wrk reports no per-request latency for pipelined runs.
    if [ -n "$script" ]; then p99=nan; fi
    cpu=$(awk -v a="$after" -v b="$before" -v hz="$hz" 'BEGIN{print (a-b)/hz}')
    awk -v n="$name" -v r="$rps" -v p="$p99" -v c="$cpu" -v s="$secs" \
        'BEGIN{printf "%-22s %12.0f %10s %8.2f %14.0f\n", n, r, p, c, (c>0 ? r*s/c : 0)}'
}

echo "machine: $(nproc) CPUs, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -r)"
echo "wrk -t1 -c64 -d${secs}s, server on CPU0, wrk on CPU1; pipelined rows: depth 16 (wrk counts every pipelined response)"
printf "%-22s %12s %10s %8s %14s\n" "run" "req/s" "p99_ms" "cpu_s" "req/cpu_s"
for r in $(seq "$rounds"); do
    run "nginx r$r" "$npid" "$nport"
    run "authplane r$r" "$apid" "$aport"
done
for r in $(seq "$rounds"); do
    run "nginx pipe16 r$r" "$npid" "$nport" "$work/pipeline.lua"
    run "authplane pipe16 r$r" "$apid" "$aport" "$work/pipeline.lua"
done

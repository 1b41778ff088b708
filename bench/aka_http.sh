#!/usr/bin/env bash
# vector_count/1 with durable SQN vs. /oam/ping, side by side in one run.
# Server: one core (CPU0) on a generated population; wrk on CPU1, keep-alive,
# 64 connections (CONNS=N for another count), a uniform random IMSI per request (Lua). Reports req/s,
# p50/p99 and requests per second of server CPU time.
# Usage: bench/aka_http.sh [subscribers=100000] [seconds=10] [rounds=2] [durability=sync]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
secs=${2:-10}
rounds=${3:-2}
durability=${4:-sync}
bin=target/release/authplane
[ -x "$bin" ] || cargo build --release
. bench/common.sh
make_work
"$bin" data generate "$work/data" --subscribers "$n" --cores 1 >/dev/null
AUTHPLANE_STORAGE__DURABILITY=$durability taskset -c 0 "$bin" serve --cores 1 --listen 127.0.0.1:0 \
    --data-dir "$work/data" > "$work/out" 2> "$work/err" &
pid=$!
until grep -q '^listening on' "$work/out" 2>/dev/null; do sleep 0.05; done
port=$(sed -n 's/^listening on 127.0.0.1://p' "$work/out")
cat > "$work/aka.lua" <<LUA
math.randomseed(os.time())
request = function()
  local imsi = string.format("%015d", 1010000000000 + math.random(0, $n - 1))
  return wrk.format("GET", "/auc/aka/vector_count/1/imsi/" .. imsi)
end
LUA
hz=$(getconf CLK_TCK)
run() {
    local name=$1 path=$2 script=${3:-}
    local before after out
    before=$(cpu_ticks "$pid")
    if [ -n "$script" ]; then
        out=$(taskset -c 1 wrk -t1 -c"${CONNS:-64}" -d"${secs}s" --latency -s "$script" "http://127.0.0.1:$port$path")
    else
        out=$(taskset -c 1 wrk -t1 -c"${CONNS:-64}" -d"${secs}s" --latency "http://127.0.0.1:$port$path")
    fi
    after=$(cpu_ticks "$pid")
    local rps p50 p99 errs
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    errs=$(echo "$out" | awk '/Non-2xx/ {print $4}')
    awk -v n="$name" -v r="$rps" -v a="$p50" -v b="$p99" -v c="$(( after - before ))" -v hz="$hz" -v s="$secs" -v e="${errs:-0}" \
        'BEGIN{cpu=c/hz; printf "%-16s %10.0f %10s %10s %8.2f %12.0f %8s\n", n, r, a, b, cpu, (cpu>0 ? r*s/cpu : 0), e}'
}
echo "$n subscribers, durability=$durability, wrk -t1 -c"${CONNS:-64}" -d${secs}s, server CPU0, wrk CPU1"
printf "%-16s %10s %10s %10s %8s %12s %8s\n" run req/s p50 p99 cpu_s req/cpu_s non2xx
for r in $(seq "$rounds"); do
    run "ping r$r" /oam/ping
    run "vector r$r" /auc/aka/vector_count/1/imsi/x "$work/aka.lua"
done

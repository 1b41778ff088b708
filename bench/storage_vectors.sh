#!/usr/bin/env bash
# vector_count/1 per server-CPU-second on 1M and 100M generated subscribers,
# the same 1M distinct ones on both (spread over 100M with a stride of
# 100): measured after a 2 s warm-up ("short") and again after 60 s more
# ("long", most AuCs then hold a standing SQN lease), with the minor page
# faults of the server in each 10 s window (/proc/PID/stat). Server
# --cores 2 and wrk -t1 -c64 share the two CPUs; durability sync.
# Usage: bench/storage_vectors.sh (about 5 minutes and 9.3 GB of disk)
set -u
cd "$(dirname "$0")/.."
bin=target/release/authplane
[ -x "$bin" ] || cargo build --release
w=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$w"' EXIT
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' /proc/$1/stat; }
for n in 1000000 100000000; do
  rm -rf $w/v$n; $bin data generate $w/v$n --subscribers $n --cores 2 >/dev/null
  cat $w/v$n/shard-*/*.snap > /dev/null
  $bin serve --cores 2 --listen 127.0.0.1:0 --data-dir $w/v$n > $w/out 2>$w/err & pid=$!
  until grep -q '^listening on' $w/out 2>/dev/null; do sleep 0.01; done
  port=$(sed -n 's/^listening on 127.0.0.1://p' $w/out)
  m=1000000; stride=$((n / m))
  cat > $w/v.lua <<LUA
math.randomseed(os.time())
request = function()
  local imsi = string.format("%015d", 1010000000000 + math.random(0, $m - 1) * $stride)
  return wrk.format("GET", "/auc/aka/vector_count/1/imsi/" .. imsi)
end
LUA
  wrk -t1 -c64 -d2s -s $w/v.lua http://127.0.0.1:$port/ > /dev/null
  for phase in short long; do
    if [ $phase = long ]; then wrk -t1 -c64 -d60s -s $w/v.lua http://127.0.0.1:$port/ > /dev/null; fi
    f0=$(awk '{print $10}' /proc/$pid/stat); b=$(ticks $pid)
    r=$(wrk -t1 -c64 -d10s -s $w/v.lua http://127.0.0.1:$port/ | awk '/Requests\/sec/ {print $2}')
    f1=$(awk '{print $10}' /proc/$pid/stat); a=$(ticks $pid)
    awk -v n=$n -v p=$phase -v r=$r -v c=$((a - b)) -v hz=$hz -v f=$((f1 - f0)) \
      'BEGIN {cpu=c/hz; printf "%-10s %-6s req/s %.0f  cpu %.2f s  req/cpu-s %.0f  minor faults %d (%.2f per request)\n", n, p, r, cpu, r*10/cpu, f, f/(r*10)}'
  done
  kill $pid; wait $pid 2>/dev/null
  rm -rf $w/v$n
done

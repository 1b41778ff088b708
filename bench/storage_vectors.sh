#!/usr/bin/env bash
# vector_count/1 per server-CPU-second on 1M and 100M generated subscribers,
# the same 1M distinct ones on both (spread over 100M with a stride of
# 100): measured after a 2 s warm-up ("short") and again after 60 s more
# ("long", most AuCs then hold a standing SQN lease), with the minor page
# faults of the server in each 10 s window (/proc/PID/stat). Then 100M
# again with its first 1M IMSIs as the requests' subscribers ("first"):
# the population the same, the memory the requests touch that of 1M.
# Server --cores 2 and wrk -t1 -c64 share the two CPUs; durability sync.
# Usage: bench/storage_vectors.sh (about 7 minutes and 9.3 GB of disk)
set -u
cd "$(dirname "$0")/.."
bin=target/release/authplane
[ -x "$bin" ] || cargo build --release
. bench/common.sh
make_work
w=$work
hz=$(getconf CLK_TCK)
for case in 1000000:spread 100000000:spread 100000000:first; do
  n=${case%%:*}; spread=${case#*:}
  [ -d $w/v$n ] || $bin data generate $w/v$n --subscribers $n --cores 2 >/dev/null
  cat $w/v$n/shard-*/*.snap > /dev/null
  serve_dir $w/v$n 2
  if [ $spread = first ]; then vector_lua $n 1010000000000 1; else vector_lua $n 1010000000000; fi
  wrk -t1 -c64 -d2s -s $w/aka.lua http://127.0.0.1:$port/ > /dev/null
  for phase in short long; do
    if [ $phase = long ]; then wrk -t1 -c64 -d60s -s $w/aka.lua http://127.0.0.1:$port/ > /dev/null; fi
    f0=$(awk '{print $10}' /proc/$pid/stat); b=$(cpu_ticks $pid)
    r=$(wrk -t1 -c64 -d10s -s $w/aka.lua http://127.0.0.1:$port/ | awk '/Requests\/sec/ {print $2}')
    f1=$(awk '{print $10}' /proc/$pid/stat); a=$(cpu_ticks $pid)
    awk -v n=$n -v p=$phase -v r=$r -v c=$((a - b)) -v hz=$hz -v f=$((f1 - f0)) \
      -v s=$spread 'BEGIN {cpu=c/hz; printf "%-10s %-6s %-6s req/s %.0f  cpu %.2f s  req/cpu-s %.0f  minor faults %d (%.2f per request)\n", n, s, p, r, cpu, r*10/cpu, f, f/(r*10)}'
  done
  kill $pid; wait $pid 2>/dev/null
  [ $case = 100000000:spread ] || rm -rf $w/v$n
done

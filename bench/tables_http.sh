#!/usr/bin/env bash
# Table reads and writes and vectors per second of server CPU, each next to
# /oam/ping, and vector_count/1 against another build in the same run
# (A B A B). Servers: one core each, on CPU0; wrk on CPU1, keep-alive, 64
# connections. Rows: GET /subscriber/imsi/{imsi} (a random provisioned
# subscriber, with its attribute), GET /ims_subscriber/ims_subscriber_imsi/
# {imsi}, GET /pcrf/{charging_rule_id} (with its TFTs), GET /tft/{id},
# PUT /subscriber/ (a new subscriber each, durable before the answer),
# vector_count/1 (a random generated IMSI).
# Usage: bench/tables_http.sh [OTHER_BINARY] [subscribers=100000] [seconds=10] [rounds=2]
set -euo pipefail
cd "$(dirname "$0")/.."
other=${1:-}
n=${2:-100000}
secs=${3:-10}
rounds=${4:-2}
. bench/common.sh
need_release
make_work
hz=$(getconf CLK_TCK)
provisioned=2000

# start NAME BINARY: a server on a generated population; sets port_NAME, pid_NAME.
start() {
    local name=$1 bin=$2
    "$bin" data generate "$work/$name" --subscribers "$n" --cores 1 >/dev/null
    taskset -c 0 "$bin" serve --cores 1 --listen 127.0.0.1:0 --data-dir "$work/$name" \
        > "$work/$name.out" 2> "$work/$name.err" &
    eval "pid_$name=$!"
    local addr
    addr=$(listening_addr "$work/$name.out")
    eval "port_$name=${addr##*:}"
}

# provision PORT: one APN, one TFT and $provisioned subscribers (AuC 1).
provision() {
    python3 - "$1" "$provisioned" <<'PY'
import http.client, json, sys
port, m = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port)
def put(path, body):
    c.request("PUT", path, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse(); data = r.read()
    assert r.status == 200, (path, r.status, data)
    return json.loads(data)
apn = put("/apn/", {"apn": "internet", "apn_ambr_dl": 1, "apn_ambr_ul": 1})["apn_id"]
put("/tft/", {"tft_group_id": 1, "tft_string": "permit out ip from any to any", "direction": 1})
put("/tft/", {"tft_group_id": 1, "tft_string": "permit out ip from any to any", "direction": 2})
put("/charging_rule/", {"rule_name": "voice", "qci": 1, "arp_priority": 5, "arp_preemption_capability": True,
    "arp_preemption_vulnerability": False, "mbr_dl": 128000, "mbr_ul": 128000, "gbr_dl": 128000,
    "gbr_ul": 128000, "tft_group_id": 1, "precedence": 100, "rating_group": 4000})
for i in range(m):
    imsi = "00199%010d" % i
    sub = put("/subscriber/", {"imsi": imsi, "auc_id": 1, "default_apn": apn, "apn_list": str(apn)})
    put("/subscriber_attributes/", {"subscriber_id": sub["subscriber_id"], "key": "tier", "value": "gold"})
    put("/ims_subscriber/", {"imsi": imsi, "msisdn": "4917%08d" % i})
PY
}

cat > "$work/aka.lua" <<LUA
math.randomseed(os.time())
request = function()
  local imsi = string.format("%015d", 1010000000000 + math.random(0, $n - 1))
  return wrk.format("GET", "/auc/aka/vector_count/1/imsi/" .. imsi)
end
LUA
cat > "$work/sub.lua" <<LUA
math.randomseed(os.time())
request = function()
  return wrk.format("GET", string.format("/subscriber/imsi/00199%010d", math.random(0, $provisioned - 1)))
end
LUA

cat > "$work/ims.lua" <<LUA
math.randomseed(os.time())
request = function()
  return wrk.format("GET", string.format("/ims_subscriber/ims_subscriber_imsi/00199%010d", math.random(0, $provisioned - 1)))
end
LUA
# A new subscriber each request (IMSIs 00198...: never provisioned above).
cat > "$work/put.lua" <<LUA
math.randomseed(os.time())
base = math.random(0, 4000) * 1000000
n = 0
request = function()
  n = n + 1
  local body = string.format('{"imsi":"00198%010d","auc_id":1,"default_apn":1,"apn_list":"1"}', base + n)
  return wrk.format("PUT", "/subscriber/", {["Content-Type"] = "application/json"}, body)
end
LUA

# run LABEL PID PORT PATH [SCRIPT]
run() {
    local label=$1 pid=$2 port=$3 path=$4 script=${5:-} before after out
    before=$(cpu_ticks "$pid")
    out=$(taskset -c 1 wrk -t1 -c64 -d"${secs}s" --latency ${script:+-s "$script"} "http://127.0.0.1:$port$path")
    after=$(cpu_ticks "$pid")
    local rps p99 errs
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    errs=$(echo "$out" | awk '/Non-2xx/ {print $4}')
    awk -v n="$label" -v r="$rps" -v b="$p99" -v c="$(( after - before ))" -v hz="$hz" -v s="$secs" -v e="${errs:-0}" \
        'BEGIN{cpu=c/hz; printf "%-22s %10.0f %10s %8.2f %12.0f %8s\n", n, r, b, cpu, (cpu>0 ? r*s/cpu : 0), e}'
}

start new target/release/authplane
provision "$port_new"
[ -n "$other" ] && start old "$other"
echo "$n generated AuCs, $provisioned subscribers; wrk -t1 -c64 -d${secs}s; servers CPU0, wrk CPU1"
printf "%-22s %10s %10s %8s %12s %8s\n" run req/s p99 cpu_s req/cpu_s non2xx
for r in $(seq "$rounds"); do
    run "ping r$r" "$pid_new" "$port_new" /oam/ping
    run "subscriber/imsi r$r" "$pid_new" "$port_new" /subscriber/imsi/x "$work/sub.lua"
    run "ims_subscriber r$r" "$pid_new" "$port_new" /ims_subscriber/x "$work/ims.lua"
    run "pcrf/1 r$r" "$pid_new" "$port_new" /pcrf/1
    run "tft/1 r$r" "$pid_new" "$port_new" /tft/1
    run "PUT subscriber r$r" "$pid_new" "$port_new" /subscriber/ "$work/put.lua"
    run "vector r$r" "$pid_new" "$port_new" /auc/aka/vector_count/1/imsi/x "$work/aka.lua"
    if [ -n "$other" ]; then
        run "other ping r$r" "$pid_old" "$port_old" /oam/ping
        run "other vector r$r" "$pid_old" "$port_old" /auc/aka/vector_count/1/imsi/x "$work/aka.lua"
    fi
done

#!/usr/bin/env bash
# S6a AIR over Diameter vs. vector_count/1 over HTTP, side by side in one
# run on one server: one core (CPU0), the bundled generator on CPU1, the
# same population (hss-provision), every vector recomputed by the
# generator. Each round runs: REST without KASME (aka), REST with KASME
# (aka-kasme, the work an AIR does), AIR one per round trip, AIR pipelined
# (PIPELINE requests per write, default 16). Reports vectors/s, p50/p99 and
# vectors per second of server CPU time.
# Usage: bench/s6a_air.sh [subscribers=10000] [seconds=10] [rounds=2]
#   CONNS=N      generator connections (default 64)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
secs=${2:-10}
rounds=${3:-2}
. bench/common.sh
need_release
make_work
AUTHPLANE_STORAGE__DURABILITY=${DURABILITY:-sync} AUTHPLANE_DIAMETER__LISTEN=127.0.0.1:0 \
    taskset -c 0 target/release/authplane serve --cores 1 --listen 127.0.0.1:0 \
    --data-dir "$work/data" > "$work/out" 2>/dev/null &
pid=$!
addr=$(listening_addr "$work/out")
dia=$(sed -n 's/^diameter listening on //p' "$work/out")
hz=$(getconf CLK_TCK)
load() { taskset -c 1 target/release/authplane-load --threads 1 --connections "${CONNS:-64}" --subscribers "$n" "$@"; }
load --target "$addr" --scenario hss-provision > /dev/null
# An S6a AIR needs the subscriber too (enabled, roaming): one per AuC.
python3 - "$addr" <<'PY'
import http.client, json, sys
c = http.client.HTTPConnection(sys.argv[1])
def call(method, path, body=None):
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    assert r.status == 200, (method, path, r.status, data)
    return json.loads(data)
apn = call("PUT", "/apn/", {"apn": "internet", "apn_ambr_dl": 1, "apn_ambr_ul": 1})["apn_id"]
page = 0
while True:
    aucs = call("GET", f"/auc/list?page={page}&page_size=1000")
    if not aucs:
        break
    for a in aucs:
        call("PUT", "/subscriber/", {"imsi": a["imsi"], "auc_id": a["auc_id"],
                                     "default_apn": apn, "apn_list": str(apn)})
    page += 1
PY
run() {
    local name=$1 target=$2 scenario=$3 pipeline=${4:-1}
    local before after json
    before=$(cpu_ticks "$pid")
    json=$(load --target "$target" --scenario "$scenario" --duration "${secs}s" --pipeline "$pipeline" --json)
    after=$(cpu_ticks "$pid")
    python3 - "$name" "$json" "$(( after - before ))" "$hz" <<'PY'
import json, sys
name, j, ticks, hz = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
cpu = ticks / hz
rate = j["throughput_per_s"]
ok = j.get("ok", 0)
lat = j.get("latency_us", {})
errs = j.get("errors", 0)
print(f"{name:<18} {rate:10.0f} {lat.get('p50', 0):8.0f} {lat.get('p99', 0):8.0f} {cpu:7.2f} {ok / cpu if cpu else 0:10.0f} {errs:6}")
PY
}
echo "$n subscribers, ${CONNS:-64} connections, ${secs}s each; server CPU0 (--cores 1), generator CPU1"
printf "%-18s %10s %8s %8s %7s %10s %6s\n" run vectors/s p50_us p99_us cpu_s per_cpu_s errors
for r in $(seq "$rounds"); do
    run "rest r$r" "$addr" aka
    run "rest+kasme r$r" "$addr" aka-kasme
    run "air r$r" "$dia" s6a-air
    run "air x${PIPELINE:-16} r$r" "$dia" s6a-air "${PIPELINE:-16}"
done

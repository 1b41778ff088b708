#!/usr/bin/env bash
# The AAA per second of server CPU, each next to /oam/ping in one run:
# aaa_authorize (five routes, a reservation held per call, durable) and
# aaa_accounting_stop of those calls (rated, debited once, CDR durable
# before the answer), and an SMS authorized then accounted (sent) the same
# way. The server runs on one core on CPU0 with the spec's
# world (scripts/aaa-seed-world, its customer topped up); authplane-load on
# CPU1, closed loop, 64 keep-alive connections, every answer validated.
# Usage: bench/aaa_http.sh [calls=50000] [ping_seconds=5] [rounds=2]
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-50000}
secs=${2:-5}
rounds=${3:-2}
. bench/common.sh
need_release
make_work
hz=$(getconf CLK_TCK)
taskset -c 0 target/release/authplane serve --cores 1 --listen 127.0.0.1:0 --data-dir "$work/data" \
    > "$work/out" 2> "$work/err" &
pid=$!
addr=$(listening_addr "$work/out")
scripts/aaa-seed-world "http://$addr" >/dev/null
curl -sf -X PUT "http://$addr/aaa/customer/1/balance" \
    -d '{"amount": "100000000", "reason": "load test"}' >/dev/null

# run LABEL ARGS...: one load run; prints LABEL, requests, errors, req/CPU-s.
run() {
    local label=$1; shift
    local before after out n errors
    before=$(cpu_ticks "$pid")
    out=$(taskset -c 1 target/release/authplane-load --target "$addr" --threads 1 "$@" 2>&1)
    after=$(cpu_ticks "$pid")
    n=$(awk '$1 == "requests" {print $4; exit}' <<<"$out")
    errors=$(awk '$1 == "requests" {print $6; exit}' <<<"$out")
    local cpu=$(( after - before ))
    printf '%-16s %9s requests %6s errors %8.0f per server-CPU-s (%s ticks)\n' \
        "$label" "${n:-?}" "${errors:-?}" "$(echo "${n:-0} * $hz / ($cpu + 0.0001)" | bc -l)" "$cpu"
    if [[ ${errors:-1} != 0 ]]; then echo "$out" >&2; fi
}

session=$(curl -sf "http://$addr/aaa_bind" \
    -d 'nas_login=aaatest&nas_password=aaatest&user_name=V6FT9iZj&password=ZxIdeloR&client_remote_ip=12.34.56.78' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["session_id"])')

for r in $(seq "$rounds"); do
    run ping --scenario ping --duration "${secs}s"
    run authorize --scenario aaa-authorize --subscribers "$calls" --aaa-run "$r"
    run accounting --scenario aaa-accounting --subscribers "$calls" --aaa-run "$r"
    run sms-authorize --scenario aaa-sms-authorize --subscribers "$calls" --aaa-session "$session"
    run sms-accounting --scenario aaa-sms-accounting --subscribers "$calls" --aaa-session "$session" --aaa-run "$r"
done

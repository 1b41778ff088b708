#!/usr/bin/env bash
# SIM authentication end to end: HTTP -> server -> pcscd -> vpcd -> the
# virtual USIM (authplane vcard) and back, every answer's RES/CK/IK checked
# by the generator. Reports authentications/s and APDUs per authentication
# (from the server's GET /sim-auth-api/v1/slots counters).
# Server --cores 1 on CPU0; pcscd, cards and authplane-load share CPU1.
# Needs pcscd and vsmartcard-vpcd (scripts/deps test). Starts pcscd if none runs.
# With PYSIM_DIR set to a pysim checkout with a venv holding its server's
# requirements (venv/bin/python), pysim's contrib/sim-rest-server.py is run
# the same way (CPU0, port 8000) for the ratio.
# Usage: [PYSIM_DIR=...] bench/sim_auth.sh [seconds=10] [card delay ms=0]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
delay=${2:-0}
. bench/common.sh
need_release
work=$(mktemp -d)
started_pcscd=
cleanup() {
    kill $(jobs -p) 2>/dev/null || true
    if [[ -n $started_pcscd ]]; then kill "$(tr -d '\0' < /run/pcscd/pcscd.pid)" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
if ! [[ -S /run/pcscd/pcscd.comm ]] || ! python3 -c 'import socket; s=socket.socket(socket.AF_UNIX); s.connect("/run/pcscd/pcscd.comm")' 2>/dev/null; then
    rm -f /run/pcscd/pcscd.comm /run/pcscd/pcscd.pid
    taskset -c 1 pcscd --foreground > "$work/pcscd.log" 2>&1 &
    started_pcscd=1
    sleep 1
fi
# vpcd's first port: Debian's 35963, or 32000 where the test suite's
# pcscd (its reader.conf moved below the ephemeral range) runs.
base=35963
if (exec 3<>/dev/tcp/127.0.0.1/32000) 2>/dev/null; then base=32000; fi
K=841EAD87BC9D974ECA1C167409357601
OPC=3211CACDD64F51C3FD3013ECD9A582A0
for slots in 1 2; do
    for conns in 1 4 16; do
        for ((s = 0; s < slots; s++)); do
            taskset -c 1 target/release/authplane vcard --port $((base + s)) --ki $K --opc $OPC \
                --auth-delay-ms "$delay" 2> /dev/null &
        done
        rm -rf "$work/data"
        AUTHPLANE_SIM__RESCAN_MS=100 taskset -c 0 target/release/authplane serve --cores 1 --listen 127.0.0.1:0 \
            --data-dir "$work/data" > "$work/out" 2>/dev/null &
        pid=$!
        until grep -q '^listening on' "$work/out" 2>/dev/null; do sleep 0.05; done
        addr=$(sed -n 's/^listening on //p' "$work/out")
        until [[ $(curl -s "$addr/sim-auth-api/v1/slots" | grep -o '"card_present":true' | wc -l) -ge $slots ]]; do sleep 0.1; done
        json=$(taskset -c 1 target/release/authplane-load --target "$addr" --scenario sim-auth --sim-slots "$slots" \
            --threads 1 --connections "$conns" --duration "${secs}s" --warmup 1s --json)
        slotjson=$(curl -s "$addr/sim-auth-api/v1/slots")
        python3 -c "
import json,sys
d=json.loads(sys.argv[1]); s=json.loads(sys.argv[2])['slots'][:$slots]
auths=sum(x['authentications'] for x in s); apdus=sum(x['apdus'] for x in s)
print('slots %d, connections %2d: %6.0f auth/s, p50 %.2f ms, p99 %.2f ms, %d errors; %.2f APDUs per authentication over the run (%d APDUs / %d, incl. first-use EF.DIR and SELECT)' % (
  $slots, $conns, d['throughput_per_s'], d['latency_us']['p50']/1000, d['latency_us']['p99']/1000, d['errors'], apdus/max(auths,1), apdus, auths))" "$json" "$slotjson"
        kill "$pid"; wait "$pid" 2>/dev/null || true
        kill $(jobs -p) 2>/dev/null || true
        wait 2>/dev/null || true
        : > "$work/out"
        sleep 1.2 # let vpcd see the cards go before new ones come
    done
done

if [[ -n ${PYSIM_DIR:-} ]]; then
    for conns in 1 4; do
        taskset -c 1 target/release/authplane vcard --port $base --ki $K --opc $OPC --auth-delay-ms "$delay" 2> /dev/null &
        sleep 1.5
        (cd "$PYSIM_DIR" && PYTHONPATH=. exec taskset -c 0 venv/bin/python contrib/sim-rest-server.py -H 127.0.0.1 -p 8000) > "$work/pysim.log" 2>&1 &
        until curl -s -o /dev/null 127.0.0.1:8000/; do sleep 0.1; done
        json=$(taskset -c 1 target/release/authplane-load --target 127.0.0.1:8000 --scenario sim-auth \
            --threads 1 --connections "$conns" --duration "${secs}s" --warmup 1s --json)
        tpdus=$(grep -c "TPDU:" "$work/pysim.log" || true)
        posts=$(grep -c '"POST /sim-auth-api' "$work/pysim.log" || true)
        python3 -c "
import json,sys
d=json.loads(sys.argv[1])
print('pysim sim-rest-server, slots 1, connections %2d: %6.0f auth/s, p50 %.2f ms, p99 %.2f ms, %d errors; %.2f TPDUs per authentication (%d / %d, from its log)' % (
  $conns, d['throughput_per_s'], d['latency_us']['p50']/1000, d['latency_us']['p99']/1000, d['errors'], $tpdus/max($posts,1), $tpdus, $posts))" "$json"
        kill $(jobs -p) 2>/dev/null || true
        wait 2>/dev/null || true
        sleep 1.2
    done
fi

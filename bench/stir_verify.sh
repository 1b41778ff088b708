#!/usr/bin/env bash
# STI-VS end to end over HTTP with the certificate cached: the fixture's
# good-attest-a request again and again (every answer must be
# TN-Validation-Passed), next to `openssl speed ecdsap256` verify in the same
# run. The fixture folder is served on 127.0.0.1:8787 (its x5u) by Python's
# http.server; the server runs on the fixtures' clock.
# Server --cores 1 on CPU0, authplane-load on CPU1, 64 connections.
# Usage: bench/stir_verify.sh [seconds=10]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
. bench/common.sh
need_release
make_work
fx=$PWD/tests/fixtures/stir
python3 -m http.server 8787 --bind 127.0.0.1 --directory "$fx" > /dev/null 2>&1 &
python3 -c "import json; print(json.dumps(json.load(open('$fx/passports.json'))['cases'][0]['verification_request']))" > "$work/req.json"
printf '[stir]\ntrust_roots = "%s/trust/sti-ca-roots.pem"\nintermediates = "%s/trust/intermediates.pem"\ncrls = ["%s/crl/intermediate.crl"]\nallow_http_x5u = true\nfixed_now = 1767225605\n' "$fx" "$fx" "$fx" > "$work/c.toml"
echo "openssl speed ecdsap256 (one core):"
taskset -c 0 openssl speed -seconds 3 ecdsap256 2>/dev/null | tail -1
sleep 0.5
taskset -c 0 target/release/authplane serve --cores 1 --listen 127.0.0.1:0 \
    --config "$work/c.toml" --data-dir "$work/data" > "$work/out" 2>/dev/null &
pid=$!
addr=$(listening_addr "$work/out")
before=$(cpu_ticks "$pid")
json=$(taskset -c 1 target/release/authplane-load --target "$addr" --scenario stir-verify --stir-verify-request "$work/req.json" \
    --threads 1 --connections 64 --duration "${secs}s" --warmup 0s --json)
after=$(cpu_ticks "$pid")
echo "$json" | python3 -c "
import json,sys
d=json.load(sys.stdin); cpu=($after-$before)/$(getconf CLK_TCK); n=d['requests']
print('authplane STI-VS: %d verified, %d errors, %.0f req/s, p50 %.2f ms, p99 %.2f ms; server CPU %.2f s: %.0f verifications per server-CPU-second' % (n, d['errors'], d['throughput_per_s'], d['latency_us']['p50']/1000, d['latency_us']['p99']/1000, cpu, n/cpu))"

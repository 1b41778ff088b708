#!/usr/bin/env bash
# STI-AS signing end to end over HTTP (every token verified by the
# generator), per backend, next to `openssl speed ecdsap256` in the same run.
# Server --cores 1 on CPU0, authplane-load on CPU1, 64 connections.
# With VERIFY_EVERY=N the generator checks every N-th signature only (all
# claims still), so that it can outrun the server.
# Usage: [VERIFY_EVERY=N] bench/stir_sign.sh [seconds=10]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
. bench/common.sh
need_release
make_work
fx=$PWD/tests/fixtures/stir
printf '[stir]\n[[stir.credentials]]\nkey = "%s/keys/sp-key.pem"\nx5u = "http://127.0.0.1:8787/certs/sp.pem"\n' "$fx" > "$work/c.toml"
echo "openssl speed ecdsap256 (one core, digest only):"
taskset -c 0 openssl speed -seconds 3 ecdsap256 2>/dev/null | tail -1
for backend in ping aws_lc ring p256; do
    rm -rf "$work/data"
    AUTHPLANE_STIR__BACKEND=${backend/ping/aws_lc} taskset -c 0 target/release/authplane serve --cores 1 --listen 127.0.0.1:0 \
        --config "$work/c.toml" --data-dir "$work/data" > "$work/out" 2>/dev/null &
    pid=$!
    addr=$(listening_addr "$work/out")
    echo "$backend:"
    before=$(cpu_ticks "$pid")
    scenario=stir-sign
    [[ $backend == ping ]] && scenario=ping
    json=$(taskset -c 1 target/release/authplane-load --target "$addr" --scenario "$scenario" --stir-cert "$fx/certs/sp.pem" --stir-verify-every "${VERIFY_EVERY:-1}" \
        --threads 1 --connections 64 --duration "${secs}s" --warmup 0s --json)
    after=$(cpu_ticks "$pid")
    echo "$json" | python3 -c "
import json,sys
d=json.load(sys.stdin); cpu=($after-$before)/$(getconf CLK_TCK); n=d['requests']
print('  %d answered, %d errors, %.0f req/s, p99 %.2f ms; server CPU %.2f s: %.0f per server-CPU-second (%.1f us each)' % (n, d['errors'], d['throughput_per_s'], d['latency_us']['p99']/1000, cpu, n/cpu, cpu/n*1e6))"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    : > "$work/out"
done

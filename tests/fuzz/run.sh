#!/usr/bin/env bash
# Fuzzes authplane's decoders: each target for N seconds (default 60), or
# until R runs (RUNS=R). Usage: tests/fuzz/run.sh [SECONDS] [TARGET...]
# Targets: http1 (the HTTP/1.1 codec), storage (log records, batches, log
# and snapshot headers), rows (stored AuC records and JSON table rows),
# wire (form parameters, JSON bodies, APDU answers, Identity headers, x5u
# URLs, TNAuthList), aaa (Cisco times, call legs, amounts, CIDRs, SMS
# parts, and the credit-time bound), diameter (framing, AVPs at every level, the
# RFC 6733 check and the answer to its fault), x5u (PEM chains and CRLs as
# x5u URLs and distribution points answer them, validated against the test
# PKI), bodies (JSON request bodies applied to every table's rows). Seeds are committed in seeds/TARGET; what the fuzzer
# finds goes to ../../target/fuzz-corpus/TARGET.
# Needs cargo-fuzz (`cargo install cargo-fuzz`); the toolchain here is
# stable, so RUSTC_BOOTSTRAP enables the sanitizer flags cargo-fuzz uses.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(http1 storage rows wire aaa diameter x5u bodies)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
for t in "${targets[@]}"; do
    work=../../target/fuzz-corpus/$t
    mkdir -p "$work"
    limit=(-max_total_time="$secs")
    [[ -n ${RUNS:-} ]] && limit=(-runs="$RUNS")
    echo "== $t"
    log=$work.log
    status=0
    RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir . "$t" "$work" "seeds/$t" -- \
        "${limit[@]}" -max_len=4096 -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$log" || true
    if ((status)); then
        grep -E 'panicked|SUMMARY|Test unit written' "$log" || tail -20 "$log"
        echo "$t: FAILED (log: tests/fuzz/$log)"
        failed=1
    fi
done
exit "${failed:-0}"

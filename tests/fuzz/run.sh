#!/usr/bin/env bash
# Fuzzes the HTTP/1.1 codec (target `http1`) for N seconds (default 60).
# Needs cargo-fuzz (`cargo install cargo-fuzz`); the toolchain here is
# stable, so RUSTC_BOOTSTRAP enables the sanitizer flags cargo-fuzz uses.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
mkdir -p corpus/http1
printf 'GET /oam/ping HTTP/1.1\r\nHost: x\r\n\r\n' > corpus/http1/seed-ping
printf 'POST /aaa_authorize.php?x=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nuser\r\n0\r\n\r\n' > corpus/http1/seed-chunked
printf 'PUT /auc/ HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}GET / HTTP/1.0\r\n\r\n' > corpus/http1/seed-pipelined
RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir . http1 corpus/http1 -- -max_total_time="$secs" -max_len=2048

#!/usr/bin/env bash
# `authplane aaa import-rates` on a generated rate deck of N prefixes (one
# tariff), into a fresh data directory, then the same file again (nothing
# changes). Usage: bench/aaa_import.sh [rates=1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
. bench/common.sh
need_release
make_work
target/release/authplane serve --cores 1 --listen 127.0.0.1:0 --data-dir "$work/data" \
    > "$work/out" 2> "$work/err" &
pid=$!
addr=$(listening_addr "$work/out")
curl -sf -X PUT "http://$addr/aaa/tariff" -d '{"name": "deck", "service": "voice"}' >/dev/null
kill -TERM "$pid"
wait "$pid" || true
python3 - "$n" > "$work/deck.csv" <<'PY'
import sys
n = int(sys.argv[1])
print("i_tariff,prefix,price_1,price_n,interval_1,interval_n,connect_fee")
for i in range(n):
    print(f"1,{10000000 + i},0.{i % 1000:04d},0.{i % 1000:04d},6,6,0")
PY
echo "deck: $n rates, $(du -h "$work/deck.csv" | cut -f1)"
target/release/authplane aaa import-rates "$work/deck.csv" --data-dir "$work/data" --cores 1
target/release/authplane aaa import-rates "$work/deck.csv" --data-dir "$work/data" --cores 1

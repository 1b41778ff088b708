#!/usr/bin/env bash
# HTTPS: authplane vs. nginx, side by side in one run, with the same ECDSA
# P-256 certificate (made here by openssl), both servers pinned to CPU0 on
# one core / one worker, the client on CPU1, rounds alternating (A B A B).
#
# 1. GET /oam/ping over TLS keep-alive: wrk -t1 -c64 (OpenSSL client; the
#    cipher suite is the client's first choice both servers accept).
# 2. Full handshakes: authplane-load --close-each --tls-no-resume, so every
#    request is a new connection and a full handshake (ECDHE + ECDSA).
#
# Reported per run: requests (or handshakes) per second, the server's CPU
# seconds (utime+stime from /proc/PID/stat before and after), and per
# server-CPU-second — the figure that does not depend on the client keeping
# the server busy.
#
# Usage: bench/tls_vs_nginx.sh [rounds=3] [seconds=10]
# Needs: wrk, nginx and openssl (Debian: apt-get install wrk nginx-light
# openssl), a release build of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
secs=${2:-10}
. bench/common.sh
need_release
command -v wrk >/dev/null && command -v nginx >/dev/null && command -v openssl >/dev/null || {
    echo "needs wrk, nginx and openssl: apt-get install wrk nginx-light openssl" >&2
    exit 1
}
make_work
hz=$(getconf CLK_TCK)

# The certificate: a P-256 CA and a P-256 leaf for localhost.
(
    cd "$work"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -keyout ca.key -out ca.pem -subj "/CN=bench CA" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout leaf.key -out leaf.csr -subj "/CN=localhost" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > leaf.ext
    openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -set_serial 7 -days 2 \
        -extfile leaf.ext -out leaf.pem 2>/dev/null
)

# nginx: one worker on CPU0, TLS 1.2 and 1.3, the same body as /oam/ping.
start_nginx " ssl reuseport;
        ssl_certificate $work/leaf.pem;
        ssl_certificate_key $work/leaf.key;
        ssl_protocols TLSv1.2 TLSv1.3;"

# authplane: one core on CPU0, one TLS listener with the same files.
cat > "$work/authplane.toml" <<CONF
[[server.listeners]]
name = "https"
listen = "127.0.0.1:0"
[server.listeners.tls]
certificate = "leaf.pem"
key = "leaf.key"
CONF
taskset -c 0 target/release/authplane serve --config "$work/authplane.toml" --cores 1 \
    --data-dir "$work/data" > "$work/ap.out" 2> "$work/ap.err" &
apid=$!
aport=$(listening_addr "$work/ap.out" | sed 's/.*://')

# keepalive NAME PID PORT: "name req/s cpu_s req_per_cpu_s"
keepalive() {
    local name=$1 pid=$2 port=$3 before after out rps cpu
    before=$(cpu_ticks "$pid")
    out=$(taskset -c 1 wrk -t1 -c64 -d"${secs}s" "https://127.0.0.1:$port/oam/ping")
    after=$(cpu_ticks "$pid")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    cpu=$(awk -v a="$after" -v b="$before" -v hz="$hz" 'BEGIN{print (a-b)/hz}')
    awk -v n="$name" -v r="$rps" -v c="$cpu" -v s="$secs" \
        'BEGIN{printf "%-24s %12.0f %8.2f %14.0f\n", n, r, c, (c>0 ? r*s/c : 0)}'
}

# handshakes NAME PID PORT: the same columns, one full handshake per request.
handshakes() {
    local name=$1 pid=$2 port=$3 before after rps cpu
    before=$(cpu_ticks "$pid")
    rps=$(taskset -c 1 target/release/authplane-load --target "https://127.0.0.1:$port" \
        --tls-ca "$work/ca.pem" --tls-server-name localhost --tls-no-resume --close-each \
        --scenario ping --connections 32 --threads 1 --warmup 0s --duration "${secs}s" --json |
        python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["errors"]==0, s; print(s["throughput_per_s"])')
    after=$(cpu_ticks "$pid")
    cpu=$(awk -v a="$after" -v b="$before" -v hz="$hz" 'BEGIN{print (a-b)/hz}')
    awk -v n="$name" -v r="$rps" -v c="$cpu" -v s="$secs" \
        'BEGIN{printf "%-24s %12.0f %8.2f %14.0f\n", n, r, c, (c>0 ? r*s/c : 0)}'
}

echo "machine: $(nproc) CPUs, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -r)"
echo "nginx $(nginx -v 2>&1 | sed 's/.*\///'), $(openssl version | cut -d' ' -f1-2); servers on CPU0, clients on CPU1"
echo "cipher (wrk's OpenSSL, both servers): $(echo | openssl s_client -connect 127.0.0.1:"$aport" 2>/dev/null | awk '/Cipher is/ {print $NF; exit}') / $(echo | openssl s_client -connect 127.0.0.1:"$nport" 2>/dev/null | awk '/Cipher is/ {print $NF; exit}')"
printf "%-24s %12s %8s %14s\n" "run" "per s" "cpu_s" "per cpu_s"
for r in $(seq "$rounds"); do
    keepalive "nginx ping r$r" "$npid" "$nport"
    keepalive "authplane ping r$r" "$apid" "$aport"
done
for r in $(seq "$rounds"); do
    handshakes "nginx handshake r$r" "$npid" "$nport"
    handshakes "authplane handshake r$r" "$apid" "$aport"
done

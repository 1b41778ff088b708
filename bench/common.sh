# Sourced by the bench scripts (from the repository root): what they all
# start with, and the two measurements they share.

# Builds the server and the generator when either is missing.
need_release() {
    [ -x target/release/authplane ] && [ -x target/release/authplane-load ] || cargo build --release --workspace
}

# A scratch directory in $work, removed at exit with every background job
# (servers, file servers) killed.
make_work() {
    work=$(mktemp -d)
    trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
}

# Waits until the server writing to log $1 listens; prints its address.
listening_addr() {
    until grep -q '^listening on' "$1" 2>/dev/null; do sleep 0.05; done
    sed -n 's/^listening on //p' "$1"
}

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts nginx with one worker on CPU0 serving /oam/ping with authplane's
# body on a free port, with the extra server directives $1 (after
# `listen 127.0.0.1:PORT`, e.g. " ssl reuseport;\n ssl_certificate ...").
# Sets nport and npid (the worker).
start_nginx() {
    nport=$(free_port)
    cat > "$work/nginx.conf" <<CONF
worker_processes 1;
worker_cpu_affinity 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    server {
        listen 127.0.0.1:$nport$1
        location = /oam/ping { default_type application/json; return 200 '{"result":"OK"}'; }
    }
}
CONF
    taskset -c 0 nginx -c "$work/nginx.conf" -p "$work" &
    sleep 0.5
    npid=$(pgrep -f "nginx: worker process" -n)
}

# CPU time (user + system, in clock ticks) used so far by process $1.
cpu_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}

# Starts the server on CPU0 (one core, durability $DURABILITY, default
# sync) with its Diameter listener: sets pid, addr (HTTP) and dia.
diameter_server() {
    AUTHPLANE_STORAGE__DURABILITY=${DURABILITY:-sync} AUTHPLANE_DIAMETER__LISTEN=127.0.0.1:0 \
        taskset -c 0 target/release/authplane serve --cores 1 --listen 127.0.0.1:0 \
        --data-dir "$work/data" > "$work/out" 2>/dev/null &
    pid=$!
    addr=$(listening_addr "$work/out")
    dia=$(sed -n 's/^diameter listening on //p' "$work/out")
}

# Creates a subscriber (APN "internet") for every AuC of the server at $1.
hss_subscribers() {
    python3 - "$1" <<'PY'
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
}

# One measured run of the generator (the script's `load`) against server
# process $pid: NAME TARGET SCENARIO [PIPELINE [generator options]]; prints a row of answers/s,
# p50/p99, the server's CPU seconds and answers per server CPU second.
run() {
    local name=$1 target=$2 scenario=$3 pipeline=${4:-1}
    shift $(( $# < 4 ? $# : 4 ))
    local before after json
    before=$(cpu_ticks "$pid")
    json=$(load --target "$target" --scenario "$scenario" --duration "${secs}s" --pipeline "$pipeline" --json "$@")
    after=$(cpu_ticks "$pid")
    python3 - "$name" "$json" "$(( after - before ))" "$(getconf CLK_TCK)" <<'PY'
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

# Starts `authplane serve --cores $2` on data directory $1, a compaction
# due every $compact_at bytes of log (default the config's 64 MiB), its
# output in $work/out and $work/err; sets pid and port once it listens.
serve_dir() {
    AUTHPLANE_STORAGE__COMPACT_WAL_BYTES=${compact_at:-67108864} target/release/authplane serve \
        --cores "$2" --listen 127.0.0.1:0 --data-dir "$1" > "$work/out" 2> "$work/err" &
    pid=$!
    until grep -q '^listening on' "$work/out" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || { cat "$work/err"; exit 1; }
        sleep 0.002
    done
    port=$(sed -n 's/^listening on 127.0.0.1://p' "$work/out")
}

# Writes $work/aka.lua for wrk: vector_count/1 of a uniform random one of
# min($1, 1M) subscribers, IMSIs from $2 up with a stride of $3 (default:
# spread over all $1).
vector_lua() {
    local m=$(( $1 < 1000000 ? $1 : 1000000 ))
    local stride=${3:-$(( $1 / m ))}
    cat > "$work/aka.lua" <<LUA
math.randomseed(os.time())
request = function()
  local imsi = string.format("%015d", $2 + math.random(0, $m - 1) * $stride)
  return wrk.format("GET", "/auc/aka/vector_count/1/imsi/" .. imsi)
end
LUA
}

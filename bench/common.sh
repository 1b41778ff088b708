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
    until grep -q listening "$1" 2>/dev/null; do sleep 0.05; done
    sed -n 's/^listening on //p' "$1"
}

# CPU time (user + system, in clock ticks) used so far by process $1.
cpu_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}

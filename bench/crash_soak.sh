#!/usr/bin/env bash
# Long crash soak: the SIGKILL test of tests/integration/crash.rs with more
# kills (each: concurrent durable writes from 4 clients, SIGKILL at a
# pseudo-random moment, restart, every acknowledged write checked).
# Usage: bench/crash_soak.sh [kills=500]
set -euo pipefail
cd "$(dirname "$0")/.."
CRASH_SOAK_KILLS=${1:-500} cargo test --release --test integration crash:: -- --nocapture

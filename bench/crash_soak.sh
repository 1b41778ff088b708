#!/usr/bin/env bash
# Long crash soak: the SIGKILL tests with more kills. SQNs (vector load
# on two cores, with and without leases: every SQN after a restart above
# every SQN before), AuC creates
# (tests/integration/crash.rs: concurrent durable writes from 4 clients,
# SIGKILL at a pseudo-random moment, restart, every acknowledged write
# checked), the table layer (crash.rs: creates in 19 tables, HSS and AAA,
# catalog and shards, PATCHes of subscribers and DELETEs of EIR rules, from
# 4 clients: every acknowledged create there with its key, every
# acknowledged PATCH kept, every acknowledged DELETE still gone, no id
# handed out twice), the EIR history (crash.rs: S13 checks of new IMSI/IMEI
# pairs from two python-diameter MMEs, every one answered 2001 found), the
# PCRF sessions (crash.rs: GeoRed pushes moving sessions to new UE
# addresses: the last acknowledged or a later one kept, its address index
# right) and AAA accounting (tests/integration/aaa.rs: 150 calls
# authorized per round, their stops sent by 4 clients, SIGKILL meanwhile,
# restart; every acknowledged CDR present, no leg billed twice, no CDR id
# reused, and in the end every stop resent and the balance exact).
# Usage: bench/crash_soak.sh [kills=500]
set -euo pipefail
cd "$(dirname "$0")/.."
CRASH_SOAK_KILLS=${1:-500} cargo test --release --test integration -- crash:: aaa::sigkill hss_vectors::sqns_issued_after hss_vectors::without_leases --nocapture

#!/usr/bin/env python3
"""Parses sippy b2bua routes with sippy's own parser (PyPI sippy 2.5.0,
sippy.B2B.Route.B2BRoute), as a b2bua fed by the AAA would.

Reads one `Routing:...` string per line on stdin; prints one JSON object
per route (cld, host, port, cli, credit_time, expires, np_expires,
auth_user, auth_password); exits 1 if a line lacks `Routing:`, does not
parse, or would be skipped by the b2bua (credit-time or expires 0), or if
a route has no credit time of its own (sippy would then run it unlimited).
"""
import json
import sys

from sippy.B2B.Route import B2BRoute

failed = False
for n, line in enumerate(sys.stdin, 1):
    line = line.rstrip("\n")
    if not line:
        continue
    try:
        if not line.startswith("Routing:"):
            raise ValueError("no Routing: prefix")
        r = B2BRoute(line[len("Routing:"):])
        if not r.crt_set or r.credit_time is None:
            raise ValueError("no credit-time of its own")
        r.customize(n, "0", "0", None, [], None)
        if r.credit_time == 0 or getattr(r, "expires", None) == 0:
            raise ValueError("the b2bua would skip it")
        host, port = r.ainfo[0][4][0], r.ainfo[0][4][1]
        print(json.dumps({
            "cld": r.cld, "host": host, "port": port, "cli": r.cli,
            "credit_time": r.credit_time, "expires": getattr(r, "expires", None),
            "np_expires": getattr(r, "no_progress_expires", None),
            "auth_user": None if r.pass_auth else r.user,
            "auth_password": None if r.pass_auth else r.passw,
        }))
    except Exception as e:  # noqa: BLE001 - any parse failure is a finding
        failed = True
        print(json.dumps({"line": n, "route": line, "error": f"{type(e).__name__}: {e}"}))
sys.exit(1 if failed else 0)

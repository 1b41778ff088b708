#!/usr/bin/env python3
"""An MME speaking S6a with python-diameter's own stack (CER/CEA, DWR/DWA,
DPR handled by its Node), driven one JSON command per line on stdin, one
JSON result per line on stdout.

Commands:
  {"op": "connect", "port": N, "origin_host": "...", "realm": "...",
   "peer_host": "hss origin host", "apps": [16777251]}
      -> {"ok": true} once the CEA has opened the connection
  {"op": "air", "imsi": "...", "plmn": "00101", "n": 3, "utran": 0,
   "resync": "hex RAND||AUTS" (optional)}
  {"op": "ulr", "imsi": "...", "plmn": "00101", "flags": 0}
  {"op": "pur", "imsi": "..."}
  {"op": "nor", "imsi": "..."}
      -> {"header": {...}, "avps": [tree]} the answer, every AVP as
         {"code", "vendor", "m": bool, "hex"} or with "avps" when grouped
  {"op": "raw", "hex": "..."}  a message written as is (its AVPs included)
      -> the answer, as above
  {"op": "clrs", "wait": seconds, "count": n}
      -> {"clrs": [...]} the CLRs received so far (each answered CLA 2001)
  {"op": "stop"} -> DPR and exit

Nothing of authplane's code is used.
"""
import json
import queue
import sys
import threading
import time

from diameter.message import Message
from diameter.message.avp import Avp, AvpGrouped
from diameter.message.commands import (
    AuthenticationInformationRequest,
    NotifyRequest,
    PurgeUeRequest,
    UpdateLocationRequest,
)
from diameter.message.avp.grouped import VendorSpecificApplicationId
from diameter.message.constants import VENDOR_TGPP
from diameter.node import Node
from diameter.node.application import SimpleThreadingApplication

S6A = 16777251
node = None
app = None
clrs = queue.Queue()
seen = []
session = [0]


def tree(avps):
    out = []
    for a in avps:
        item = {"code": a.code, "vendor": a.vendor_id or 0, "m": bool(a.is_mandatory)}
        if isinstance(a, AvpGrouped):
            item["avps"] = tree(a.value)
        else:
            item["hex"] = a.payload.hex()
        out.append(item)
    return out


def dump(msg):
    h = msg.header
    return {
        "header": {
            "code": h.command_code,
            "app": h.application_id,
            "request": bool(h.is_request),
            "error": bool(h.is_error),
            "hop": h.hop_by_hop_identifier,
        },
        "avps": tree(msg.avps),
    }


def on_request(a, message):
    h = message.header
    if h.command_code == 317:
        found = {x.code: x for x in message.avps}
        seen.append(
            {
                "imsi": found[1].value if 1 in found else None,
                "cancellation_type": found[1420].value if 1420 in found else None,
                "clr_flags": found[1638].value if 1638 in found else None,
                "origin_host": found[264].value.decode() if 264 in found else None,
                "destination_host": found[293].value.decode() if 293 in found else None,
            }
        )
        clrs.put(1)
        ans = a.generate_answer(message, result_code=2001)
        ans.auth_session_state = 1
        return ans
    return a.generate_answer(message, result_code=3001)


def common(msg, cmd):
    session[0] += 1
    msg.session_id = f"{node.origin_host};{int(time.time())};{session[0]}"
    msg.auth_session_state = 1
    msg.origin_host = node.origin_host.encode()
    msg.origin_realm = node.realm_name.encode()
    msg.destination_realm = cmd.get("dest_realm", cmd_peer_realm[0]).encode()
    msg.user_name = cmd["imsi"]
    msg.header.is_proxyable = True


cmd_peer_realm = ["authplane.localdomain"]


def plmn_bytes(p):
    mcc, mnc = p[:3], p[3:]
    d = [int(c) for c in mcc]
    m = [int(c) for c in mnc]
    mnc3 = m[2] if len(m) == 3 else 0xF
    return bytes([d[1] << 4 | d[0], mnc3 << 4 | d[2], m[1] << 4 | m[0]])


def send(msg):
    ans = app.send_request(msg, timeout=15)
    return dump(ans)


def main():
    global node, app
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        op = cmd["op"]
        try:
            if op == "connect":
                node = Node(cmd["origin_host"], cmd["realm"], vendor_ids=[VENDOR_TGPP])
                node.idle_timeout = cmd.get("watchdog", 30)
                peer_realm = cmd.get("peer_realm", "authplane.localdomain")
                cmd_peer_realm[0] = peer_realm
                peer = node.add_peer(
                    f"aaa://{cmd['peer_host']}:{cmd['port']};transport=tcp",
                    peer_realm,
                    ip_addresses=["127.0.0.1"],
                    is_persistent=True,
                    is_default=True,
                )
                app = SimpleThreadingApplication(
                    S6A, is_auth_application=True, request_handler=on_request
                )
                # Requests to this MME (CLR) carry its own realm.
                node.add_application(app, [peer], realms=[cmd["realm"]])
                node.start()
                app.wait_for_ready(timeout=15)
                print(json.dumps({"ok": True}), flush=True)
            elif op == "air":
                m = AuthenticationInformationRequest()
                common(m, cmd)
                m.visited_plmn_id = plmn_bytes(cmd.get("plmn", "00101"))
                if cmd.get("n", 1):
                    inner = [Avp.new(1410, VENDOR_TGPP, cmd.get("n", 1)), Avp.new(1412, VENDOR_TGPP, 0)]
                    if cmd.get("resync"):
                        inner.append(Avp.new(1411, VENDOR_TGPP, bytes.fromhex(cmd["resync"])))
                    m.append_avp(Avp.new(1408, VENDOR_TGPP, inner))
                if cmd.get("utran"):
                    inner = [Avp.new(1410, VENDOR_TGPP, cmd["utran"]), Avp.new(1412, VENDOR_TGPP, 0)]
                    m.append_avp(Avp.new(1409, VENDOR_TGPP, inner))
                print(json.dumps(send(m)), flush=True)
            elif op == "ulr":
                m = UpdateLocationRequest()
                common(m, cmd)
                m.vendor_specific_application_id = VendorSpecificApplicationId(
                    vendor_id=VENDOR_TGPP, auth_application_id=S6A
                )
                m.rat_type = 1004  # EUTRAN
                m.ulr_flags = cmd.get("flags", 0)
                m.visited_plmn_id = plmn_bytes(cmd.get("plmn", "00101"))
                print(json.dumps(send(m)), flush=True)
            elif op == "pur":
                m = PurgeUeRequest()
                common(m, cmd)
                print(json.dumps(send(m)), flush=True)
            elif op == "nor":
                m = NotifyRequest()
                common(m, cmd)
                print(json.dumps(send(m)), flush=True)
            elif op == "raw":
                m = Message.from_bytes(bytes.fromhex(cmd["hex"]))
                print(json.dumps(send(m)), flush=True)
            elif op == "clrs":
                deadline = time.time() + cmd.get("wait", 5)
                while len(seen) < cmd.get("count", 1) and time.time() < deadline:
                    try:
                        clrs.get(timeout=0.05)
                    except queue.Empty:
                        pass
                print(json.dumps({"clrs": seen}), flush=True)
            elif op == "stop":
                node.stop(wait_timeout=5)
                print(json.dumps({"ok": True}), flush=True)
                return
        except Exception as e:  # noqa: BLE001 - reported to the test
            print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)


if __name__ == "__main__":
    threading.current_thread().name = "mme"
    main()

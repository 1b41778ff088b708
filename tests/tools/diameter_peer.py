#!/usr/bin/env python3
"""A Diameter peer of the HSS with python-diameter's own stack (CER/CEA,
DWR/DWA, DPR handled by its Node): an MME (S6a, S13), an S-CSCF (Cx) or a
3GPP AAA server (SWx), driven one JSON command per line on stdin, one JSON
result per line on stdout.

Commands:
  {"op": "connect", "port": N, "origin_host": "...", "realm": "...",
   "peer_host": "hss origin host", "apps": [16777251, ...] (default S6a)}
      -> {"ok": true} once the CEA has opened the connection
  {"op": "uar", "public": "sip:...", "private": "IMSI@realm", "type": 0}
  {"op": "mar", "public": "...", "private": "...", "n": 2, "scheme": "...",
   "resync": "hex RAND||AUTS" (optional), "server": "sip:scscf..."}
  {"op": "sar", "public": "...", "private": "...", "server": "...", "type": 1}
  {"op": "lir", "public": "..."}
      Cx requests (each answer as below)
  {"op": "swx_mar", "user": "IMSI or NAI", "n": 1, "scheme": "EAP-AKA'",
   "anid": "WLAN", "resync": "..."}
  {"op": "swx_sar", "user": "...", "type": 1}
      SWx requests
  {"op": "ecr", "imei": "...", "imsi": "..." (optional), "sv": "..."}
      an S13 ME Identity Check
  {"op": "requests", "wait": seconds, "count": n}
      -> {"requests": [dumps]} the requests other than CLR received so far
         (RTR, PPR), each answered 2001
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
    LocationInfoRequest,
    MeIdentityCheckRequest,
    MultimediaAuthRequest,
    NotifyRequest,
    PurgeUeRequest,
    ServerAssignmentRequest,
    UpdateLocationRequest,
    UserAuthorizationRequest,
)
from diameter.message.avp.grouped import VendorSpecificApplicationId
from diameter.message.constants import VENDOR_TGPP
from diameter.node import Node
from diameter.node.application import SimpleThreadingApplication

S6A = 16777251
CX = 16777216
SWX = 16777265
S13 = 16777252
node = None
apps = {}
clrs = queue.Queue()
seen = []
others = queue.Queue()
received = []
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
    if h.command_code in (304, 305):
        received.append(dump(message))
        others.put(1)
        ans = a.generate_answer(message, result_code=2001)
        ans.auth_session_state = 1
        return ans
    return a.generate_answer(message, result_code=3001)


def common(msg, cmd, user=None, app_id=None):
    session[0] += 1
    msg.session_id = f"{node.origin_host};{int(time.time())};{session[0]}"
    msg.auth_session_state = 1
    msg.origin_host = node.origin_host.encode()
    msg.origin_realm = node.realm_name.encode()
    msg.destination_realm = cmd.get("dest_realm", cmd_peer_realm[0]).encode()
    if user is None:
        user = cmd.get("imsi")
    if user is not None:
        msg.user_name = user
    if app_id is not None:
        msg.vendor_specific_application_id = VendorSpecificApplicationId(
            vendor_id=VENDOR_TGPP, auth_application_id=app_id
        )
    msg.header.is_proxyable = True


def tgpp(code, value):
    return Avp.new(code, VENDOR_TGPP, value)


def auth_item(cmd):
    inner = []
    if cmd.get("scheme") is not None:
        inner.append(tgpp(608, cmd["scheme"]))
    if cmd.get("resync"):
        inner.append(tgpp(610, bytes.fromhex(cmd["resync"])))
    return tgpp(612, inner)


cmd_peer_realm = ["authplane.localdomain"]


def plmn_bytes(p):
    mcc, mnc = p[:3], p[3:]
    d = [int(c) for c in mcc]
    m = [int(c) for c in mnc]
    mnc3 = m[2] if len(m) == 3 else 0xF
    return bytes([d[1] << 4 | d[0], mnc3 << 4 | d[2], m[1] << 4 | m[0]])


def wait_for(got, signal, cmd):
    """Waits until `got` holds cmd["count"] items or cmd["wait"] seconds pass."""
    deadline = time.time() + cmd.get("wait", 5)
    while len(got) < cmd.get("count", 1) and time.time() < deadline:
        try:
            signal.get(timeout=0.05)
        except queue.Empty:
            pass


def send(msg, app_id=S6A):
    a = apps.get(app_id) or next(iter(apps.values()))
    ans = a.send_request(msg, timeout=15)
    return dump(ans)


def main():
    global node
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        op = cmd["op"]
        try:
            if op == "connect":
                node = Node(cmd["origin_host"], cmd["realm"], vendor_ids=[VENDOR_TGPP])
                node.idle_timeout = cmd.get("watchdog", 30)
                # python-diameter's own PushProfileRequest lists
                # SIP-Auth-Data-Item as required; TS 29.229 §6.1.7 has it
                # optional (re-authentication only): requests are not
                # checked against its dictionary here.
                node.validate_received_request_avps = False
                peer_realm = cmd.get("peer_realm", "authplane.localdomain")
                cmd_peer_realm[0] = peer_realm
                peer = node.add_peer(
                    f"aaa://{cmd['peer_host']}:{cmd['port']};transport=tcp",
                    peer_realm,
                    ip_addresses=["127.0.0.1"],
                    is_persistent=True,
                    is_default=True,
                )
                for app_id in cmd.get("apps", [S6A]):
                    apps[app_id] = SimpleThreadingApplication(
                        app_id, is_auth_application=True, request_handler=on_request
                    )
                    # Requests to this peer (CLR, RTR) carry its own realm.
                    node.add_application(apps[app_id], [peer], realms=[cmd["realm"]])
                node.start()
                for a in apps.values():
                    a.wait_for_ready(timeout=15)
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
            elif op == "uar":
                m = UserAuthorizationRequest()
                common(m, cmd, cmd["private"], CX)
                m.append_avp(tgpp(601, cmd["public"]))
                m.append_avp(tgpp(600, cmd.get("visited", "ims.test").encode()))
                m.append_avp(tgpp(623, cmd.get("type", 0)))
                print(json.dumps(send(m, CX)), flush=True)
            elif op == "mar":
                m = MultimediaAuthRequest()
                common(m, cmd, cmd["private"], CX)
                m.append_avp(tgpp(601, cmd["public"]))
                m.append_avp(tgpp(607, cmd.get("n", 1)))
                m.append_avp(auth_item(cmd))
                m.append_avp(tgpp(602, cmd.get("server", "sip:scscf.ims.test")))
                print(json.dumps(send(m, CX)), flush=True)
            elif op == "sar":
                m = ServerAssignmentRequest()
                common(m, cmd, cmd.get("private"), CX)
                if cmd.get("public"):
                    m.append_avp(tgpp(601, cmd["public"]))
                m.append_avp(tgpp(602, cmd.get("server", "sip:scscf.ims.test")))
                m.append_avp(tgpp(614, cmd.get("type", 1)))
                m.append_avp(tgpp(624, cmd.get("already", 0)))
                print(json.dumps(send(m, CX)), flush=True)
            elif op == "lir":
                m = LocationInfoRequest()
                common(m, cmd, None, CX)
                m.append_avp(tgpp(601, cmd["public"]))
                print(json.dumps(send(m, CX)), flush=True)
            elif op == "swx_mar":
                m = MultimediaAuthRequest()
                common(m, cmd, cmd["user"], SWX)
                m.append_avp(tgpp(607, cmd.get("n", 1)))
                m.append_avp(auth_item(cmd))
                m.append_avp(tgpp(1032, 0))  # RAT-Type WLAN
                if cmd.get("anid"):
                    m.append_avp(tgpp(1504, cmd["anid"]))
                print(json.dumps(send(m, SWX)), flush=True)
            elif op == "swx_sar":
                m = ServerAssignmentRequest()
                common(m, cmd, cmd["user"], SWX)
                m.append_avp(tgpp(614, cmd.get("type", 1)))
                print(json.dumps(send(m, SWX)), flush=True)
            elif op == "ecr":
                m = MeIdentityCheckRequest()
                common(m, cmd, cmd.get("imsi"), S13)
                inner = [tgpp(1402, cmd["imei"])]
                if cmd.get("sv"):
                    inner.append(tgpp(1403, cmd["sv"]))
                m.append_avp(tgpp(1401, inner))
                print(json.dumps(send(m, S13)), flush=True)
            elif op == "requests":
                wait_for(received, others, cmd)
                print(json.dumps({"requests": received}), flush=True)
            elif op == "raw":
                m = Message.from_bytes(bytes.fromhex(cmd["hex"]))
                print(json.dumps(send(m, m.header.application_id)), flush=True)
            elif op == "clrs":
                wait_for(seen, clrs, cmd)
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

#!/usr/bin/env python3
"""Independent check of authentication vectors returned by authplane.

Reads one JSON object per line on stdin:
  {"k": hex, "opc": hex, "amf": hex, "kind": "eps"|"eap"|"5g"|"s6a"|"utran"|"aka_prime",
   "plmn": "00101" (optional), "role": "ausf"|"seaf", "anid": "WLAN" (aka_prime),
   "vector": {...}}
("utran" checks XRES, CK and IK, as Cx and SWx EAP-AKA items carry them;
"aka_prime" checks XRES and CK'/IK' for the access network name, TS 33.402
A.2.) Two helper kinds print a value instead:
  {"kind": "auts", "k", "opc", "rand", "sqn_ms"}      -> auts <hex>
  {"kind": "ck_ik_prime", "ck", "ik", "anid", "sqn_xor_ak"} -> ckik <CK' hex> <IK' hex>
and recomputes everything from K, OPc and the vector's RAND with its own
Milenage (TS 35.206) and KDFs (TS 33.401 A.2, TS 33.501 A.2/A.4/A.5).
The SQN is recovered from AUTN with f5. Prints one line per vector:
  ok <sqn>   or   FAIL <reason>
Uses AES from the `cryptography` package and HMAC/SHA-256 from the
standard library: nothing of authplane's own code.
"""
import hashlib
import hmac
import json
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def aes(k, block):
    enc = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def rot(x, r):
    n = int.from_bytes(x, "big")
    r %= 128
    return (((n << r) | (n >> (128 - r))) & ((1 << 128) - 1)).to_bytes(16, "big")


def const(i):
    return bytes(15) + bytes([i])


def milenage(k, opc, rand, sqn, amf):
    temp = aes(k, xor(rand, opc))
    in1 = sqn + amf + sqn + amf
    out1 = xor(aes(k, xor(xor(temp, rot(xor(in1, opc), 64)), const(0))), opc)
    outs = [xor(aes(k, xor(rot(xor(temp, opc), r), const(c))), opc) for r, c in ((0, 1), (32, 2), (64, 4), (96, 8))]
    return {
        "mac_a": out1[:8], "res": outs[0][8:], "ak": outs[0][:6],
        "ck": outs[1], "ik": outs[2],
    }


def kdf(key, fc, *params):
    s = bytes([fc])
    for p in params:
        s += p + len(p).to_bytes(2, "big")
    return hmac.new(key, s, hashlib.sha256).digest()


def plmn_id(plmn):
    mcc, mnc = plmn[:3], plmn[3:]
    d = [int(c) for c in mcc]
    m = [int(c) for c in mnc]
    mnc3 = m[2] if len(m) == 3 else 0xF
    return bytes([d[1] << 4 | d[0], mnc3 << 4 | d[2], m[1] << 4 | m[0]])


def auts(case):
    """AUTS = (SQN_MS xor AK*) || MAC-S, as a USIM computes it (TS 33.102
    6.3.3, AMF* = 0000; f1* and f5* of TS 35.206)."""
    k, opc = bytes.fromhex(case["k"]), bytes.fromhex(case["opc"])
    rand = bytes.fromhex(case["rand"])
    sqn_ms = int(case["sqn_ms"]).to_bytes(6, "big")
    temp = aes(k, xor(rand, opc))
    in1 = sqn_ms + bytes(2) + sqn_ms + bytes(2)
    out1 = xor(aes(k, xor(xor(temp, rot(xor(in1, opc), 64)), const(0))), opc)
    ak_star = xor(aes(k, xor(rot(xor(temp, opc), 96), const(8))), opc)[:6]
    return "auts " + (xor(sqn_ms, ak_star) + out1[8:]).hex()


def ck_ik_prime(ck, ik, anid, sqn_xor_ak):
    out = kdf(ck + ik, 0x20, anid.encode(), sqn_xor_ak)
    return out[:16], out[16:]


def check(case):
    if case.get("kind") == "auts":
        return auts(case)
    if case.get("kind") == "ck_ik_prime":
        ckp, ikp = ck_ik_prime(
            bytes.fromhex(case["ck"]), bytes.fromhex(case["ik"]), case["anid"],
            bytes.fromhex(case["sqn_xor_ak"]),
        )
        return "ckik %s %s" % (ckp.hex(), ikp.hex())
    k, opc, amf = (bytes.fromhex(case[x]) for x in ("k", "opc", "amf"))
    v = case["vector"]
    rand = bytes.fromhex(v["rand"])
    autn = bytes.fromhex(v["autn"])
    # AK depends only on K, OPc and RAND: recover SQN from AUTN with it.
    ak = milenage(k, opc, rand, bytes(6), amf)["ak"]
    sqn = xor(autn[:6], ak)
    o = milenage(k, opc, rand, sqn, amf)
    if autn != xor(sqn, o["ak"]) + amf + o["mac_a"]:
        return "AUTN (AMF or MAC-A) does not match"
    kind = case["kind"]
    if kind in ("eps", "eap", "s6a", "utran", "aka_prime") and v["xres"] != o["res"].hex():
        return "XRES does not match"
    if kind == "s6a":
        # An S6a E-UTRAN-Vector: KASME for the Visited-PLMN-Id, no CK/IK.
        kasme = kdf(o["ck"] + o["ik"], 0x10, plmn_id(case["plmn"]), autn[:6])
        if v.get("kasme") != kasme.hex():
            return "KASME does not match"
    if kind in ("eps", "utran"):
        if v["ck"] != o["ck"].hex() or v["ik"] != o["ik"].hex():
            return "CK/IK do not match"
        if case.get("plmn"):
            kasme = kdf(o["ck"] + o["ik"], 0x10, plmn_id(case["plmn"]), autn[:6])
            if v.get("kasme") != kasme.hex():
                return "KASME does not match"
    if kind == "aka_prime":
        ckp, ikp = ck_ik_prime(o["ck"], o["ik"], case["anid"], autn[:6])
        if v["ck"] != ckp.hex() or v["ik"] != ikp.hex():
            return "CK'/IK' do not match"
    if kind == "eap":
        if v["mac"] != o["mac_a"].hex() or v["ak"] != o["ak"].hex():
            return "MAC/AK do not match"
    if kind == "5g":
        p = case["plmn"]
        snn = ("5G:mnc%03d.mcc%s.3gppnetwork.org" % (int(p[3:]), p[:3])).encode()
        if v["serving_network_name"] != snn.decode():
            return "serving network name does not match"
        key = o["ck"] + o["ik"]
        xres_star = kdf(key, 0x6B, snn, rand, o["res"])[16:]
        if case.get("role") == "ausf":
            if v.get("xres_star") != xres_star.hex():
                return "XRES* does not match"
        elif v.get("hxres_star") != hashlib.sha256(rand + xres_star).digest()[16:].hex():
            return "HXRES* does not match"
        if v["kausf"] != kdf(key, 0x6A, snn, autn[:6]).hex():
            return "KAUSF does not match"
    return int.from_bytes(sqn, "big")


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        result = check(json.loads(line))
        if isinstance(result, int):
            print("ok %d" % result, flush=True)
        elif result.startswith("auts ") or result.startswith("ckik "):
            print(result, flush=True)
        else:
            print("FAIL %s" % result, flush=True)


if __name__ == "__main__":
    main()

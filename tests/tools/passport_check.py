#!/usr/bin/env python3
"""Independent check of SHAKEN Identity headers signed by authplane.

Usage: passport_check.py CERT.pem < identities (one per line)
For each line prints `ok <header json> <claims json>` or `FAIL <reason>`.
Verifies the ES256 signature over the received `h.p` bytes with the
certificate's public key (`cryptography` package), and the full form
(`;info=<x5u>;alg=ES256;ppt=shaken`, info equal to the header's x5u).
"""
import base64
import json
import sys

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def check(identity, key):
    jws, _, params = identity.partition(";")
    parts = jws.split(".")
    if len(parts) != 3:
        return "not a compact JWS"
    h, p, s = parts
    header = json.loads(b64d(h))
    claims = json.loads(b64d(p))
    if params != "info=<%s>;alg=ES256;ppt=shaken" % header.get("x5u"):
        return "parameters %r do not match x5u %r" % (params, header.get("x5u"))
    if header != {"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": header["x5u"]}:
        return "header %r" % header
    sig = b64d(s)
    if len(sig) != 64:
        return "signature is not R||S"
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    try:
        key.verify(der, (h + "." + p).encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return "signature does not verify"
    # Canonical form: what was signed is the sorted, compact JSON.
    if b64d(p) != json.dumps(claims, sort_keys=True, separators=(",", ":")).encode():
        return "claims are not canonical JSON"
    return "ok %s %s" % (json.dumps(header), json.dumps(claims))


def main():
    cert = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
    key = cert.public_key()
    for line in sys.stdin:
        line = line.strip()
        if line:
            r = check(line, key)
            print(r if r.startswith("ok ") else "FAIL " + r, flush=True)


if __name__ == "__main__":
    main()

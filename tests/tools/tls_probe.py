#!/usr/bin/env python3
"""An HTTPS client on Python's own ssl module (OpenSSL), independent of the
server's rustls: one JSON line per request on stdout.

  tls_probe.py --port P --ca CA [--name localhost] [--cert C --key K]
               [--max-version TLSv1_1] [--hold] METHOD PATH [BODY]

Each request goes on one keep-alive connection. With --hold the script
sends the request, prints its answer, then waits for a line on stdin and
sends the same request again on the same connection (a reload test
changes the server's certificate in between), as often as lines come.

Printed: {"ok": true, "status": N, "body": "...", "version": "TLSv1.3",
"cert_sha256": "<hex of the server's leaf>", "resumed": bool} or
{"ok": false, "error": "..."}.
"""
import argparse
import hashlib
import json
import socket
import ssl
import sys


def context(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(args.ca)
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    if args.max_version:
        # Old protocols need OpenSSL's lowest security level to be offered.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.maximum_version = getattr(ssl.TLSVersion, args.max_version)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def read_response(tls):
    """One HTTP/1.1 response (Content-Length framed)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = tls.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = tls.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a body")
        rest += chunk
    return status, rest[:length].decode("utf-8", "replace")


def request(tls, args):
    body = (args.body or "").encode()
    head = f"{args.method} {args.path} HTTP/1.1\r\nHost: {args.name}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    tls.sendall(head.encode() + b"\r\n" + body)
    status, text = read_response(tls)
    leaf = tls.getpeercert(binary_form=True)
    return {
        "ok": True,
        "status": status,
        "body": text,
        "version": tls.version(),
        "cert_sha256": hashlib.sha256(leaf).hexdigest(),
        "resumed": tls.session_reused,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--name", default="localhost")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--max-version")
    p.add_argument("--hold", action="store_true")
    p.add_argument("method")
    p.add_argument("path")
    p.add_argument("body", nargs="?")
    args = p.parse_args()
    try:
        raw = socket.create_connection((args.host, args.port), timeout=20)
        tls = context(args).wrap_socket(raw, server_hostname=args.name)
        print(json.dumps(request(tls, args)), flush=True)
        while args.hold and sys.stdin.readline():
            print(json.dumps(request(tls, args)), flush=True)
    except (OSError, ssl.SSLError, ConnectionError, ValueError) as e:
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}), flush=True)


if __name__ == "__main__":
    main()

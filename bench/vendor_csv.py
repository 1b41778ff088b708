#!/usr/bin/env python3
"""Writes a SIM vendor CSV of N lines for `authplane hss import` benches:
ICCID, IMSI, KI, OPC, AMF, SQN, with the IMSIs in a scrambled order
(i -> i * P mod N, P prime and not dividing N), as vendor files are not
sorted. Usage: bench/vendor_csv.py N OUT [first_imsi=1010000000000]"""
import sys

n = int(sys.argv[1])
out = sys.argv[2]
first = int(sys.argv[3]) if len(sys.argv) > 3 else 1010000000000
p = 1_000_003
while n % p == 0:
    p += 2
with open(out, "w", buffering=1 << 22) as f:
    f.write("ICCID,IMSI,KI,OPC,AMF,SQN\n")
    lines = []
    for j in range(n):
        i = (j * p) % n
        lines.append("89882110%011d,%015d,%032x,%032x,8000,0\n" % (i, first + i, i * 7919 + 1, i * 104729 + 3))
        if len(lines) == 65536:
            f.write("".join(lines))
            lines.clear()
    f.write("".join(lines))

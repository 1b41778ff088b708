#!/usr/bin/env python3
"""Validates the OpenAPI document on stdin with openapi-spec-validator
(an implementation independent of the one that wrote it); prints
`valid N` (N: number of paths) or the first error, exit status 1."""
import json
import sys

from openapi_spec_validator import validate

doc = json.load(sys.stdin)
try:
    validate(doc)
except Exception as e:  # noqa: BLE001 - any failure is the answer
    print(f"invalid: {e}")
    sys.exit(1)
print(f"valid {len(doc.get('paths', {}))}")

"""Canonical JSON and strict hex: the byte forms that signatures and hashes cover.

``canonical_json`` is what gets signed or hashed: keys sorted, no whitespace,
ASCII only, no NaN/Infinity, numbers as Python's json writes them (floats
are rounded to 3 decimals before they get here).  ``file_json`` is the one
layout files are written in; verification re-serialises a parsed file and
requires the exact bytes, and ``from_hex`` accepts lowercase hex only, so no
byte of a signed file can change without failing verification.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

_HEX = re.compile(r"\A(?:[0-9a-f]{2})*\Z")


def canonical_json(value: Any) -> bytes:
    """The compact canonical serialisation of ``value``."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def file_json(value: Any) -> bytes:
    """The on-disk layout: sorted keys, two-space indent, ASCII, trailing newline."""
    return (
        json.dumps(value, sort_keys=True, indent=2, ensure_ascii=True, allow_nan=False) + "\n"
    ).encode("ascii")


def from_hex(text: object, what: str, error: type[Exception]) -> bytes:
    """Bytes from lowercase hex; ``error(...)`` naming ``what`` if it is anything else."""
    if not isinstance(text, str) or not _HEX.match(text):
        raise error(f"{what} is not lowercase hex")
    return bytes.fromhex(text)


def digest_hex(data: bytes) -> str:
    """SHA3-256 of ``data`` as hex (public-key and body digests)."""
    return hashlib.sha3_256(data).hexdigest()

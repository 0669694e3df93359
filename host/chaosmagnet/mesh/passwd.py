"""Mosquitto password-file lines in mosquitto 2's PBKDF2-SHA512 format (``$7$``).

A line is ``username:$7$ITERATIONS$SALT$HASH`` with SALT (12 bytes) and HASH
(64 bytes) in standard base64, the hash being PBKDF2-HMAC-SHA512 of the
password.  The tests check both directions against mosquitto itself
(mosquitto_passwd writes, we verify; we write, the broker accepts).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

PBKDF2_ITERATIONS = 101  # mosquitto_passwd's default in mosquitto 2.0
SALT_BYTES = 12
_HASH_BYTES = 64


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def password_line(
    username: str, password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS
) -> str:
    """One password-file line (no newline) for ``username``."""
    if not username or ":" in username or any(c.isspace() for c in username):
        raise ValueError("a mosquitto username has no ':' and no white space")
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, _HASH_BYTES)
    return f"{username}:$7${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password_line(line: str, username: str, password: str) -> bool:
    """Whether a ``$7$`` password-file line admits ``username`` with ``password``."""
    name, sep, encoded = line.strip().partition(":")
    parts = encoded.split("$")
    if not sep or name != username or len(parts) != 5 or parts[:2] != ["", "7"]:
        return False
    try:
        iterations = int(parts[2])
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    if not 1 <= iterations <= 10_000_000:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, len(expected))
    return hmac.compare_digest(digest, expected)

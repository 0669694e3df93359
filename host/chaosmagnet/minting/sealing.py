"""Sealing secret keys under a passphrase: scrypt (memory-hard) + AES-256-GCM.

A passphrase is stretched once per session with scrypt into a master key;
each secret is then sealed under its own key, HKDF-SHA256(master, per-blob
salt), with a random nonce, and its context (bundle id, role, algorithm,
public-key hash) as associated data, so a sealed blob cannot be moved to
another key or bundle.  Stretching once is what lets ``mint --count 100`` seal
100 bundles without paying scrypt 100 times.  A short check value, derived
from the master key in its own domain, tells a wrong passphrase apart from a
damaged blob.

Default scrypt cost is n=2**17, r=8, p=1 (128 MiB, about a second); callers
(tests) may pass cheaper ``ScryptParams`` explicitly.  Nothing here ever logs,
prints or reprs a secret or a passphrase.
"""

from __future__ import annotations

import getpass
import hmac
import os
import sys
from dataclasses import dataclass
from typing import Any

from chaosmagnet.errors import SealError

# `cryptography` is imported where it is used, so that importing this module
# (every key command does) costs nothing until a secret is sealed or opened.

PASSPHRASE_ENV = "CHAOS_PASSPHRASE"
SEAL_FORMAT = "chaosmagnet.sealed/1"
AEAD_NAME = "AES-256-GCM"
_CHECK_DOMAIN = b"chaosmagnet.seal.check/1"
_KEY_DOMAIN = b"chaosmagnet.seal.key/1"
_AAD_DOMAIN = b"chaosmagnet.seal.aad/1\x00"
_MAX_SCRYPT_N = 2**22  # refuse blobs that would make us allocate > 4 GiB


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost parameters; the defaults are the strong ones used for real keys."""

    n: int = 2**17
    r: int = 8
    p: int = 1

    def validate(self) -> None:
        """SealError if the parameters are not usable scrypt parameters."""
        if self.n < 2 or self.n & (self.n - 1) or self.n > _MAX_SCRYPT_N:
            raise SealError(f"scrypt n must be a power of two between 2 and {_MAX_SCRYPT_N}")
        if not 1 <= self.r <= 32 or not 1 <= self.p <= 16:
            raise SealError("scrypt r must be 1..32 and p 1..16")


DEFAULT_SCRYPT = ScryptParams()


def _stretch(passphrase: str, salt: bytes, params: ScryptParams) -> bytes:
    params.validate()
    if not passphrase:
        raise SealError("the passphrase is empty")
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    kdf = Scrypt(salt=salt, length=32, n=params.n, r=params.r, p=params.p)
    return kdf.derive(passphrase.encode("utf-8"))


def _check_value(master: bytes) -> bytes:
    return hmac.new(master, _CHECK_DOMAIN, "sha256").digest()[:16]


def _blob_key(master: bytes, key_salt: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=key_salt, info=_KEY_DOMAIN).derive(
        master
    )


class Sealer:
    """Seals secrets under one passphrase; scrypt runs once, in the constructor."""

    def __init__(self, passphrase: str, params: ScryptParams = DEFAULT_SCRYPT) -> None:
        self.params = params
        self._salt = os.urandom(16)
        self._master = _stretch(passphrase, self._salt, params)
        self._check = _check_value(self._master)

    def __repr__(self) -> str:
        return f"<Sealer scrypt n={self.params.n} r={self.params.r} p={self.params.p}>"

    def seal(self, secret: bytes, context: bytes) -> dict[str, Any]:
        """A JSON-ready sealed blob of ``secret``, bound to ``context``."""
        key_salt = os.urandom(16)
        nonce = os.urandom(12)
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        ciphertext = AESGCM(_blob_key(self._master, key_salt)).encrypt(
            nonce, secret, _AAD_DOMAIN + context
        )
        return {
            "format": SEAL_FORMAT,
            "kdf": {
                "name": "scrypt",
                "n": self.params.n,
                "r": self.params.r,
                "p": self.params.p,
                "salt": self._salt.hex(),
                "check": self._check.hex(),
            },
            "aead": AEAD_NAME,
            "key_salt": key_salt.hex(),
            "nonce": nonce.hex(),
            "ciphertext": ciphertext.hex(),
        }


class Unsealer:
    """Opens sealed blobs with one passphrase, stretching each distinct salt only once."""

    def __init__(self, passphrase: str) -> None:
        if not passphrase:
            raise SealError("the passphrase is empty")
        self._passphrase = passphrase
        self._masters: dict[tuple[str, int, int, int], bytes] = {}

    def __repr__(self) -> str:
        return f"<Unsealer cached={len(self._masters)}>"

    def open(self, blob: dict[str, Any], context: bytes) -> bytes:
        """The secret in ``blob``; SealError on a wrong passphrase or a damaged blob."""
        try:
            if blob.get("format") != SEAL_FORMAT or blob.get("aead") != AEAD_NAME:
                raise SealError("unsupported sealed-key format")
            kdf = blob["kdf"]
            if kdf.get("name") != "scrypt":
                raise SealError(f"unsupported key-derivation function {kdf.get('name')!r}")
            params = ScryptParams(int(kdf["n"]), int(kdf["r"]), int(kdf["p"]))
            salt = bytes.fromhex(kdf["salt"])
            check = bytes.fromhex(kdf["check"])
            key_salt = bytes.fromhex(blob["key_salt"])
            nonce = bytes.fromhex(blob["nonce"])
            ciphertext = bytes.fromhex(blob["ciphertext"])
        except (KeyError, TypeError, ValueError, AttributeError):
            raise SealError("the sealed key is malformed") from None
        cache_key = (kdf["salt"], params.n, params.r, params.p)
        master = self._masters.get(cache_key)
        if master is None:
            master = _stretch(self._passphrase, salt, params)
            if not hmac.compare_digest(_check_value(master), check):
                raise SealError("wrong passphrase")
            self._masters[cache_key] = master
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            return AESGCM(_blob_key(master, key_salt)).decrypt(
                nonce, ciphertext, _AAD_DOMAIN + context
            )
        except (InvalidTag, ValueError):
            raise SealError("the sealed key is damaged or does not belong here") from None


def read_passphrase(*, confirm: bool = False, prompt: str = "Passphrase: ") -> str:
    """The passphrase from $CHAOS_PASSPHRASE, else an interactive prompt (never echoed).

    ``confirm`` asks twice (when creating something sealed).  SealError when
    there is no terminal to ask on, or the answers differ or are empty.
    """
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env is not None:
        if not from_env:
            raise SealError(f"${PASSPHRASE_ENV} is set but empty")
        return from_env
    if not sys.stdin.isatty():
        raise SealError(f"a passphrase is needed: set ${PASSPHRASE_ENV} or run in a terminal")
    first = getpass.getpass(prompt)
    if not first:
        raise SealError("the passphrase is empty")
    if confirm and getpass.getpass("Repeat passphrase: ") != first:
        raise SealError("the passphrases do not match")
    return first

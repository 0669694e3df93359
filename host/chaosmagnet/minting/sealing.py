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
(tests) may pass cheaper ``ScryptParams`` explicitly.  Parameters read from
a blob are bounded (n <= 2^20, r <= 16, p <= 4, memory <= 1 GiB) before
anything is allocated.  New seals need a passphrase of at least 12 characters.  Nothing here ever logs,
prints or reprs a secret or a passphrase.
"""

from __future__ import annotations

import getpass
import hmac
import os
import sys
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from chaosmagnet.errors import SealError

PASSPHRASE_ENV = "CHAOS_PASSPHRASE"
SEAL_FORMAT = "chaosmagnet.sealed/1"
AEAD_NAME = "AES-256-GCM"
_CHECK_DOMAIN = b"chaosmagnet.seal.check/1"
_KEY_DOMAIN = b"chaosmagnet.seal.key/1"
_AAD_DOMAIN = b"chaosmagnet.seal.aad/1\x00"
MIN_PASSPHRASE_LENGTH = 12  # characters, for sealing (opening accepts what was sealed before)
# Bounds on scrypt parameters read from a file, checked before anything is allocated:
# a blob cannot make us reserve more than MAX_SCRYPT_MEMORY (scrypt needs 128 * r * n bytes).
MAX_SCRYPT_N = 2**20
MAX_SCRYPT_R = 16
MAX_SCRYPT_P = 4
MAX_SCRYPT_MEMORY = 2**30


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost parameters; the defaults are the strong ones used for real keys."""

    n: int = 2**17
    r: int = 8
    p: int = 1

    @property
    def memory_bytes(self) -> int:
        """The memory scrypt's big array takes for these parameters: 128 * r * n bytes."""
        return 128 * self.r * self.n

    def validate(self) -> None:
        """SealError if the parameters are not usable, or exceed the documented bounds."""
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (self.n, self.r, self.p)):
            raise SealError("scrypt parameters must be integers")
        if self.n < 2 or self.n & (self.n - 1) or self.n > MAX_SCRYPT_N:
            raise SealError("scrypt n must be a power of two between 2 and 2^20")
        if not 1 <= self.r <= MAX_SCRYPT_R or not 1 <= self.p <= MAX_SCRYPT_P:
            raise SealError(f"scrypt r must be 1..{MAX_SCRYPT_R} and p 1..{MAX_SCRYPT_P}")
        if self.memory_bytes > MAX_SCRYPT_MEMORY:
            raise SealError("scrypt parameters would need more than 1 GiB of memory")


DEFAULT_SCRYPT = ScryptParams()


def _stretch(passphrase: str, salt: bytes, params: ScryptParams) -> bytes:
    params.validate()
    if not passphrase:
        raise SealError("the passphrase is empty")
    try:
        kdf = Scrypt(salt=salt, length=32, n=params.n, r=params.r, p=params.p)
        return kdf.derive(passphrase.encode("utf-8"))
    except MemoryError:
        raise SealError(
            f"not enough memory for scrypt (n={params.n}, r={params.r}, p={params.p})"
        ) from None


def check_sealing_passphrase(passphrase: str) -> None:
    """SealError unless ``passphrase`` may seal new keys (at least MIN_PASSPHRASE_LENGTH characters)."""
    if not passphrase:
        raise SealError("the passphrase is empty")
    if len(passphrase) < MIN_PASSPHRASE_LENGTH:
        raise SealError(
            f"a passphrase that seals keys must be at least {MIN_PASSPHRASE_LENGTH} characters long"
        )


def _check_value(master: bytes) -> bytes:
    return hmac.new(master, _CHECK_DOMAIN, "sha256").digest()[:16]


def _blob_key(master: bytes, key_salt: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=key_salt, info=_KEY_DOMAIN).derive(
        master
    )


class Sealer:
    """Seals secrets under one passphrase; scrypt runs once, in the constructor."""

    def __init__(self, passphrase: str, params: ScryptParams = DEFAULT_SCRYPT) -> None:
        check_sealing_passphrase(passphrase)
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
            if not all(type(kdf[k]) is int for k in ("n", "r", "p")):
                raise SealError("the sealed key is malformed")
            params = ScryptParams(kdf["n"], kdf["r"], kdf["p"])
            params.validate()  # before anything is allocated
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
        try:
            return AESGCM(_blob_key(master, key_salt)).decrypt(
                nonce, ciphertext, _AAD_DOMAIN + context
            )
        except (InvalidTag, ValueError):
            raise SealError("the sealed key is damaged or does not belong here") from None


def read_passphrase(
    *, confirm: bool = False, prompt: str = "Passphrase: ", purpose: str = "", attempts: int = 3
) -> str:
    """The passphrase from $CHAOS_PASSPHRASE, else an interactive prompt (never echoed).

    ``purpose`` is said before the first prompt (what the passphrase protects).
    ``confirm`` asks twice (when creating something sealed) and asks again, up
    to ``attempts`` times, when the repeat differs or a new passphrase is too
    short.  SealError when there is no terminal to ask on, or no attempt succeeded.
    """
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env is not None:
        if not from_env:
            raise SealError(f"${PASSPHRASE_ENV} is set but empty")
        return from_env
    if not sys.stdin.isatty():
        raise SealError(f"a passphrase is needed: set ${PASSPHRASE_ENV} or run in a terminal")
    if purpose:
        print(purpose, file=sys.stderr, flush=True)
    for attempt in range(attempts):
        first = getpass.getpass(prompt)
        if not first:
            raise SealError("the passphrase is empty")
        if not confirm:
            return first
        try:
            check_sealing_passphrase(first)
        except SealError as exc:
            if attempt + 1 == attempts:
                raise
            print(f"{exc}; try again", file=sys.stderr, flush=True)
            continue
        if getpass.getpass("Repeat passphrase: ") == first:
            return first
        if attempt + 1 < attempts:
            print("the passphrases do not match; try again", file=sys.stderr, flush=True)
    raise SealError("the passphrases do not match")

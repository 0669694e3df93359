"""Sealing secret keys: round trip, wrong passphrase, damage, binding, strong defaults."""

from __future__ import annotations

import pytest
from chaosmagnet.errors import SealError
from chaosmagnet.minting import sealing
from chaosmagnet.minting.sealing import (
    DEFAULT_SCRYPT,
    ScryptParams,
    Sealer,
    Unsealer,
    read_passphrase,
)
from mint_helpers import FAST_SCRYPT

SECRET = bytes(range(64))
PW = "twelve chars at least"


def test_round_trip_and_context_binding() -> None:
    blob = Sealer("pass phrase one", FAST_SCRYPT).seal(SECRET, b"bundle|1|kem")
    assert Unsealer("pass phrase one").open(blob, b"bundle|1|kem") == SECRET
    assert SECRET.hex() not in repr(blob)
    with pytest.raises(SealError, match="does not belong here"):
        Unsealer("pass phrase one").open(blob, b"bundle|2|kem")  # moved to another bundle


def test_wrong_passphrase_is_a_clear_error() -> None:
    blob = Sealer("the right passphrase", FAST_SCRYPT).seal(SECRET, b"ctx")
    with pytest.raises(SealError, match="^wrong passphrase$"):
        Unsealer("wrong").open(blob, b"ctx")


@pytest.mark.parametrize("field", ["ciphertext", "nonce", "key_salt"])
def test_damaged_blob_is_detected(field: str) -> None:
    blob = Sealer(PW, FAST_SCRYPT).seal(SECRET, b"ctx")
    value = bytearray(bytes.fromhex(blob[field]))
    value[0] ^= 0x80
    blob[field] = value.hex()
    with pytest.raises(SealError, match="damaged"):
        Unsealer(PW).open(blob, b"ctx")


def test_malformed_blob() -> None:
    with pytest.raises(SealError, match="malformed"):
        Unsealer(PW).open({"format": "chaosmagnet.sealed/1", "aead": "AES-256-GCM"}, b"ctx")


def test_each_seal_uses_fresh_nonce_and_key_salt_but_one_stretch() -> None:
    sealer = Sealer(PW, FAST_SCRYPT)
    a, b = sealer.seal(SECRET, b"ctx"), sealer.seal(SECRET, b"ctx")
    assert (
        a["nonce"] != b["nonce"]
        and a["key_salt"] != b["key_salt"]
        and a["ciphertext"] != b["ciphertext"]
    )
    assert a["kdf"] == b["kdf"]  # stretched once per session
    unsealer = Unsealer(PW)
    assert unsealer.open(a, b"ctx") == unsealer.open(b, b"ctx") == SECRET


def test_defaults_are_strong_and_used_unless_overridden() -> None:
    assert DEFAULT_SCRYPT.n >= 2**17 and DEFAULT_SCRYPT.r >= 8
    blob = Sealer(PW).seal(SECRET, b"ctx")
    assert (blob["kdf"]["n"], blob["kdf"]["r"], blob["kdf"]["p"]) == (
        DEFAULT_SCRYPT.n,
        DEFAULT_SCRYPT.r,
        DEFAULT_SCRYPT.p,
    )


@pytest.mark.parametrize("params", [ScryptParams(n=1000), ScryptParams(n=2**23), ScryptParams(r=0)])
def test_bad_scrypt_parameters_refused(params: ScryptParams) -> None:
    with pytest.raises(SealError):
        Sealer(PW, params)


def test_empty_passphrase_refused() -> None:
    with pytest.raises(SealError, match="empty"):
        Sealer("", FAST_SCRYPT)


def test_passphrase_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sealing.PASSPHRASE_ENV, "from env")
    assert read_passphrase(confirm=True) == "from env"
    monkeypatch.setenv(sealing.PASSPHRASE_ENV, "")
    with pytest.raises(SealError, match="empty"):
        read_passphrase()


def test_no_passphrase_without_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sealing.PASSPHRASE_ENV, raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(SealError, match="CHAOS_PASSPHRASE"):
        read_passphrase()


def test_reprs_hide_secrets() -> None:
    sealer, unsealer = Sealer("hunter2hunter2", FAST_SCRYPT), Unsealer("hunter2hunter2")
    assert "hunter2" not in repr(sealer) and "hunter2" not in repr(unsealer)

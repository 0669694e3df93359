"""Tests for chaosmagnet.extractor, our own Keccak-f[1600] sponge in C.

The C code is held to things we did not write: published known-answer values,
Python's hashlib (OpenSSL) on thousands of lengths across block boundaries,
and hypothesis properties of the sponge (splitting input or output never
changes the stream).  Both compiled copies of the permutation (the run-time
dispatched one and the portable one) are checked.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import pickle
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from chaosmagnet import extractor
from chaosmagnet._keccak import ffi, lib
from chaosmagnet.errors import ChaosError, ExtractorError
from chaosmagnet.extractor import Sponge, sha3_256, sha3_512, shake128, shake256
from hypothesis import given, settings
from hypothesis import strategies as st

# --------------------------------------------------------------------------
# Known answers
# --------------------------------------------------------------------------

MSG_1600 = b"\xa3" * 200  # the 1600-bit message of the NIST examples

# Origins:
#   NIST-0, NIST-1600: NIST CSRC "Cryptographic Standards and Guidelines:
#     Examples with Intermediate Values", FIPS 202 files SHA3-256_Msg0.pdf,
#     SHA3-256_1600.pdf, SHA3-512_Msg0.pdf, SHA3-512_1600.pdf,
#     SHAKE128_Msg0.pdf, SHAKE128_Msg1600.pdf, SHAKE256_Msg0.pdf,
#     SHAKE256_Msg1600.pdf (for SHAKE: the first bytes of the 4096-bit output).
#   abc: the widely published "abc" values (for SHA-3, e.g. the table at
#     di-mgt.com.au "Test vectors for SHA-1, SHA-2 and SHA-3"); not from a
#     NIST example file.
# Every value was also confirmed with hashlib (OpenSSL 3.0) when written.


@dataclass(frozen=True)
class KnownAnswer:
    """One published input/output pair for a FIPS 202 function."""

    name: str
    function: str  # sha3_256, sha3_512, shake128, shake256
    message: bytes
    digest_hex: str
    origin: str


KNOWN_ANSWERS = [
    KnownAnswer("sha3_256-empty", "sha3_256", b"",
                "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a",
                "NIST-0"),
    KnownAnswer("sha3_256-abc", "sha3_256", b"abc",
                "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532",
                "abc"),
    KnownAnswer("sha3_256-a3x200", "sha3_256", MSG_1600,
                "79f38adec5c20307a98ef76e8324afbfd46cfd81b22e3973c65fa1bd9de31787",
                "NIST-1600"),
    KnownAnswer("sha3_512-empty", "sha3_512", b"",
                "a69f73cca23a9ac5c8b567dc185a756e97c982164fe25859e0d1dcc1475c80a6"
                "15b2123af1f5f94c11e3e9402c3ac558f500199d95b6d3e301758586281dcd26",
                "NIST-0"),
    KnownAnswer("sha3_512-abc", "sha3_512", b"abc",
                "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e"
                "10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0",
                "abc"),
    KnownAnswer("sha3_512-a3x200", "sha3_512", MSG_1600,
                "e76dfad22084a8b1467fcf2ffa58361bec7628edf5f3fdc0e4805dc48caeeca8"
                "1b7c13c30adf52a3659584739a2df46be589c51ca1a4a8416df6545a1ce8ba00",
                "NIST-1600"),
    KnownAnswer("shake128-empty", "shake128", b"",
                "7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26",
                "NIST-0"),
    KnownAnswer("shake128-abc", "shake128", b"abc",
                "5881092dd818bf5cf8a3ddb793fbcba74097d5c526a6d35f97b83351940f2cc8",
                "abc"),
    KnownAnswer("shake128-a3x200", "shake128", MSG_1600,
                "131ab8d2b594946b9c81333f9bb6e0ce75c3b93104fa3469d3917457385da037",
                "NIST-1600"),
    KnownAnswer("shake256-empty", "shake256", b"",
                "46b9dd2b0ba88d13233b3feb743eeb243fcd52ea62b81b82b50c27646ed5762f"
                "d75dc4ddd8c0f200cb05019d67b592f6fc821c49479ab48640292eacb3b7c4be",
                "NIST-0"),
    KnownAnswer("shake256-abc", "shake256", b"abc",
                "483366601360a8771c6863080cc4114d8db44530f8f1e1ee4f94ea37e78b5739"
                "d5a15bef186a5386c75744c0527e1faa9f8726e462a12a4feb06bd8801e751e4",
                "abc"),
    KnownAnswer("shake256-a3x200", "shake256", MSG_1600,
                "cd8a920ed141aa0407a22d59288652e9d9f1a7ee0c1e7c1ca699424da84a904d",
                "NIST-1600"),
]

# Keccak-f[1600] applied once and twice to the all-zero state: the first two
# lanes, from KeccakF-1600-IntermediateValues.txt in the Keccak team's
# reference package.
PERMUTATION_OF_ZERO = [
    ("once", 1, (0xF1258F7940E1DDE7, 0x84D5CCF933C0478A)),
    ("twice", 2, (0x2D5C954DF96ECB3C, 0x6A332CD07057B56D)),
]


@dataclass(frozen=True)
class Function:
    """One of our one-shot functions with its hashlib counterpart and sponge parameters."""

    name: str
    ours: Callable[[bytes], bytes]
    reference: Callable[[bytes], bytes]
    rate: int
    pad: int
    out_len: int


XOF_OUT = 300  # more than two SHAKE128 blocks of output

FUNCTIONS = [
    Function("sha3_256", sha3_256, lambda m: hashlib.sha3_256(m).digest(), 136, 0x06, 32),
    Function("sha3_512", sha3_512, lambda m: hashlib.sha3_512(m).digest(), 72, 0x06, 64),
    Function("shake128", lambda m: shake128(m, XOF_OUT),
             lambda m: hashlib.shake_128(m).digest(XOF_OUT), 168, 0x1F, XOF_OUT),
    Function("shake256", lambda m: shake256(m, XOF_OUT),
             lambda m: hashlib.shake_256(m).digest(XOF_OUT), 136, 0x1F, XOF_OUT),
]

# FIPS 202 instances without a one-shot function here, reached through Sponge.
SPONGE_INSTANCES = [
    ("sha3_224", 144, 0x06, lambda m, n: hashlib.sha3_224(m).digest()[:n], 28),
    ("sha3_256", 136, 0x06, lambda m, n: hashlib.sha3_256(m).digest()[:n], 32),
    ("sha3_384", 104, 0x06, lambda m, n: hashlib.sha3_384(m).digest()[:n], 48),
    ("sha3_512", 72, 0x06, lambda m, n: hashlib.sha3_512(m).digest()[:n], 64),
    ("shake128", 168, 0x1F, lambda m, n: hashlib.shake_128(m).digest(n), 400),
    ("shake256", 136, 0x1F, lambda m, n: hashlib.shake_256(m).digest(n), 400),
]


@pytest.fixture(params=["dispatched", "portable"])
def implementation(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a test with the fastest copy of the C code, then with the portable one."""
    previous = lib.chaos_keccak_force_portable(1 if request.param == "portable" else 0)
    try:
        yield extractor.implementation()
    finally:
        lib.chaos_keccak_force_portable(previous)


@pytest.mark.parametrize("vector", KNOWN_ANSWERS, ids=lambda v: v.name)
def test_known_answer(vector: KnownAnswer, implementation: str) -> None:
    expected = bytes.fromhex(vector.digest_hex)
    function = getattr(extractor, vector.function)
    if vector.function.startswith("shake"):
        assert function(vector.message, len(expected)) == expected
    else:
        assert function(vector.message) == expected


@pytest.mark.parametrize("vector", KNOWN_ANSWERS, ids=lambda v: v.name)
def test_known_answer_through_sponge(vector: KnownAnswer) -> None:
    rate, pad = {
        "sha3_256": (136, 0x06), "sha3_512": (72, 0x06),
        "shake128": (168, 0x1F), "shake256": (136, 0x1F),
    }[vector.function]
    expected = bytes.fromhex(vector.digest_hex)
    sponge = Sponge(rate, pad)
    for byte in vector.message:  # one byte at a time
        sponge.absorb(bytes([byte]))
    assert sponge.squeeze(len(expected)) == expected


@pytest.mark.parametrize(("name", "times", "lanes"), PERMUTATION_OF_ZERO,
                         ids=[p[0] for p in PERMUTATION_OF_ZERO])
def test_permutation_of_zero_state(name: str, times: int, lanes: tuple[int, int],
                                   implementation: str) -> None:
    state = ffi.new("uint64_t[25]")
    for _ in range(times):
        lib.chaos_keccak_f1600(state)
    assert (state[0], state[1]) == lanes


def test_both_permutation_copies_agree() -> None:
    rng = random.Random(1600)
    for _ in range(200):
        lanes = [rng.getrandbits(64) for _ in range(25)]
        results = []
        for portable in (0, 1):
            previous = lib.chaos_keccak_force_portable(portable)
            try:
                state = ffi.new("uint64_t[25]", lanes)
                lib.chaos_keccak_f1600(state)
                results.append(list(state))
            finally:
                lib.chaos_keccak_force_portable(previous)
        assert results[0] == results[1]
        assert results[0] != lanes


# --------------------------------------------------------------------------
# Differential tests against hashlib
# --------------------------------------------------------------------------

POOL = random.Random(202).randbytes(20_000)


def boundary_lengths(rate: int) -> list[int]:
    """Lengths at and around every block boundary up to 10,000 bytes (and 0)."""
    lengths = {0, 1, 7, 8, 9}
    for k in range(1, 10_000 // rate + 1):
        lengths.update({k * rate - 1, k * rate, k * rate + 1})
    return sorted(n for n in lengths if 0 <= n <= 10_000)


def random_lengths(seed: int, count: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(0, 10_000) for _ in range(count)]


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_differential_against_hashlib(function: Function, implementation: str) -> None:
    rng = random.Random(f"differential-{function.name}")
    lengths = boundary_lengths(function.rate) + random_lengths(rng.random(), 1500)
    for n in lengths:
        offset = rng.randrange(0, len(POOL) - n + 1)
        message = POOL[offset:offset + n]
        assert function.ours(message) == function.reference(message), f"length {n}"


@pytest.mark.parametrize(("name", "rate", "pad", "reference", "out_len"), SPONGE_INSTANCES,
                         ids=[i[0] for i in SPONGE_INSTANCES])
def test_sponge_instances_against_hashlib(name: str, rate: int, pad: int,
                                          reference: Callable[[bytes, int], bytes],
                                          out_len: int) -> None:
    rng = random.Random(f"instance-{name}")
    for n in boundary_lengths(rate)[::3] + random_lengths(rng.random(), 200):
        offset = rng.randrange(0, len(POOL) - n + 1)
        message = POOL[offset:offset + n]
        sponge = Sponge(rate, pad)
        sponge.absorb(message)
        assert sponge.squeeze(out_len) == reference(message, out_len), f"length {n}"


def random_splits(rng: random.Random, total: int, max_piece: int) -> list[int]:
    """Cut total into pieces of 0..max_piece (empty pieces included on purpose)."""
    pieces = []
    while total > 0:
        piece = min(total, rng.randint(0, max_piece))
        pieces.append(piece)
        total -= piece
    return pieces


@pytest.mark.parametrize(("name", "rate", "pad", "reference", "out_len"), SPONGE_INSTANCES,
                         ids=[i[0] for i in SPONGE_INSTANCES])
def test_incremental_absorb_equals_one_shot(name: str, rate: int, pad: int,
                                            reference: Callable[[bytes, int], bytes],
                                            out_len: int, implementation: str) -> None:
    rng = random.Random(f"split-{name}")
    for trial in range(60):
        n = rng.randint(0, 3000)
        message = POOL[trial:trial + n]
        max_piece = rng.choice([1, 7, rate - 1, rate, rate + 1, 2 * rate + 3, 1000])
        sponge = Sponge(rate, pad)
        position = 0
        for piece in random_splits(rng, n, max_piece):
            sponge.absorb(message[position:position + piece])
            position += piece
        assert position == n
        assert sponge.squeeze(out_len) == reference(message, out_len), (n, max_piece)


@pytest.mark.parametrize(("rate", "reference"), [
    (136, lambda m, n: hashlib.shake_256(m).digest(n)),
    (168, lambda m, n: hashlib.shake_128(m).digest(n)),
], ids=["shake256", "shake128"])
def test_squeeze_in_pieces_equals_one_long_squeeze(
        rate: int, reference: Callable[[bytes, int], bytes], implementation: str) -> None:
    rng = random.Random(f"squeeze-{rate}")
    for trial in range(40):
        message = POOL[trial:trial + rng.randint(0, 500)]
        total = rng.randint(0, 5000)
        expected = reference(message, total)
        sponge = Sponge(rate, 0x1F)
        sponge.absorb(message)
        out = bytearray()
        for piece in random_splits(rng, total, rng.choice([1, rate - 1, rate, rate + 1, 700])):
            if rng.random() < 0.5:
                out += sponge.squeeze(piece)
            else:
                chunk = np.empty(piece, dtype=np.uint8)
                assert sponge.squeeze_into(chunk) == piece
                out += chunk.tobytes()
        assert bytes(out) == expected


# --------------------------------------------------------------------------
# Properties (hypothesis)
# --------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(message=st.binary(max_size=1200),
       cuts=st.lists(st.integers(min_value=0, max_value=1200), max_size=12),
       rate=st.sampled_from([72, 104, 136, 144, 168]))
def test_property_absorb_split_does_not_matter(message: bytes, cuts: list[int],
                                               rate: int) -> None:
    whole = Sponge(rate, 0x1F)
    whole.absorb(message)
    pieces = Sponge(rate, 0x1F)
    bounds = sorted({0, len(message), *(min(c, len(message)) for c in cuts)})
    for start, end in zip(bounds, bounds[1:]):
        pieces.absorb(memoryview(message)[start:end])
    assert pieces.squeeze(2 * rate + 5) == whole.squeeze(2 * rate + 5)


@settings(max_examples=150, deadline=None)
@given(message=st.binary(max_size=400),
       pieces=st.lists(st.integers(min_value=0, max_value=400), max_size=10))
def test_property_squeeze_split_matches_hashlib(message: bytes, pieces: list[int]) -> None:
    sponge = Sponge()
    out = b"".join(sponge.squeeze(p) if i % 2 else _squeeze_via_buffer(sponge, p)
                   for i, p in enumerate(pieces))
    assert out == hashlib.shake_256(b"").digest(sum(pieces))
    sponge = Sponge(168, 0x1F)
    sponge.absorb(message)
    out = b"".join(sponge.squeeze(p) for p in pieces)
    assert out == hashlib.shake_128(message).digest(sum(pieces))


def _squeeze_via_buffer(sponge: Sponge, n: int) -> bytes:
    buffer = bytearray(n)
    sponge.squeeze_into(buffer)
    return bytes(buffer)


@settings(max_examples=100, deadline=None)
@given(message=st.binary(max_size=600))
def test_property_one_shot_functions_match_hashlib(message: bytes) -> None:
    assert sha3_256(message) == hashlib.sha3_256(message).digest()
    assert sha3_512(message) == hashlib.sha3_512(message).digest()
    assert shake128(message, 50) == hashlib.shake_128(message).digest(50)
    assert shake256(message, 50) == hashlib.shake_256(message).digest(50)


@settings(max_examples=100, deadline=None)
@given(a=st.binary(max_size=300), b=st.binary(max_size=300))
def test_property_different_messages_different_outputs(a: bytes, b: bytes) -> None:
    # Not a proof of collision resistance: it catches a sponge that ignores input.
    assert (shake256(a, 32) == shake256(b, 32)) == (a == b)


# --------------------------------------------------------------------------
# Inputs and outputs of every supported kind
# --------------------------------------------------------------------------


def test_absorb_accepts_every_supported_buffer_kind() -> None:
    message = POOL[:1000]
    expected = hashlib.shake_256(message).digest(64)
    array = np.frombuffer(message, dtype=np.uint8).copy()
    kinds = [
        message,
        bytearray(message),
        memoryview(message),
        array,
        array.reshape(10, 100),  # C-contiguous 2-D
        np.frombuffer(message, dtype=np.int8),
        np.concatenate([array, array])[:1000],  # contiguous slice of a larger array
    ]
    for data in kinds:
        sponge = Sponge()
        sponge.absorb(data)
        assert sponge.squeeze(64) == expected, type(data).__name__
    assert sha3_256(array) == hashlib.sha3_256(message).digest()


def test_squeeze_into_fills_buffers_in_place() -> None:
    reference = hashlib.shake_256(b"seed").digest(8 * 40)
    sponge = Sponge()
    sponge.absorb(b"seed")
    words = np.zeros(20, dtype=np.uint64)
    raw = bytearray(8 * 20)
    assert sponge.squeeze_into(words) == 160
    assert sponge.squeeze_into(memoryview(raw)) == 160
    assert words.tobytes() + bytes(raw) == reference


def test_zero_lengths() -> None:
    assert shake256(b"abc", 0) == b""
    sponge = Sponge()
    sponge.absorb(b"")
    assert sponge.squeeze(0) == b""
    assert sponge.squeeze_into(bytearray()) == 0
    # squeeze(0) already padded: the stream continues from the first byte.
    assert sponge.squeeze(10) == hashlib.shake_256(b"").digest(10)


def test_threads_on_separate_sponges() -> None:
    # cffi drops the GIL in the C calls: sponges in parallel must not interfere.
    messages = [POOL[i * 100:i * 100 + 5000] for i in range(8)]
    results: dict[int, bytes] = {}

    def work(i: int) -> None:
        sponge = Sponge()
        for _ in range(20):
            sponge.absorb(messages[i])
        results[i] = sponge.squeeze(32)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, message in enumerate(messages):
        assert results[i] == hashlib.shake_256(message * 20).digest(32)


# --------------------------------------------------------------------------
# copy, wipe, phase, repr
# --------------------------------------------------------------------------


def test_copy_while_absorbing_is_independent() -> None:
    original = Sponge()
    original.absorb(b"shared prefix " * 20)
    twin = original.copy()
    original.absorb(b"left")
    twin.absorb(b"right")
    assert original.squeeze(48) == hashlib.shake_256(b"shared prefix " * 20 + b"left").digest(48)
    assert twin.squeeze(48) == hashlib.shake_256(b"shared prefix " * 20 + b"right").digest(48)


def test_copy_while_squeezing_continues_the_same_stream() -> None:
    stream = hashlib.shake_256(b"x").digest(1000)
    original = Sponge()
    original.absorb(b"x")
    assert original.squeeze(137) == stream[:137]
    twin = copy.copy(original)
    deep = copy.deepcopy(original)
    assert twin.squeezing and deep.squeezing
    assert original.squeeze(500) == stream[137:637]
    assert twin.squeeze(863) == stream[137:]
    original.wipe()
    assert deep.squeeze(863) == stream[137:]


def test_phase_and_absorb_after_squeeze() -> None:
    sponge = Sponge()
    assert not sponge.squeezing
    sponge.absorb(b"a")
    sponge.squeeze(0)
    assert sponge.squeezing
    with pytest.raises(ExtractorError, match="already squeezing"):
        sponge.absorb(b"b")
    # the refused absorb changed nothing
    assert sponge.squeeze(16) == hashlib.shake_256(b"a").digest(16)


def test_wipe_zeroes_state_and_disables_the_sponge() -> None:
    sponge = Sponge()
    sponge.absorb(POOL[:777])
    state = sponge._state  # the C struct, inspected only here
    size = ffi.sizeof("chaos_keccak_state")
    assert ffi.buffer(state)[:] != bytes(size)
    sponge.wipe()
    assert ffi.buffer(state)[:] == bytes(size)
    assert sponge.wiped and not sponge.squeezing
    for call in (lambda: sponge.absorb(b"x"), lambda: sponge.squeeze(1),
                 lambda: sponge.squeeze_into(bytearray(1)), sponge.copy):
        with pytest.raises(ExtractorError, match="wiped"):
            call()
    sponge.wipe()  # wiping twice is harmless


def test_repr_shows_rate_and_phase_only() -> None:
    sponge = Sponge()
    assert repr(sponge) == "<Sponge rate_bytes=136 pad=0x1f absorbing>"
    sponge.absorb(POOL[:500])
    assert repr(sponge) == "<Sponge rate_bytes=136 pad=0x1f absorbing>"
    sponge.squeeze(1)
    assert repr(sponge) == "<Sponge rate_bytes=136 pad=0x1f squeezing>"
    assert str(sponge) == repr(sponge)
    assert not hasattr(sponge, "__dict__")
    sponge.wipe()
    assert repr(Sponge(72, 0x06)) == "<Sponge rate_bytes=72 pad=0x06 absorbing>"


def test_sponge_cannot_be_pickled() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Sponge())


# --------------------------------------------------------------------------
# Errors: checked in Python before any C call
# --------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0, 64, 71, 73, 100, 176, 200, -8])
def test_bad_rate(rate: int) -> None:
    with pytest.raises(ExtractorError, match="rate_bytes must be a multiple of 8"):
        Sponge(rate)


@pytest.mark.parametrize("pad", [0, 0x80, 0xFF, 256, -1])
def test_bad_pad(pad: int) -> None:
    with pytest.raises(ExtractorError, match="pad must be a byte"):
        Sponge(136, pad)


@pytest.mark.parametrize(("args", "message"), [
    (("136",), "rate_bytes must be an int"),
    ((136.0,), "rate_bytes must be an int"),
    ((True,), "rate_bytes must be an int"),
    ((136, "0x1f"), "pad must be an int"),
])
def test_bad_parameter_types(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        Sponge(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize(("data", "message"), [
    ("text", "not str"),
    (12, "not int"),
    (None, "not NoneType"),
    ([1, 2, 3], "not list"),
    (np.zeros(4, dtype=np.uint16), "one-byte items"),
    (np.zeros(4, dtype=np.float64), "one-byte items"),
    (np.zeros(4, dtype=bool), "one-byte items"),
    (np.zeros((4, 4), dtype=np.uint8)[:, ::2], "C-contiguous"),
    (memoryview(b"abcdef")[::2], "C-contiguous"),
], ids=["str", "int", "none", "list", "uint16", "float64", "bool", "strided", "strided-view"])
def test_bad_absorb_input(data: object, message: str) -> None:
    sponge = Sponge()
    with pytest.raises(TypeError, match=message):
        sponge.absorb(data)
    with pytest.raises(TypeError, match=message):
        sha3_256(data)
    # the sponge is untouched and still usable
    assert sponge.squeeze(8) == hashlib.shake_256(b"").digest(8)


@pytest.mark.parametrize(("n", "error", "message"), [
    (-1, ExtractorError, "must be >= 0"),
    (1.5, TypeError, "must be an int"),
    ("8", TypeError, "must be an int"),
    (False, TypeError, "must be an int"),
])
def test_bad_output_length(n: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        shake256(b"", n)  # type: ignore[arg-type]
    with pytest.raises(error, match=message):
        shake128(b"", n)  # type: ignore[arg-type]
    sponge = Sponge()
    with pytest.raises(error, match=message):
        sponge.squeeze(n)  # type: ignore[arg-type]
    assert not sponge.squeezing  # the refused squeeze did not pad


@pytest.mark.parametrize(("buffer", "message"), [
    (b"immutable", "writable"),
    (memoryview(bytearray(8))[::2], "C-contiguous"),
    (np.zeros((4, 4), dtype=np.uint8)[:, ::2], "C-contiguous"),
    (17, "not int"),
], ids=["bytes", "strided-view", "strided-array", "int"])
def test_bad_squeeze_buffer(buffer: object, message: str) -> None:
    sponge = Sponge()
    with pytest.raises(TypeError, match=message):
        sponge.squeeze_into(buffer)
    assert not sponge.squeezing


def test_extractor_error_is_a_chaos_error() -> None:
    assert issubclass(ExtractorError, ChaosError)


def test_implementation_is_named() -> None:
    assert extractor.implementation()


def test_generated_round_code_is_up_to_date() -> None:
    # keccak.c carries code generated from FIPS 202 by gen_rounds.py; they must agree.
    folder = Path(__file__).resolve().parent.parent / "csrc" / "keccak"
    spec = importlib.util.spec_from_file_location("gen_rounds", folder / "gen_rounds.py")
    assert spec is not None and spec.loader is not None
    gen_rounds = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_rounds)
    source = (folder / "keccak.c").read_text()
    start = source.index("/* GENERATED-BEGIN */\n") + len("/* GENERATED-BEGIN */\n")
    end = source.index("/* GENERATED-END */")
    assert source[start:end] == gen_rounds.generated() + "\n"
    # the constants the generator derives, against FIPS 202's first round constants
    assert gen_rounds.round_constant(0) == 0x1
    assert gen_rounds.round_constant(23) == 0x8000000080008008
    assert gen_rounds.rho_offsets()[(1, 0)] == 1 and gen_rounds.rho_offsets()[(4, 4)] == 14

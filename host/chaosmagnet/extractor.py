"""The Keccak extractor: SHA-3, SHAKE and a general sponge, computed by our own C code.

The pool conditions raw samples with a Keccak-f[1600] sponge (FIPS 202) that
lives in csrc/keccak and is reached through cffi as ``chaosmagnet._keccak``.
This module is the typed layer over it: it checks every argument and raises
:class:`~chaosmagnet.errors.ExtractorError` (bad values) or ``TypeError``
(wrong types) before any C code runs.  The one-shot functions exist mainly so
tests can hold the C sponge to published vectors and to hashlib.

Input buffers are passed to C without copying (``ffi.from_buffer``); cffi
releases the GIL during the C calls.
"""

from __future__ import annotations

import threading
from typing import Any, NoReturn

from chaosmagnet._keccak import ffi, lib
from chaosmagnet.errors import ExtractorError

__all__ = [
    "SHA3_PAD",
    "SHAKE_PAD",
    "SHA3_256_RATE",
    "SHA3_512_RATE",
    "SHAKE128_RATE",
    "SHAKE256_RATE",
    "Sponge",
    "implementation",
    "sha3_256",
    "sha3_512",
    "shake128",
    "shake256",
]

SHA3_PAD = 0x06
"""Domain/padding byte of SHA3-*: suffix bits 01, then the first bit of pad10*1."""
SHAKE_PAD = 0x1F
"""Domain/padding byte of SHAKE*: suffix bits 1111, then the first bit of pad10*1."""

SHA3_256_RATE = 136
SHA3_512_RATE = 72
SHAKE128_RATE = 168
SHAKE256_RATE = 136

#: Address of chaos_keccak_absorb, for C kernels in other modules that absorb
#: while they work on a buffer (the engine's ingest, csrc/health/ingest.c).
ABSORB_FUNCTION_ADDRESS = int(ffi.cast("uintptr_t", ffi.addressof(lib, "chaos_keccak_absorb")))

MIN_RATE = lib.CHAOS_KECCAK_MIN_RATE
MAX_RATE = lib.CHAOS_KECCAK_MAX_RATE

_BYTE_FORMATS = frozenset({"B", "b", "c"})


def implementation() -> str:
    """Name the copy of the Keccak code that runs on this CPU (for benchmarks)."""
    return ffi.string(lib.chaos_keccak_implementation()).decode("ascii")


def _input_buffer(data: Any, what: str = "data") -> tuple[Any, int]:
    """Return (cdata, nbytes) viewing data without a copy, or raise TypeError.

    Accepts bytes, bytearray, memoryview and numpy arrays that are C-contiguous
    with one-byte items.  Wider items are refused: their bytes depend on the
    machine's byte order, so hashing them would not be portable.
    """
    if isinstance(data, str):
        raise TypeError(f"{what} must be bytes-like, not str (encode it first)")
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(
            f"{what} must be bytes, bytearray, memoryview or a uint8 numpy array, "
            f"not {type(data).__name__}"
        ) from None
    with view:
        if view.format not in _BYTE_FORMATS:
            raise TypeError(
                f"{what} must have one-byte items (uint8), not format {view.format!r}; "
                "pass a uint8 view of it"
            )
        if not view.c_contiguous:
            raise TypeError(f"{what} must be C-contiguous")
        nbytes = view.nbytes
    return ffi.from_buffer("uint8_t[]", data), nbytes


def _output_buffer(buffer: Any) -> tuple[Any, int]:
    """Return (cdata, nbytes) for a writable C-contiguous buffer, or raise TypeError."""
    try:
        view = memoryview(buffer)
    except TypeError:
        raise TypeError(
            f"buffer must be a writable bytes-like object, not {type(buffer).__name__}"
        ) from None
    with view:
        if view.readonly:
            raise TypeError("buffer must be writable")
        if not view.c_contiguous:
            raise TypeError("buffer must be C-contiguous")
        nbytes = view.nbytes
    return ffi.from_buffer("uint8_t[]", buffer, require_writable=True), nbytes


def _check_length(n: Any, what: str = "n") -> int:
    """Return n as a non-negative int, or raise TypeError / ExtractorError."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{what} must be an int, not {type(n).__name__}")
    if n < 0:
        raise ExtractorError(f"{what} must be >= 0, got {n}")
    return n


def _hash(rate: int, pad: int, data: Any, n: int) -> bytes:
    src, nbytes = _input_buffer(data)
    out = ffi.new("uint8_t[]", n)
    rc = lib.chaos_keccak_hash(rate, pad, src, nbytes, out, n)
    if rc != lib.CHAOS_KECCAK_OK:  # pragma: no cover - constants are valid
        raise ExtractorError(f"keccak: bad sponge parameters (code {rc})")
    return ffi.buffer(out, n)[:]


def sha3_256(data: Any) -> bytes:
    """SHA3-256 of data (FIPS 202), 32 bytes, computed by our C sponge."""
    return _hash(SHA3_256_RATE, SHA3_PAD, data, 32)


def sha3_512(data: Any) -> bytes:
    """SHA3-512 of data (FIPS 202), 64 bytes, computed by our C sponge."""
    return _hash(SHA3_512_RATE, SHA3_PAD, data, 64)


def shake128(data: Any, n: int) -> bytes:
    """The first n bytes of SHAKE128(data) (FIPS 202), computed by our C sponge."""
    return _hash(SHAKE128_RATE, SHAKE_PAD, data, _check_length(n))


def shake256(data: Any, n: int) -> bytes:
    """The first n bytes of SHAKE256(data) (FIPS 202), computed by our C sponge."""
    return _hash(SHAKE256_RATE, SHAKE_PAD, data, _check_length(n))


class Sponge:
    """A Keccak-f[1600] sponge (FIPS 202): absorb any bytes, then squeeze a stream.

    ``rate_bytes`` is the block size in bytes, a multiple of 8 from 72 to 168
    (capacity = 200 - rate bytes); ``pad`` is the domain/padding byte, 0x1F for
    SHAKE and 0x06 for SHA-3.  The default is SHAKE256.

    The sponge is in one of two phases.  While *absorbing*, ``absorb`` may be
    called any number of times; the input is one message however it is split.
    The first ``squeeze`` (or ``squeeze_into``), even of zero bytes, pads the
    message and switches to *squeezing*; later squeezes continue the same
    output stream.  Absorbing after squeezing has started raises
    ExtractorError: start a new sponge (or absorb into a copy taken earlier).

    The state is secret: it is never shown by ``repr`` and is zeroed by
    ``wipe()`` and when the object is garbage-collected.  After ``wipe()`` the
    sponge refuses every operation.  Calls on one sponge from several threads
    are serialised by an internal lock.
    """

    __slots__ = ("_state", "_lock", "_rate", "_pad", "_wiped", "__weakref__")

    def __init__(self, rate_bytes: int = SHAKE256_RATE, pad: int = SHAKE_PAD) -> None:
        if isinstance(rate_bytes, bool) or not isinstance(rate_bytes, int):
            raise TypeError(f"rate_bytes must be an int, not {type(rate_bytes).__name__}")
        if isinstance(pad, bool) or not isinstance(pad, int):
            raise TypeError(f"pad must be an int, not {type(pad).__name__}")
        if not (MIN_RATE <= rate_bytes <= MAX_RATE) or rate_bytes % 8:
            raise ExtractorError(
                f"rate_bytes must be a multiple of 8 from {MIN_RATE} to {MAX_RATE}, "
                f"got {rate_bytes}"
            )
        if not 0x01 <= pad <= 0x7F:
            raise ExtractorError(f"pad must be a byte from 0x01 to 0x7f, got {pad:#x}")
        self._state = self._new_state()
        rc = lib.chaos_keccak_init(self._state, rate_bytes, pad)
        if rc != lib.CHAOS_KECCAK_OK:  # pragma: no cover - checked above
            raise ExtractorError(f"keccak: bad sponge parameters (code {rc})")
        self._lock = threading.Lock()
        self._rate = rate_bytes
        self._pad = pad
        self._wiped = False

    @staticmethod
    def _new_state() -> Any:
        # ffi.gc wipes the state before cffi frees it.
        return ffi.gc(ffi.new("chaos_keccak_state *"), lib.chaos_keccak_wipe)

    @property
    def rate_bytes(self) -> int:
        """Bytes absorbed or squeezed per permutation (the sponge's rate)."""
        return self._rate

    @property
    def pad(self) -> int:
        """The domain/padding byte appended to the message by the first squeeze."""
        return self._pad

    @property
    def squeezing(self) -> bool:
        """True once the first squeeze has padded the message (absorbing is over)."""
        return not self._wiped and bool(self._state.squeezing)

    @property
    def wiped(self) -> bool:
        """True after wipe(): the state is zero and the sponge can no longer be used."""
        return self._wiped

    def _check_usable(self) -> None:
        if self._wiped:
            raise ExtractorError("the sponge has been wiped")

    def absorb(self, data: Any) -> None:
        """Absorb data: bytes, bytearray, memoryview or a C-contiguous uint8 numpy array.

        The buffer is read in place, without a copy.  Raises ExtractorError if
        squeezing has already started (FIPS 202 sponges take no input after
        output) or the sponge was wiped, TypeError for unsupported data.
        """
        src, nbytes = _input_buffer(data)
        with self._lock:
            self._check_usable()
            if self._state.squeezing:
                raise ExtractorError("cannot absorb: the sponge is already squeezing")
            rc = lib.chaos_keccak_absorb(self._state, src, nbytes)
        if rc != lib.CHAOS_KECCAK_OK:  # pragma: no cover - phase checked above
            raise ExtractorError(f"keccak: absorb failed (code {rc})")

    def absorb_pointer(self) -> Any:
        """The C state (a ``chaos_keccak_state *``) for a kernel that absorbs through
        ABSORB_FUNCTION_ADDRESS.

        The caller must have exclusive use of the sponge while the kernel runs
        (the pool calls it under its lock).  Raises as absorb() would.
        """
        with self._lock:
            self._check_usable()
            if self._state.squeezing:
                raise ExtractorError("cannot absorb: the sponge is already squeezing")
            return self._state

    def squeeze(self, n: int) -> bytes:
        """Return the next n output bytes; the first squeeze pads the message."""
        n = _check_length(n)
        out = ffi.new("uint8_t[]", n)
        with self._lock:
            self._check_usable()
            lib.chaos_keccak_squeeze(self._state, out, n)
        return ffi.buffer(out, n)[:]

    def squeeze_into(self, buffer: Any) -> int:
        """Fill a writable C-contiguous buffer with the next output bytes, in place.

        Any item type is accepted (the buffer receives raw bytes); returns the
        number of bytes written.  The first squeeze pads the message.
        """
        dst, nbytes = _output_buffer(buffer)
        with self._lock:
            self._check_usable()
            lib.chaos_keccak_squeeze(self._state, dst, nbytes)
        return nbytes

    def copy(self) -> Sponge:
        """Return an independent sponge in the same state (same phase, same future output)."""
        twin = Sponge.__new__(Sponge)
        twin._state = self._new_state()
        twin._lock = threading.Lock()
        twin._rate = self._rate
        twin._pad = self._pad
        with self._lock:
            self._check_usable()
            lib.chaos_keccak_copy(twin._state, self._state)
        twin._wiped = False
        return twin

    def wipe(self) -> None:
        """Zero the state (in a way the compiler cannot skip); the sponge is then unusable."""
        with self._lock:
            lib.chaos_keccak_wipe(self._state)
            self._wiped = True

    def __copy__(self) -> Sponge:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> Sponge:
        return self.copy()

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Sponge holds secret state and cannot be pickled")

    def __repr__(self) -> str:
        phase = "wiped" if self._wiped else ("squeezing" if self.squeezing else "absorbing")
        return f"<Sponge rate_bytes={self._rate} pad={self._pad:#04x} {phase}>"

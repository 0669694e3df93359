"""Shared helpers for calling the SP 800-90B C kernels (chaosmagnet._sp80090b).

numpy loads only when an array is given or made: bytes in, the binary
assessment runs without it (its import is most of a 1-bit run's start-up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chaosmagnet._sp80090b import ffi, lib
from chaosmagnet.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["SymbolBuffer", "byte_counts", "check_rc", "ffi", "lib", "prefer_mmap", "symbol_bytes", "symbols_array"]

#: One symbol per byte: a 1-D numpy array of integers 0..255, or bytes-like data.
SymbolBuffer = Any


def symbols_array(data: np.ndarray, what: str = "data") -> np.ndarray:
    """Return data as a C-contiguous 1-D uint8 array, or raise UsageError."""
    import numpy as np

    arr = np.asarray(data)
    if arr.ndim != 1:
        raise UsageError(f"{what} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if arr.size and (
            not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() > 255
        ):
            raise UsageError(f"{what} must hold symbols 0..255")
        arr = arr.astype(np.uint8)
    return np.ascontiguousarray(arr)


def symbol_bytes(data: SymbolBuffer, what: str = "data") -> SymbolBuffer:
    """data as a C-contiguous buffer of bytes for the kernels: bytes-like data as a
    memoryview (no numpy), anything else through symbols_array."""
    if isinstance(data, (bytes, bytearray)):
        return memoryview(data)
    if isinstance(data, memoryview):
        if data.ndim != 1 or not data.c_contiguous:
            raise UsageError(f"{what} must be one-dimensional and contiguous")
        return data if data.format == "B" else data.cast("B")
    return symbols_array(data, what)


def byte_counts(data: SymbolBuffer) -> list[int]:
    """How often each byte value 0..255 occurs in data: np.bincount without its
    8-bytes-per-sample copy (and without numpy)."""
    buf = symbol_bytes(data)
    counts = ffi.new("int64_t[256]")
    check_rc(lib.sp_byte_counts(ffi.from_buffer("uint8_t[]", buf), len(buf), counts), "byte_counts")
    return list(counts)


def check_rc(rc: int, what: str) -> None:
    """Turn a kernel's return code into an exception (0 is success)."""
    if rc == lib.SP_ERR_NOMEM:
        raise MemoryError(f"{what}: out of memory")
    if rc != 0:
        raise UsageError(f"{what}: invalid arguments (code {rc})")


def prefer_mmap() -> None:
    """Serve large buffers from mmap for the rest of the process, so that memory an
    estimator frees leaves the resident size (glibc; elsewhere nothing).  For the
    processes that run an assessment: it is a process-wide malloc setting."""
    lib.sp_prefer_mmap()

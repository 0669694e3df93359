"""Shared helpers for calling the SP 800-90B C kernels (chaosmagnet._sp80090b)."""

from __future__ import annotations

import numpy as np

from chaosmagnet._sp80090b import ffi, lib
from chaosmagnet.errors import UsageError

__all__ = ["byte_counts", "check_rc", "ffi", "lib", "prefer_mmap", "symbols_array"]


def symbols_array(data: np.ndarray, what: str = "data") -> np.ndarray:
    """Return data as a C-contiguous 1-D uint8 array, or raise UsageError."""
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


def byte_counts(data: np.ndarray) -> np.ndarray:
    """How often each byte value 0..255 occurs in data (uint8): np.bincount without
    its 8-bytes-per-sample copy."""
    arr = symbols_array(data)
    counts = np.zeros(256, dtype=np.int64)
    check_rc(lib.sp_byte_counts(ffi.from_buffer("uint8_t[]", arr), arr.size, ffi.from_buffer("int64_t[]", counts)), "byte_counts")
    return counts

"""Suffix and LCP arrays (C kernel): the building block of the t-tuple and LRS
estimators (SP 800-90B §6.3.5-6.3.6) and of the IID LRS test (§5.2.5).

``suffix_array`` sorts all suffixes of a symbol sequence (SA-IS, linear time);
``lcp_array`` gives the longest common prefix of each suffix with the one
before it in sorted order (Phi algorithm, linear time).  ``tuple_counts``
derives, for every tuple length t, the largest occurrence count of any
t-tuple and the number of colliding pairs of t-tuples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chaosmagnet.assessment._kernel import SymbolBuffer, byte_counts, check_rc, ffi, lib, symbol_bytes, symbols_array
from chaosmagnet.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "bit_lcp_array",
    "bit_tuple_counts",
    "bit_tuple_counts_lists",
    "lcp_array",
    "longest_repeat",
    "suffix_array",
    "tuple_counts",
    "tuple_counts_lists",
]

_MAX_LEN = 2**31 - 2

#: cffi buffers the kernels fill completely: no zeroing first.
_uncleared = ffi.new_allocator(should_clear_after_alloc=False)


def suffix_array(data: np.ndarray) -> np.ndarray:
    """Return the suffix array of data (uint8 symbols) as int32 start positions.

    A suffix sorts before every suffix it is a proper prefix of.
    """
    import numpy as np

    text = symbols_array(data)
    n = text.size
    if n > _MAX_LEN:
        raise UsageError(f"sequence too long for a suffix array ({n} symbols)")
    sa = np.empty(n, dtype=np.int32)
    if n == 0:
        return sa
    alphabet = int(text.max()) + 1
    rc = lib.sp_suffix_array(
        ffi.from_buffer("uint8_t[]", text), n, alphabet, ffi.from_buffer("int32_t[]", sa)
    )
    check_rc(rc, "suffix_array")
    return sa


def lcp_array(data: np.ndarray, sa: np.ndarray) -> np.ndarray:
    """Return the LCP array for data and its suffix array sa (int32).

    lcp[0] is 0; lcp[i] is the length of the longest common prefix of the
    suffixes starting at sa[i-1] and sa[i].
    """
    import numpy as np

    text = symbols_array(data)
    sa_arr = np.ascontiguousarray(sa, dtype=np.int32)
    n = text.size
    if sa_arr.ndim != 1 or sa_arr.size != n:
        raise UsageError(f"suffix array has {sa_arr.size} entries for {n} symbols")
    lcp = np.empty(n, dtype=np.int32)
    if n == 0:
        return lcp
    if int(sa_arr.min()) < 0 or int(sa_arr.max()) >= n:
        raise UsageError("suffix array holds positions outside the sequence")
    rc = lib.sp_lcp_array(
        ffi.from_buffer("uint8_t[]", text),
        n,
        ffi.from_buffer("int32_t[]", sa_arr),
        ffi.from_buffer("int32_t[]", lcp),
    )
    check_rc(rc, "lcp_array")
    return lcp


def bit_lcp_array(bits: np.ndarray, budget_factor: float = 3.0) -> np.ndarray | None:
    """LCP array (suffix order) of a 0/1 sequence without building its suffix array.

    Radix sorts the suffixes' 40-bit prefixes and compares longer ties 64 bits
    at a time.  Returns None when ties (long repeats) would take more than
    budget_factor x len(bits) steps; lcp_array(bits, suffix_array(bits)) is
    then the linear-time way.
    """
    import numpy as np

    text = symbols_array(bits, "bits")
    n = text.size
    if n > _MAX_LEN:
        raise UsageError(f"sequence too long for a suffix array ({n} symbols)")
    lcp = np.empty(n, dtype=np.int32)
    if n == 0:
        return lcp
    budget = int(budget_factor * n) + 1024
    rc = lib.sp_bit_lcp_array(
        ffi.from_buffer("uint8_t[]", text), n, ffi.from_buffer("int32_t[]", lcp), budget
    )
    if rc == lib.SP_ERR_BUDGET:
        return None
    check_rc(rc, "bit_lcp_array")
    return lcp


#: Longest repeat bit_tuple_counts follows; a longer one goes the suffix-array way.
_BIT_TUPLE_CAP = 8192


def bit_tuple_counts_lists(bits: SymbolBuffer, budget_factor: float = 3.0) -> tuple[list[int], list[int]] | None:
    """bit_tuple_counts as two lists (no numpy): what the t-tuple and LRS estimates need."""
    text = symbol_bytes(bits, "bits")
    n = len(text)
    if n > _MAX_LEN:
        raise UsageError(f"sequence too long for a suffix array ({n} symbols)")
    if n == 0:
        raise UsageError("bit_tuple_counts needs a non-empty sequence")
    cap = min(n, _BIT_TUPLE_CAP)
    q = ffi.new("int64_t[]", cap + 1)
    pairs = ffi.new("uint64_t[]", cap + 1)
    longest = ffi.new("int32_t *")
    rc = lib.sp_bit_tuple_counts(
        ffi.from_buffer("uint8_t[]", text), n, int(budget_factor * n) + 1024, cap, q, pairs, longest
    )
    if rc in (lib.SP_ERR_BUDGET, lib.SP_ERR_LONG):
        return None
    check_rc(rc, "bit_tuple_counts")
    v = int(longest[0])
    return list(q[0 : v + 1]), list(pairs[0 : v + 1])


def tuple_counts_lists(data: SymbolBuffer) -> tuple[list[int], list[int]]:
    """tuple_counts(lcp_array(data, suffix_array(data))) as two lists, without numpy:
    the suffix and LCP arrays live in C buffers only as long as they are needed."""
    text = symbol_bytes(data)
    n = len(text)
    if n > _MAX_LEN:
        raise UsageError(f"sequence too long for a suffix array ({n} symbols)")
    if n == 0:
        raise UsageError("tuple_counts needs a non-empty sequence")
    text_ptr = ffi.from_buffer("uint8_t[]", text)
    alphabet = max(value for value, count in enumerate(byte_counts(text)) if count) + 1
    sa = _uncleared("int32_t[]", n)
    check_rc(lib.sp_suffix_array(text_ptr, n, alphabet, sa), "suffix_array")
    lcp = _uncleared("int32_t[]", n)
    check_rc(lib.sp_lcp_array(text_ptr, n, sa, lcp), "lcp_array")
    del sa
    v = int(lib.sp_lcp_max(lcp, n))
    q = ffi.new("int64_t[]", v + 1)
    pairs = ffi.new("uint64_t[]", v + 1)
    check_rc(lib.sp_tuple_counts(lcp, n, v, q, pairs), "tuple_counts")
    return list(q), list(pairs)


def bit_tuple_counts(bits: np.ndarray, budget_factor: float = 3.0) -> tuple[np.ndarray, np.ndarray] | None:
    """tuple_counts(bit_lcp_array(bits)) for a 0/1 sequence, without either array.

    The suffixes are sorted a 16-bit bucket at a time and their LCPs counted as
    they come, so the memory is about half a byte per bit instead of eight.
    Returns None when bit_lcp_array would (long repeats), or for a repeat longer
    than 8,192 bits: the suffix-array route is then the linear-time way.
    """
    import numpy as np

    counts = bit_tuple_counts_lists(bits, budget_factor)
    if counts is None:
        return None
    return np.array(counts[0], dtype=np.int64), np.array(counts[1], dtype=np.uint64)


def longest_repeat(lcp: np.ndarray) -> int:
    """Length of the longest repeated substring: the largest LCP value."""
    import numpy as np

    arr = np.ascontiguousarray(lcp, dtype=np.int32)
    if arr.size == 0:
        return 0
    return int(lib.sp_lcp_max(ffi.from_buffer("int32_t[]", arr), arr.size))


def tuple_counts(lcp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (q, pairs) for tuple lengths 0..v, v being the longest repeat.

    q[t] is the largest number of overlapping occurrences of any t-tuple and
    pairs[t] the sum over distinct t-tuples of C(count, 2); index 0 is unused.
    """
    import numpy as np

    arr = np.ascontiguousarray(lcp, dtype=np.int32)
    n = arr.size
    if n == 0:
        raise UsageError("tuple_counts needs a non-empty LCP array")
    v = longest_repeat(arr)
    q = np.zeros(v + 1, dtype=np.int64)
    pairs = np.zeros(v + 1, dtype=np.uint64)
    rc = lib.sp_tuple_counts(
        ffi.from_buffer("int32_t[]", arr),
        n,
        v,
        ffi.from_buffer("int64_t[]", q),
        ffi.from_buffer("uint64_t[]", pairs),
    )
    check_rc(rc, "tuple_counts")
    return q, pairs

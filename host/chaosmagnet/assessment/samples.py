"""Sample files for the SP 800-90B assessment: one sample per byte, the low B
bits being the symbol (the format of `chaos-host sample` and of NIST's
ea_non_iid / ea_iid tools).

``load_samples`` reads and validates a file, ``samples_from_bytes`` the bytes
read elsewhere (standard input); bad input raises InputFileError (the data) or
UsageError (the bit width) with a one-line message.  Every SampleFile carries
the SHA-256 of the bytes it was read from, so a result can be tied to its data.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chaosmagnet.errors import InputFileError, UsageError

try:  # CPython's own SHA-256: hashlib would load OpenSSL, some megabytes, for one digest
    from _sha256 import sha256 as _sha256
except ImportError:  # Python 3.12+ names it _sha2; other interpreters: hashlib
    try:
        from _sha2 import sha256 as _sha256  # type: ignore[no-redef]
    except ImportError:
        from hashlib import sha256 as _sha256  # type: ignore[assignment]

__all__ = [
    "MIN_SAMPLES",
    "SampleFile",
    "check_bits",
    "infer_bits",
    "load_samples",
    "samples_from_bytes",
    "short_input_warning",
]

#: SP 800-90B §3.1.1 asks for at least this many consecutive samples.
MIN_SAMPLES = 1_000_000


@dataclass(frozen=True)
class SampleFile:
    """A loaded sample file: the samples, their width in bits, any warnings and the data's SHA-256."""

    path: Path
    samples: np.ndarray
    bits: int
    warnings: tuple[str, ...] = field(default=())
    sha256: str = ""


def infer_bits(samples: np.ndarray) -> int:
    """Smallest width B (1..8) that holds every value in samples."""
    if samples.size == 0:
        return 1
    top = int(np.bitwise_or.reduce(samples.astype(np.uint8, copy=False)))
    return max(1, top.bit_length())


def check_bits(samples: np.ndarray, bits: int) -> None:
    """Raise UsageError unless 1 <= bits <= 8, InputFileError if a value is wider."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 8:
        raise UsageError(f"bits per sample must be between 1 and 8, got {bits!r}")
    if bits == 8 or samples.size == 0 or int(samples.max()) >> bits == 0:
        return
    wide = np.flatnonzero(samples >> bits)
    if wide.size:
        offset = int(wide[0])
        value = int(samples[offset])
        raise InputFileError(
            f"value {value} (0x{value:02x}) at offset {offset} does not fit in {bits} bits "
            f"({wide.size} such samples); pass a larger --bits"
        )


def short_input_warning(count: int) -> str | None:
    """The warning for fewer samples than the standard asks for, or None."""
    if count < MIN_SAMPLES:
        return (
            f"only {count:,} samples: SP 800-90B asks for at least {MIN_SAMPLES:,}; "
            "estimates from fewer samples are less reliable"
        )
    return None


def load_samples(path: str | os.PathLike[str], bits: int | None = None) -> SampleFile:
    """Read a sample file (one sample per byte) and validate it against bits.

    bits defaults to the smallest width holding every value.  Raises
    InputFileError for a missing, unreadable, non-regular or empty file or a
    value wider than bits, and UsageError for bits outside 1..8.
    """
    if bits is not None and (
        isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 8
    ):
        raise UsageError(f"bits per sample must be between 1 and 8, got {bits!r}")
    p = Path(path)
    try:
        info = os.stat(p)
    except FileNotFoundError:
        raise InputFileError(f"{p}: no such file") from None
    except OSError as exc:
        raise InputFileError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise InputFileError(f"{p}: is {kind}; expected a file of samples")
    try:
        with open(p, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InputFileError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if not data:
        raise InputFileError(f"{p}: is empty; expected one sample per byte")
    return samples_from_bytes(data, bits, p)


def samples_from_bytes(data: bytes, bits: int | None = None, path: str | os.PathLike[str] = "-") -> SampleFile:
    """Validate samples already read (one per byte, e.g. from standard input) against bits.

    ``path`` only names the data in messages and results ("-" for standard
    input).  Raises InputFileError for empty data or a value wider than bits,
    UsageError for bits outside 1..8.
    """
    p = Path(path)
    if bits is not None and (
        isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 8
    ):
        raise UsageError(f"bits per sample must be between 1 and 8, got {bits!r}")
    if not data:
        where = "standard input" if str(path) == "-" else str(p)
        raise InputFileError(f"{where}: is empty; expected one sample per byte")
    samples = np.frombuffer(data, dtype=np.uint8)
    warnings: list[str] = []
    if bits is None:
        bits = infer_bits(samples)
    else:
        check_bits(samples, bits)
        used = infer_bits(samples)
        if used < bits:
            warnings.append(
                f"samples use only {used} of the {bits} bits given; the bitstring "
                "assessment counts the unused bits as constant"
            )
    short = short_input_warning(samples.size)
    if short:
        warnings.append(short)
    return SampleFile(
        path=p,
        samples=samples,
        bits=int(bits),
        warnings=tuple(warnings),
        sha256=_sha256(data).hexdigest(),
    )

"""Sample files for the SP 800-90B assessment: one sample per byte, the low B
bits being the symbol (the format of `chaos-host sample` and of NIST's
ea_non_iid / ea_iid tools).

``load_samples`` reads and validates a file, ``samples_from_bytes`` the bytes
read elsewhere (standard input); bad input raises InputFileError (the data) or
UsageError (the bit width) with a one-line message.  Every SampleFile carries
the SHA-256 of the bytes it was read from, so a result can be tied to its data.
"""

from __future__ import annotations

import numbers
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from chaosmagnet.assessment._kernel import SymbolBuffer, byte_counts, symbol_bytes
from chaosmagnet.errors import InputFileError, UsageError

if TYPE_CHECKING:
    import numpy as np

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
    """A loaded sample file: its bytes (one sample each), their width in bits, any
    warnings and the data's SHA-256."""

    path: Path
    data: bytes
    bits: int
    warnings: tuple[str, ...] = field(default=())
    sha256: str = ""

    @property
    def samples(self) -> np.ndarray:
        """The samples as a read-only uint8 array over the same bytes (numpy loads here)."""
        import numpy as np

        return np.frombuffer(self.data, dtype=np.uint8)


def infer_bits(samples: SymbolBuffer) -> int:
    """Smallest width B (1..8) that holds every value in samples."""
    counts = byte_counts(samples)
    top = max((value for value, count in enumerate(counts) if count), default=0)
    return max(1, top.bit_length())


def _valid_bits(bits: object) -> bool:
    return not isinstance(bits, bool) and isinstance(bits, numbers.Integral) and 1 <= int(bits) <= 8


def check_bits(samples: SymbolBuffer, bits: int) -> None:
    """Raise UsageError unless 1 <= bits <= 8, InputFileError if a value is wider."""
    if not _valid_bits(bits):
        raise UsageError(f"bits per sample must be between 1 and 8, got {bits!r}")
    if bits == 8:
        return
    wide = sum(byte_counts(samples)[1 << bits :])
    if wide:
        flagged = bytes(symbol_bytes(samples)).translate(bytes(int(v >> bits != 0) for v in range(256)))
        offset = flagged.find(1)
        value = int(symbol_bytes(samples)[offset])
        raise InputFileError(
            f"value {value} (0x{value:02x}) at offset {offset} does not fit in {bits} bits "
            f"({wide} such samples); pass a larger --bits"
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
    if bits is not None and not _valid_bits(bits):
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
    if bits is not None and not _valid_bits(bits):
        raise UsageError(f"bits per sample must be between 1 and 8, got {bits!r}")
    if not data:
        where = "standard input" if str(path) == "-" else str(p)
        raise InputFileError(f"{where}: is empty; expected one sample per byte")
    data = bytes(data)
    samples = memoryview(data)
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
    short = short_input_warning(len(data))
    if short:
        warnings.append(short)
    return SampleFile(
        path=p,
        data=data,
        bits=int(bits),
        warnings=tuple(warnings),
        sha256=_sha256(data).hexdigest(),
    )

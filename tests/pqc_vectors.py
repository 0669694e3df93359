"""Readers for the ML-KEM / ML-DSA known-answer files shipped in `cryptography_vectors`.

Imported by tests/test_pqc_*.py.  The files are NIST-style ``.rsp`` records
(``key = hex`` lines, a blank line between records); only the records asked
for are kept, so a slice of a 12 MB file costs one streaming pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

MLKEM_SLICE = (0, 1, 2, 3, 499, 999)  # a slice of the 1000 records per parameter set
MLDSA_SLICE = (0, 1, 2, 57, 99)  # a slice of the 100 records per parameter set


def vectors_dir() -> Path:
    """Folder of the asymmetric vectors; skips the test when the package is missing."""
    vectors = pytest.importorskip(
        "cryptography_vectors", reason="cryptography_vectors is not installed"
    )
    return Path(vectors.__file__).parent / "asymmetric"


def read_rsp(path: Path, wanted: Iterable[int]) -> list[dict[str, str]]:
    """The records whose ``count`` is in ``wanted``, as dicts of hex strings."""
    wanted = set(wanted)
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    with path.open("r", encoding="ascii") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                if current and int(current["count"]) in wanted:
                    records.append(current)
                current = {}
                if len(records) == len(wanted):
                    break
                continue
            key, _, value = line.partition(" = ")
            current[key] = value
    if current and int(current["count"]) in wanted:
        records.append(current)
    return records


def mlkem_records(level: int) -> list[dict[str, str]]:
    """KAT records for ML-KEM-<level> (fields z, d, pk, sk, ct, ss, ct_n, ss_n)."""
    return read_rsp(vectors_dir() / "MLKEM" / f"kat_MLKEM_{level}.rsp", MLKEM_SLICE)


def mldsa_records(level: int) -> list[dict[str, str]]:
    """KAT records for ML-DSA-<level> (fields xi, pk, sk, msg, sm, ctx; deterministic, pure)."""
    return read_rsp(vectors_dir() / "MLDSA" / f"kat_MLDSA_{level}_det_pure.rsp", MLDSA_SLICE)

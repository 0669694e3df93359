"""liboqs detection: without the shared library, `oqs` is never imported (it would try to
download and build liboqs and then raise SystemExit)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from chaosmagnet.pqc.liboqs_backend import LiboqsBackend, find_liboqs

PROBE = """
import sys
from chaosmagnet.pqc.registry import backend_status, backend_table
rows = backend_table()
status = {name: (ok, why) for name, ok, why in backend_status()}
print("oqs imported:", "oqs" in sys.modules)
print("liboqs:", status["liboqs"])
print("ML-KEM-768 ->", [r.backend for r in rows if r.algorithm == "ML-KEM-768"][0])
"""


@pytest.fixture
def booby_trapped_oqs(tmp_path: Path) -> Path:
    """A fake `oqs` package that exits the process if anyone imports it."""
    package = tmp_path / "trap" / "oqs"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise SystemExit('oqs was imported')\n")
    return tmp_path / "trap"


def _probe(env_extra: dict[str, str], trap: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **env_extra}
    env["PYTHONPATH"] = os.pathsep.join([str(trap), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
    )


def test_absent_library_never_imports_oqs(booby_trapped_oqs: Path, tmp_path: Path) -> None:
    if find_liboqs() is not None:
        pytest.skip("a liboqs shared library is installed here")
    bogus = tmp_path / "oqs-install" / "lib"
    bogus.mkdir(parents=True)
    (bogus / "liboqs.so").write_bytes(b"not an ELF file")  # present but not loadable
    result = _probe({"OQS_INSTALL_PATH": str(bogus.parent)}, booby_trapped_oqs)
    assert result.returncode == 0, result.stderr
    assert "oqs imported: False" in result.stdout
    assert "no liboqs shared library found" in result.stdout
    assert "ML-KEM-768 -> cryptography" in result.stdout


def test_backend_reports_why_it_is_unavailable() -> None:
    if find_liboqs() is not None:
        pytest.skip("a liboqs shared library is installed here")
    backend = LiboqsBackend()
    ok, why = backend.availability()
    assert not ok and "OQS_INSTALL_PATH" in why
    assert backend.algorithms() == () and not backend.can_seed("ML-KEM-768")


def test_present_library_is_used() -> None:
    if find_liboqs() is None:
        pytest.skip("no liboqs shared library on this machine")
    backend = LiboqsBackend()
    ok, why = backend.availability()
    if not ok:
        pytest.skip(why)  # library present, liboqs-python missing
    assert "ML-KEM-768" in backend.algorithms()
    pair = backend.generate_keypair("ML-KEM-768")
    ciphertext, shared = backend.encapsulate("ML-KEM-768", pair.public_key)
    assert (
        backend.decapsulate("ML-KEM-768", pair.secret, pair.secret_encoding, ciphertext) == shared
    )


def test_candidates_include_a_library_in_ld_library_path(tmp_path, monkeypatch) -> None:
    """The probe finds liboqs in LD_LIBRARY_PATH and the usual folders without find_library."""
    import ctypes.util

    from chaosmagnet.pqc import liboqs_backend

    (tmp_path / "liboqs.so.42").write_bytes(b"")
    monkeypatch.setenv("LD_LIBRARY_PATH", str(tmp_path))
    called = []
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: called.append(name))
    monkeypatch.setattr(liboqs_backend, "_loader_cache_mentions", lambda name: False)
    paths = liboqs_backend._candidate_paths()
    if sys.platform.startswith("linux"):
        assert str(tmp_path / "liboqs.so.42") in paths
        assert called == []  # not in the loader's cache: no ldconfig, no compiler
        monkeypatch.setattr(liboqs_backend, "_loader_cache_mentions", lambda name: None)
        liboqs_backend._candidate_paths()
        assert called == ["oqs"]  # cache unreadable: ask find_library after all

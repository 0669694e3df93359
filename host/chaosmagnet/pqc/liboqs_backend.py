"""liboqs-python backend, used only when a liboqs shared library is present.

``import oqs`` on a machine without liboqs tries to download and build it and
then exits the process (SystemExit).  So this module never imports ``oqs``
until ``find_liboqs()`` has loaded the library with ctypes (under the usual
names, ``$OQS_INSTALL_PATH`` and liboqs-python's own install folder) and the
liboqs-python distribution is installed.  ML-KEM keygen is seeded when the
binding has ``generate_keypair_seed`` (liboqs-python >= 0.14); signature
keygen in liboqs is not seedable.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

from chaosmagnet.errors import PQCError
from chaosmagnet.pqc.base import ALGORITHMS, KeyPair, PQCBackend, SecretEncoding

_LIBRARY_NAMES = {
    "linux": (
        "liboqs.so",
        "liboqs.so.9",
        "liboqs.so.8",
        "liboqs.so.7",
        "liboqs.so.6",
        "liboqs.so.5",
    ),
    "darwin": ("liboqs.dylib",),
    "win32": ("oqs.dll", "liboqs.dll"),
}


def _candidate_paths() -> list[str]:
    """Where a liboqs shared library may be, most specific first."""
    names = _LIBRARY_NAMES.get(sys.platform, _LIBRARY_NAMES["linux"])
    roots = []
    if os.environ.get("OQS_INSTALL_PATH"):
        roots.append(Path(os.environ["OQS_INSTALL_PATH"]))
    roots += [Path.home() / "_oqs", Path.home() / "oqs"]  # liboqs-python's install folders
    paths = [
        str(root / sub / name)
        for root in roots
        for sub in ("lib", "lib64", "bin")
        for name in names
    ]
    if sys.platform.startswith("linux"):
        # The loader's cache, the usual library folders and LD_LIBRARY_PATH: what
        # ctypes.util.find_library would find, without running ldconfig and the
        # C compiler (about 25 ms, paid by every `mint` when liboqs is absent).
        folders = [Path(p) for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
        folders += [Path(p) for p in ("/usr/local/lib", "/usr/local/lib64", "/usr/lib", "/usr/lib64", "/lib")]
        folders += sorted(Path("/usr/lib").glob("*-linux-gnu*"))
        for folder in folders:
            with contextlib.suppress(OSError):
                paths += sorted(str(p) for p in folder.glob("liboqs.so*"))
        if _loader_cache_mentions(b"liboqs.so") is not False:
            found = ctypes.util.find_library("oqs")
            if found:
                paths.append(found)
    else:
        found = ctypes.util.find_library("oqs")
        if found:
            paths.append(found)
    paths += list(names)  # plain names: the dynamic loader's own search path
    return paths


def _loader_cache_mentions(name: bytes) -> bool | None:
    """Whether the dynamic loader's cache (/etc/ld.so.cache) names ``name``; None if unreadable."""
    try:
        return name in Path("/etc/ld.so.cache").read_bytes()
    except OSError:
        return None


def find_liboqs() -> str | None:
    """Path (or loader name) of a loadable liboqs shared library, or None.  Never imports oqs."""
    for path in _candidate_paths():
        if os.sep in path and not os.path.exists(path):
            continue
        try:
            ctypes.CDLL(path)
        except OSError:
            continue
        return path
    return None


def _binding_installed() -> bool:
    """Whether the liboqs-python distribution (not PyPI's unrelated `oqs`) is installed."""
    import importlib.metadata  # about 10 ms: only asked once a liboqs library was found

    try:
        importlib.metadata.distribution("liboqs-python")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _liboqs_name(algorithm: str) -> str:
    return algorithm  # our names are liboqs's names (ML-KEM-768, Falcon-512, SPHINCS+-...)


class LiboqsBackend(PQCBackend):
    """Open Quantum Safe's liboqs through liboqs-python."""

    name = "liboqs"

    def __init__(self) -> None:
        self._oqs: ModuleType | None = None
        self._checked = False
        self._reason = ""
        self._kems: tuple[str, ...] = ()
        self._sigs: tuple[str, ...] = ()

    def _load(self) -> ModuleType | None:
        if self._checked:
            return self._oqs
        self._checked = True
        library = find_liboqs()
        if library is None:
            self._reason = "no liboqs shared library found (set OQS_INSTALL_PATH)"
            return None
        if not _binding_installed():
            self._reason = f"liboqs found ({library}) but liboqs-python is not installed"
            return None
        if os.sep in library and "OQS_INSTALL_PATH" not in os.environ:
            # Point liboqs-python at the library we found so it never tries to build one.
            os.environ["OQS_INSTALL_PATH"] = str(Path(library).parent.parent)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # version-mismatch chatter
                oqs = importlib.import_module("oqs")
        except (ImportError, RuntimeError, OSError, SystemExit) as exc:
            # SystemExit is how liboqs-python reports a library it could not load.
            self._reason = f"liboqs-python could not load liboqs ({exc})"
            return None
        enabled_kems = set(oqs.get_enabled_kem_mechanisms())
        enabled_sigs = set(oqs.get_enabled_sig_mechanisms())
        self._kems = tuple(
            a for a, s in ALGORITHMS.items() if s.kind == "kem" and a in enabled_kems
        )
        self._sigs = tuple(
            a for a, s in ALGORITHMS.items() if s.kind == "sign" and a in enabled_sigs
        )
        self._oqs = oqs
        return oqs

    def _module(self) -> Any:
        oqs = self._load()
        if oqs is None:
            raise PQCError(f"liboqs backend unavailable: {self._reason}")
        return oqs

    def availability(self) -> tuple[bool, str]:
        return (self._load() is not None, self._reason)

    def algorithms(self) -> tuple[str, ...]:
        if self._load() is None:
            return ()
        return self._kems + self._sigs

    def can_seed(self, algorithm: str) -> bool:
        if not self.supports(algorithm) or ALGORITHMS[algorithm].kind != "kem":
            return False
        oqs = self._module()
        if not hasattr(oqs.KeyEncapsulation, "generate_keypair_seed"):
            return False
        with oqs.KeyEncapsulation(_liboqs_name(algorithm)) as kem:
            return int(getattr(kem, "length_keypair_seed", 0)) == ALGORITHMS[algorithm].seed_size

    def generate_keypair(self, algorithm: str, seed: bytes | None = None) -> KeyPair:
        spec = self._require(algorithm)
        oqs = self._module()
        if spec.kind == "kem":
            with oqs.KeyEncapsulation(_liboqs_name(spec.name)) as kem:
                if seed is not None:
                    self._check_seed(spec, seed)
                    public_key = bytes(kem.generate_keypair_seed(seed))
                    return KeyPair(spec.name, public_key, bytes(seed), "seed", True, self.name)
                public_key = bytes(kem.generate_keypair())
                return KeyPair(
                    spec.name,
                    public_key,
                    bytes(kem.export_secret_key()),
                    "expanded",
                    False,
                    self.name,
                )
        if seed is not None:
            self._check_seed(spec, seed)  # always raises: liboqs signatures are not seedable
        with oqs.Signature(_liboqs_name(spec.name)) as signer:
            public_key = bytes(signer.generate_keypair())
            return KeyPair(
                spec.name,
                public_key,
                bytes(signer.export_secret_key()),
                "expanded",
                False,
                self.name,
            )

    def _expanded_kem_secret(
        self, algorithm: str, secret: bytes, encoding: SecretEncoding
    ) -> bytes:
        if encoding == "expanded":
            return secret
        oqs = self._module()
        with oqs.KeyEncapsulation(_liboqs_name(algorithm)) as kem:
            kem.generate_keypair_seed(secret)
            return bytes(kem.export_secret_key())

    def encapsulate(self, algorithm: str, public_key: bytes) -> tuple[bytes, bytes]:
        spec = self._require(algorithm, "kem")
        self._check_public_key(spec, public_key)
        with self._module().KeyEncapsulation(_liboqs_name(spec.name)) as kem:
            ciphertext, shared_secret = kem.encap_secret(public_key)
        return bytes(ciphertext), bytes(shared_secret)

    def decapsulate(
        self, algorithm: str, secret: bytes, encoding: SecretEncoding, ciphertext: bytes
    ) -> bytes:
        spec = self._require(algorithm, "kem")
        expanded = self._expanded_kem_secret(spec.name, secret, encoding)
        with self._module().KeyEncapsulation(_liboqs_name(spec.name), expanded) as kem:
            return bytes(kem.decap_secret(ciphertext))

    def sign(
        self, algorithm: str, secret: bytes, encoding: SecretEncoding, message: bytes
    ) -> bytes:
        spec = self._require(algorithm, "sign")
        if encoding != "expanded":
            raise PQCError(f"liboqs needs an expanded {spec.name} secret key, not a seed")
        with self._module().Signature(_liboqs_name(spec.name), secret) as signer:
            return bytes(signer.sign(message))

    def verify(self, algorithm: str, public_key: bytes, message: bytes, signature: bytes) -> bool:
        spec = self._require(algorithm, "sign")
        self._check_public_key(spec, public_key)
        with self._module().Signature(_liboqs_name(spec.name)) as verifier:
            return bool(verifier.verify(message, signature, public_key))

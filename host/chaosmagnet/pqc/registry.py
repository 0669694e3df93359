"""Which backend serves which algorithm.

Backends are tried in ``BACKEND_ORDER`` (liboqs, then the vendored PQClean
AVX2 ML-DSA-65, then `cryptography`, then `pqcrypto`).  One refinement: when
the caller wants seeded key generation and an earlier backend cannot seed the algorithm, the first backend that can is
used instead (keys from credited pool entropy beat library order).  Callers
may also name a backend explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosmagnet.errors import PQCError
from chaosmagnet.pqc.base import ALGORITHMS, PQCBackend, algorithm_spec

BACKEND_ORDER: tuple[str, ...] = ("liboqs", "pqclean", "cryptography", "pqcrypto")

_BACKENDS: dict[str, PQCBackend] = {}


def all_backends() -> list[PQCBackend]:
    """Every known backend (available or not), in preference order; built once."""
    if not _BACKENDS:
        # The backends (and the libraries behind them) load on first use, not on import.
        from chaosmagnet.pqc.cryptography_backend import CryptographyBackend
        from chaosmagnet.pqc.liboqs_backend import LiboqsBackend
        from chaosmagnet.pqc.pqclean_backend import PqcleanBackend
        from chaosmagnet.pqc.pqcrypto_backend import PqcryptoBackend

        for backend in (LiboqsBackend(), PqcleanBackend(), CryptographyBackend(), PqcryptoBackend()):
            _BACKENDS[backend.name] = backend
    return [_BACKENDS[name] for name in BACKEND_ORDER]


def backend_named(name: str) -> PQCBackend:
    """The backend called ``name``; PQCError if unknown or unavailable here."""
    backends = {b.name: b for b in all_backends()}
    if name not in backends:
        raise PQCError(f"unknown backend {name!r} (known: {', '.join(BACKEND_ORDER)})")
    backend = backends[name]
    ok, reason = backend.availability()
    if not ok:
        raise PQCError(f"backend {name} is not available: {reason}")
    return backend


def backends_for(algorithm: str) -> list[PQCBackend]:
    """Available backends serving ``algorithm``, in preference order."""
    spec = algorithm_spec(algorithm)
    return [b for b in all_backends() if b.availability()[0] and b.supports(spec.name)]


def backend_for(
    algorithm: str, *, prefer_seeded: bool = True, backend: str | None = None
) -> PQCBackend:
    """The backend to use for ``algorithm`` (see the module docstring for the rule)."""
    spec = algorithm_spec(algorithm)
    if backend is not None:
        chosen = backend_named(backend)
        if not chosen.supports(spec.name):
            raise PQCError(f"backend {backend} does not serve {spec.name}")
        return chosen
    candidates = backends_for(spec.name)
    if not candidates:
        raise PQCError(f"no installed backend serves {spec.name} (see `chaos-host backends`)")
    if prefer_seeded:
        for candidate in candidates:
            if candidate.can_seed(spec.name):
                return candidate
    return candidates[0]


@dataclass(frozen=True)
class BackendRow:
    """One line of `chaos-host backends`: an algorithm and who serves it."""

    algorithm: str
    kind: str
    strength_bits: int
    backend: str | None  # the one minting uses; None when nothing serves it
    seeded: bool  # whether that backend's keygen is seeded from the pool
    also: tuple[str, ...]  # other available backends serving it


def backend_table() -> list[BackendRow]:
    """For every known algorithm: the chosen backend, seedability and alternatives."""
    rows = []
    for name, spec in ALGORITHMS.items():
        candidates = backends_for(name)
        if candidates:
            chosen = backend_for(name)
            rows.append(
                BackendRow(
                    name,
                    spec.kind,
                    spec.strength_bits,
                    chosen.name,
                    chosen.can_seed(name),
                    tuple(b.name for b in candidates if b is not chosen),
                )
            )
        else:
            rows.append(BackendRow(name, spec.kind, spec.strength_bits, None, False, ()))
    return rows


def backend_status() -> list[tuple[str, bool, str]]:
    """(name, available, reason) for every backend, in preference order."""
    return [(b.name, *b.availability()) for b in all_backends()]

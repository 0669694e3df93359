"""Post-quantum backends behind one interface (keygen, encaps/decaps, sign/verify).

Three implementations (liboqs-python, `cryptography`, `pqcrypto`) serve the
algorithms in ``ALGORITHMS``; ``registry.backend_for`` picks one per
algorithm.  Raw public keys, ciphertexts and signatures are interchangeable
across backends; secret keys are kept as seeds where the algorithm has one.
"""

from __future__ import annotations

from chaosmagnet.pqc.base import ALGORITHMS, AlgorithmSpec, KeyPair, PQCBackend, algorithm_spec
from chaosmagnet.pqc.registry import BACKEND_ORDER, all_backends, backend_for, backend_named

__all__ = [
    "ALGORITHMS",
    "AlgorithmSpec",
    "BACKEND_ORDER",
    "KeyPair",
    "PQCBackend",
    "algorithm_spec",
    "all_backends",
    "backend_for",
    "backend_named",
]

"""`python -m chaosmagnet.assessment.worker BITS [WORKERS]`: assess samples read from stdin.

The background assessment of `chaos-host run` runs here, in a child process,
so that the estimators' transient memory (about 175 MB for a million 8-bit
samples) never becomes part of the long-running aggregator's resident size,
and a crash in an estimator cannot take the aggregator with it.  Prints one
JSON object: {"h_assessed": float}.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    """Read raw samples from stdin, print H_assessed as JSON."""
    from chaosmagnet.assessment._kernel import prefer_mmap
    from chaosmagnet.assessment.noniid import assess_noniid

    prefer_mmap()

    if not 1 <= len(argv) <= 2 or not all(a.isdigit() for a in argv):
        print("usage: python -m chaosmagnet.assessment.worker BITS [WORKERS] < samples", file=sys.stderr)
        return 2
    samples = sys.stdin.buffer.read()  # bytes: binary sources are assessed without numpy
    workers = int(argv[1]) if len(argv) == 2 else 1  # one by default: `run` leaves a core to sampling
    result = assess_noniid(samples, int(argv[0]), workers=workers)
    print(json.dumps({"h_assessed": result.h_assessed}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

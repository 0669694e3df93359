"""One restart of a local source: ``python -m chaosmagnet.campaign.child SOURCE COUNT BITS [CONFIG]``.

Builds the source in this fresh process, starts it, writes its first COUNT
raw samples (low BITS bits) to standard output and exits.  Bad input or an
unavailable source: one line on stderr, exit 2.  Kept light on imports so a
campaign of 1,000 restarts does not spend its time starting interpreters.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import numpy as np

from chaosmagnet.config import load_config
from chaosmagnet.errors import ChaosError, SourceUnavailable, UsageError
from chaosmagnet.sources.registry import SourceOptions, build_source


async def first_samples(source_name: str, count: int, config_path: Path | None) -> np.ndarray:
    """Start source_name, take its first count samples, stop it."""
    config = load_config(config_path)
    rates = {name: sc.rate for name, sc in config.sources.items() if sc.rate is not None}
    source = build_source(source_name, SourceOptions(rates=rates, extra=dict(config.extra)))
    availability = source.availability()
    if not availability.available:
        raise SourceUnavailable(f"source {source_name} is unavailable: {availability.reason}")
    await source.start()
    chunks: list[np.ndarray] = []
    got = 0
    try:
        async for batch in source.batches():
            chunks.append(np.asarray(batch, dtype=np.uint8))
            got += len(batch)
            if got >= count:
                break
    finally:
        await source.stop()
    if got < count:
        raise SourceUnavailable(f"source {source_name} stopped after {got} of {count} samples")
    return np.concatenate(chunks)[:count]


def main(argv: list[str]) -> int:
    """Entry point: write the samples to fd 1; exit status 0, or 2 with one line on stderr."""
    try:
        if len(argv) not in (3, 4):
            raise UsageError("usage: python -m chaosmagnet.campaign.child SOURCE COUNT BITS [CONFIG]")
        name, count, bits = argv[0], int(argv[1]), int(argv[2])
        if count < 1 or not 1 <= bits <= 8:
            raise UsageError("COUNT must be positive and BITS between 1 and 8")
        data = asyncio.run(first_samples(name, count, Path(argv[3]) if len(argv) == 4 else None))
    except (ChaosError, ValueError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if bits < 8:
        data = data & np.uint8((1 << bits) - 1)
    view = memoryview(data.tobytes())
    while view:
        written = os.write(1, view)
        view = view[written:]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

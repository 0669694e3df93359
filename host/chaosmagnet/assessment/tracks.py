"""Both tracks of an assessment at once: the IID track (§5) beside the non-IID estimators (§6.3).

``chaos-host assess --iid`` used to run the non-IID estimators, then the IID
track.  Their hot loops are C that releases the GIL, each on up to two
threads, so running the IID track in a thread of its own beside the
non-IID estimators lets the one's single-threaded stretches (preparing the
data, the chi-square and LRS tests, an estimator finishing last) fill the
other's idle core instead of waiting in line.  Both read the same loaded
samples; the results are exactly those of running them one after the other
(the IID shuffles depend on ``rng_seed`` only, never on timing).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from chaosmagnet.assessment._kernel import symbols_array
from chaosmagnet.assessment.noniid import NonIidResult, ProgressCallback, assess_noniid
from chaosmagnet.assessment.samples import check_bits

if TYPE_CHECKING:
    from chaosmagnet.assessment.iid import IidResult

__all__ = ["assess_both"]


def assess_both(
    samples: np.ndarray,
    bits: int,
    *,
    stop_early: bool = True,
    rng_seed: int | None = None,
    noniid_progress: ProgressCallback | None = None,
    iid_progress: ProgressCallback | None = None,
) -> tuple[NonIidResult, IidResult]:
    """The non-IID assessment (in this thread) and the IID track (in another), run concurrently.

    Each progress callback is called from the thread of its own track.  An
    error in either track is raised here, the non-IID one first.
    """
    from chaosmagnet.assessment.iid import assess_iid

    results: list[IidResult] = []
    errors: list[BaseException] = []

    def iid_track() -> None:
        try:
            results.append(
                assess_iid(samples, bits, progress=iid_progress, rng_seed=rng_seed, stop_early=stop_early)
            )
        except BaseException as exc:  # handed over to the calling thread and raised there
            errors.append(exc)

    check_bits(symbols_array(samples, "samples"), bits)  # bad input fails here, before any thread
    thread = threading.Thread(target=iid_track, name="iid-track", daemon=True)
    thread.start()
    try:
        noniid = assess_noniid(samples, bits, progress=noniid_progress)
    finally:
        thread.join()
    if errors:
        raise errors[0]
    return noniid, results[0]

"""SP 800-90B entropy assessment of recorded samples (the `chaos-host assess` API).

- ``assess_noniid``: the ten non-IID estimators of §6.3 and the initial
  entropy estimate H_assessed = min(H_original, B x H_bitstring) (§3.1.3).
- ``load_samples``: read and validate a sample file (one sample per byte).
- ``suffix``: suffix and LCP arrays (C kernel), shared with the IID LRS test.
- ``iid``: the IID track of §5 (permutation, chi-square and LRS tests).
- ``tracks``: ``assess_both``, the IID track in a thread beside the non-IID one.
- ``report``: the self-contained HTML report.
"""

from chaosmagnet.assessment.noniid import (
    ESTIMATORS,
    EstimatorResult,
    NonIidResult,
    ProgressCallback,
    assess_noniid,
)
from chaosmagnet.assessment.samples import MIN_SAMPLES, SampleFile, load_samples
from chaosmagnet.assessment.suffix import lcp_array, suffix_array

__all__ = [
    "ESTIMATORS",
    "MIN_SAMPLES",
    "EstimatorResult",
    "NonIidResult",
    "ProgressCallback",
    "SampleFile",
    "assess_noniid",
    "lcp_array",
    "load_samples",
    "suffix_array",
]

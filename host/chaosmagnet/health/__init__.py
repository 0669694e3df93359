"""SP 800-90B §4.4 continuous health tests: cutoffs, the C test kernel, and the
quarantine policy that turns failures into a source state."""

from chaosmagnet.health.cutoffs import apt_cutoff, apt_window, critbinom, rct_cutoff
from chaosmagnet.health.monitor import HealthFailure, HealthMonitor, HealthTest
from chaosmagnet.health.policy import HealthPolicy, PolicySettings, SourceState

__all__ = [
    "HealthFailure",
    "HealthMonitor",
    "HealthPolicy",
    "HealthTest",
    "PolicySettings",
    "SourceState",
    "apt_cutoff",
    "apt_window",
    "critbinom",
    "rct_cutoff",
]

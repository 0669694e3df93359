"""SP 800-90B entropy assessment of recorded samples (the `chaos-host assess` API).

Submodules: ``suffix`` (suffix/LCP arrays, C kernel shared by the t-tuple,
LRS and IID LRS computations).
"""

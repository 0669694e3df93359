"""Restart campaigns (SP 800-90B §3.1.4): restart a source many times, keep its first samples.

``runner`` drives a campaign and makes it resumable; a ``Restarter`` knows how
to restart one kind of source and hand back the samples taken right after:
``local.LocalRestarter`` starts a host source in a fresh process each time
(``child`` is that process); ``node.NodeRestarter`` reboots a node by its
authenticated command, waits for boot counter + 1 and takes that boot's
first samples, over whichever transport the registry names.
"""

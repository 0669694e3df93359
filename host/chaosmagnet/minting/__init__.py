"""Minting post-quantum key bundles from credited pool entropy.

``seeds`` reaches the pool, ``sealing`` protects secret keys, ``identity``
is the host's signing identity, ``bundle`` is the file format and its
verification, ``mint`` puts them together, ``export`` hands keys to other
tools, ``bench`` times it.  The audit trail is chaosmagnet.audit.
"""

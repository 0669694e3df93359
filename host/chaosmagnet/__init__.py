"""ChaosMagnet: entropy harvesting, SP 800-90B health and assessment, a Keccak pool
and post-quantum key minting.  The command line is `chaos-host` (chaosmagnet.cli)."""

__version__ = "0.1.0"

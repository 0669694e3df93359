"""The project's exceptions: one root, one subclass per domain.

The CLI turns a ChaosError into one line on stderr and exit status 2 (see
chaosmagnet.cli); nothing else catches them broadly.  Messages never carry
secret material, and text that came from a device is escaped before it is
put into a message.
"""

from __future__ import annotations


class ChaosError(Exception):
    """Root of every error ChaosMagnet raises on purpose."""


class UsageError(ChaosError):
    """A bad argument: unknown name, out-of-range number, unwritable path."""


class ConfigError(ChaosError):
    """The configuration file is missing, unreadable or invalid."""


class SourceError(ChaosError):
    """A source cannot be started or read."""


class SourceUnavailable(SourceError):
    """A source is not available on this machine (missing device or library)."""


class ExtractorError(ChaosError):
    """Misuse of the Keccak sponge (bad lengths, squeeze before absorb...)."""


class PoolError(ChaosError):
    """The pool cannot satisfy a request (not enough credited entropy, timeout)."""


class InputFileError(ChaosError):
    """A sample file or other input file is empty, unreadable or malformed."""


def escape_device_text(text: str | bytes, limit: int = 200) -> str:
    """Return text from a device or peer made safe to print: no control characters."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "backslashreplace")
    out = text.encode("unicode_escape").decode("ascii")
    return out if len(out) <= limit else out[:limit] + "..."


class PQCError(ChaosError):
    """A post-quantum backend is missing, or cannot do what was asked of it."""


class SealError(ChaosError):
    """A sealed secret cannot be opened (wrong passphrase, damaged blob) or sealed."""


class BundleError(ChaosError):
    """A key bundle is malformed or fails verification."""


class IdentityError(ChaosError):
    """The host identity is missing, damaged or cannot be created."""


class AuditError(ChaosError):
    """The audit trail is unreadable, or fails verification."""


class AuditHeadError(AuditError):
    """An entry was appended, but the signed head (audit.head.json) could not be updated."""


class ControlError(ChaosError):
    """The local control channel to a running `chaos-host run` failed."""


class DashboardError(ChaosError):
    """The web dashboard cannot listen where asked, or refuses a request."""


class MeshError(ChaosError):
    """The mesh (broker set-up, broker connection, mesh keys) cannot do what was asked."""

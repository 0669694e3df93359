"""Broker URLs: ``mqtts://HOST[:PORT]`` (TLS only; credentials never in the URL)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from chaosmagnet.errors import UsageError

DEFAULT_PORT = 8883


@dataclass(frozen=True)
class BrokerURL:
    """Where the broker listens."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mqtts://{host}:{self.port}"


def parse_broker_url(text: str) -> BrokerURL:
    """Parse ``mqtts://host[:port]``; UsageError with one clear line otherwise."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        raise UsageError(f"--mesh must be mqtts://HOST[:PORT], not {text!r}") from None
    if parts.scheme == "mqtt":
        raise UsageError("--mesh: plain mqtt:// is refused, the mesh speaks TLS only (mqtts://)")
    if parts.scheme != "mqtts" or not parts.hostname:
        raise UsageError(f"--mesh must be mqtts://HOST[:PORT], not {text!r}")
    if parts.username or parts.password:
        raise UsageError("--mesh: put no credentials in the URL; they come from the client folder (--mesh-client)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UsageError(f"--mesh must be mqtts://HOST[:PORT] with nothing after the port, not {text!r}")
    return BrokerURL(parts.hostname, port or DEFAULT_PORT)

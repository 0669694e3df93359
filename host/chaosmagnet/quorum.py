"""A k-of-n quorum for keys: credit counts only when it comes from k independent sources.

A source that overclaims (a stuck timer credited as jitter, a compromised
device) could otherwise pay for a whole key alone.  Keys are therefore drawn
only when at least ``k`` independent healthy sources (default 2) have each
absorbed their share, ``required_bits / k``, of the credited bits the draw
needs since the last draw: if any one of them turns out to be worthless, the
others still put at least (k - 1) / k of the requirement into the state since
the last ratchet, which with the default credit factor of 2 and k = 2 is the
key's full strength.  The shares are counted unscaled (EntropyPool.
fresh_credit_by_source): a slow source's share of the capped ledger shrinks
while a fast one fills the pool, but what it absorbed is still in the state.

Independence is by dependence group.  Every source is its own group, except
that the sources of one node (``node:LABEL:adc``, ``node:LABEL:rng``...) share
the node's group, and chaos.toml can join more::

    [mint]
    quorum = 2                                   # k; 1 turns the quorum off
    dependence_groups = [["cpu-jitter", "system"]]

This module is pure: it looks at a credit ledger and says whether the quorum
is met, which groups meet it, and why not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaosmagnet.errors import ConfigError

__all__ = ["DEFAULT_QUORUM", "Quorum", "QuorumStatus", "quorum_from_config"]

DEFAULT_QUORUM = 2


@dataclass(frozen=True)
class QuorumStatus:
    """Whether the credit absorbed since the last draw meets the quorum for ``required_bits``."""

    k: int
    required_bits: float
    share_bits: float  # what each of the k groups must hold
    groups: dict[str, float]  # healthy credited bits absorbed since the last draw, per dependence group
    members: dict[str, list[str]]  # the sources of each group that hold credit

    @property
    def qualifying(self) -> list[str]:
        """Groups holding at least their share, largest first."""
        ready = [g for g, bits in self.groups.items() if bits >= self.share_bits - 1e-9]
        return sorted(ready, key=lambda g: (-self.groups[g], g))

    @property
    def met(self) -> bool:
        """At least k groups hold their share (and so the total is at least required_bits)."""
        return len(self.qualifying) >= self.k

    @property
    def progress_bits(self) -> float:
        """Credit that counts towards the quorum: each group capped at its share, k groups at most."""
        capped = sorted((min(bits, self.share_bits) for bits in self.groups.values()), reverse=True)
        return min(self.required_bits, sum(capped[: self.k]))

    @property
    def reason(self) -> str:
        """Why the quorum is not met yet ('' when it is)."""
        if self.met:
            return ""
        ready = self.qualifying
        named = ", ".join(ready) if ready else "none"
        return (
            f"quorum: keys need {self.k} independent healthy sources to each add "
            f"{self.share_bits:.0f} credited bits since the last draw; {len(ready)} did ({named})"
            + ("; start another source or lower [mint] quorum in chaos.toml" if len(self.groups) < self.k else "")
        )

    def to_json(self) -> dict[str, Any]:
        """The provenance record: k, each group's share, and which groups met it."""
        return {
            "k": self.k,
            "share_bits": round(self.share_bits, 3),
            "met_by": {g: sorted(self.members.get(g, [g])) for g in self.qualifying},
            "groups": {g: round(b, 3) for g, b in sorted(self.groups.items())},
        }


@dataclass(frozen=True)
class Quorum:
    """k and the dependence groups: which sources count as one."""

    k: int = DEFAULT_QUORUM
    groups: Sequence[Sequence[str]] = field(default_factory=tuple)
    #: Groups of sources found dependent at run time (chaosmagnet.dependence): joined on top.
    joined: Sequence[Sequence[str]] = field(default_factory=tuple)

    def group_of(self, source: str) -> str:
        """The dependence group of a source (its name, its node, a configured or a found group)."""
        base = self._configured_group(source)
        for members in self.joined:
            keys = sorted({self._configured_group(m) for m in members})
            if base in keys:
                return "+".join(keys)
        return base

    def _configured_group(self, source: str) -> str:
        for members in self.groups:
            if source in members:
                return "+".join(members)
        if source.startswith("node:") and source.count(":") >= 2:
            return "node:" + source.split(":")[1]
        return source

    def status(self, healthy_credit: Mapping[str, float], required_bits: float) -> QuorumStatus:
        """The quorum's verdict on a ledger of healthy credited bits per source."""
        groups: dict[str, float] = {}
        members: dict[str, list[str]] = {}
        for source, bits in healthy_credit.items():
            if bits <= 0:
                continue
            group = self.group_of(source)
            groups[group] = groups.get(group, 0.0) + bits
            members.setdefault(group, []).append(source)
        return QuorumStatus(
            k=self.k,
            required_bits=float(required_bits),
            share_bits=float(required_bits) / self.k,
            groups=groups,
            members=members,
        )


def quorum_from_config(extra: Mapping[str, Any]) -> Quorum:
    """The quorum from chaos.toml's [mint] table (Config.extra); ConfigError if malformed."""
    table = extra.get("mint", {}) or {}
    k = table.get("quorum", DEFAULT_QUORUM)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 64:
        raise ConfigError(f"mint.quorum: expected a whole number from 1 to 64, got {k!r}")
    raw = table.get("dependence_groups", [])
    if not isinstance(raw, list) or not all(
        isinstance(g, list) and g and all(isinstance(s, str) and s for s in g) for g in raw
    ):
        raise ConfigError("mint.dependence_groups: expected a list of lists of source names")
    seen: set[str] = set()
    for group in raw:
        for name in group:
            if name in seen:
                raise ConfigError(f"mint.dependence_groups: {name!r} is in two groups")
            seen.add(name)
    return Quorum(k=k, groups=tuple(tuple(g) for g in raw))

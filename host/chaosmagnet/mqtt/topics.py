"""The topic layout of a mesh and the names allowed in it.

    chaosmagnet/<mesh>/host/<label>/identity          retained: public identity + mesh KEM key
    chaosmagnet/<mesh>/host/<label>/status            retained: status every few seconds, last will "offline"
    chaosmagnet/<mesh>/host/<label>/events            health events as they happen
    chaosmagnet/<mesh>/host/<label>/peer/<receiver>   sealed peer seeds for one receiver

    chaosmagnet/<mesh>/node/<label>/frames            a Wi-Fi node's frames (chaosmagnet.nodes.mqtt)
    chaosmagnet/<mesh>/node/<label>/cmd               its host's hello and commands
    chaosmagnet/<mesh>/node/<label>/state             retained "online <nonce>", last will "offline"

A host publishes only under its own ``host/<label>/`` prefix (the broker's ACL
enforces it, and every signed message names its topic).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROOT = "chaosmagnet"
CHANNELS = ("identity", "status", "events", "peer")
_NAME = re.compile(r"\A[a-z0-9][a-z0-9_-]{0,31}\Z")


def valid_name(name: str) -> bool:
    """Whether ``name`` can be a mesh or client label: 1-32 of a-z 0-9 _ -, starting alphanumeric."""
    return bool(_NAME.match(name))


def host_prefix(mesh: str, label: str) -> str:
    """The prefix under which host ``label`` may publish."""
    return f"{ROOT}/{mesh}/host/{label}"


def node_prefix(mesh: str, label: str) -> str:
    """The prefix under which Wi-Fi node ``label`` may publish (frames, state)."""
    return f"{ROOT}/{mesh}/node/{label}"


def host_topic(mesh: str, label: str, channel: str) -> str:
    """The topic of one of a host's channels (identity, status, events)."""
    return f"{host_prefix(mesh, label)}/{channel}"


def peer_topic(mesh: str, sender: str, receiver: str) -> str:
    """The topic on which ``sender`` sends sealed seeds to ``receiver``."""
    return f"{host_prefix(mesh, sender)}/peer/{receiver}"


def subscription(mesh: str, channel: str, receiver: str | None = None) -> str:
    """A wildcard subscription for one channel of every host (peer: only those for ``receiver``)."""
    if channel == "peer":
        return f"{ROOT}/{mesh}/host/+/peer/{receiver}"
    return f"{ROOT}/{mesh}/host/+/{channel}"


@dataclass(frozen=True)
class TopicName:
    """A parsed mesh topic."""

    mesh: str
    sender: str
    channel: str
    receiver: str | None = None


def parse_topic(topic: str) -> TopicName | None:
    """The parts of a mesh topic, or None when it is not one."""
    parts = topic.split("/")
    if len(parts) < 5 or parts[0] != ROOT or parts[2] != "host":
        return None
    mesh, sender, channel = parts[1], parts[3], parts[4]
    if not (valid_name(mesh) and valid_name(sender)) or channel not in CHANNELS:
        return None
    if channel == "peer":
        if len(parts) != 6 or not valid_name(parts[5]):
            return None
        return TopicName(mesh, sender, channel, parts[5])
    if len(parts) != 5:
        return None
    return TopicName(mesh, sender, channel)

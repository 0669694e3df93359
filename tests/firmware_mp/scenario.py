"""Firmware checks run identically under MicroPython (WebAssembly) and CPython.

main(vectors_json) runs the firmware's portable modules against the shared
wire vectors and returns a JSON document of what they produced; the host test
compares it with the vectors, byte for byte.  The authenticated command lines
in the vectors were made by the host (scripts/gen-wire-vectors), never here.
"""

import json

from chaosnode.framing import TYPE_HANDSHAKE, encode_frame
from chaosnode.health import Health, apt_cutoff, apt_window, rct_cutoff
from chaosnode.hmac256 import hmac_sha256
from chaosnode.node import Node
from chaosnode.session import CommandGate, derive_session, handshake_payload, hkdf_sha256
from fake_hal import FakeHal


def _unhex(text):
    return bytes(int(text[i : i + 2], 16) for i in range(0, len(text), 2))


def _hex(data):
    return "".join("%02x" % b for b in data)


def run_session(spec, stuck=False, write_limit=0, stalled=False):
    """Drive a Node with the fake HAL through the scenario's commands and steps.

    write_limit > 0: the output takes at most that many bytes per write (short
    writes); stalled: it takes nothing at all.  Returns (stream hex, node).
    """
    hal = FakeHal(spec["start_ms"], stuck, spec.get("boots", 7))
    out = bytearray()

    def write(frame):
        if stalled:
            return 0
        n = len(frame) if write_limit <= 0 else min(write_limit, len(frame))
        out.extend(frame[0:n])
        return n

    node = Node(hal, spec["config"], write)
    for action in spec["script"]:
        kind = action[0]
        if kind == "cmd":
            node.feed_commands(action[1].encode())
        elif kind == "steps":
            for _ in range(action[1]):
                node.step()
                hal.now += action[2]
    return _hex(out), node


def _slot_states(node):
    return [[s.name, s.on, s.rate] for s in node.slots if s is not None]


def command_checks(spec):
    """Unauthenticated, forged, replayed and authentic commands: what each changed."""
    hal = FakeHal(0, False, spec["boots"])
    replies = []
    node = Node(hal, spec["config"], lambda frame: len(frame))
    original = node._send_text

    def capture(ftype, text):
        replies.append(text if isinstance(text, str) else "")
        original(ftype, text)

    node._send_text = capture
    states = []
    for line in spec["lines"]:
        before = len(replies)
        node.feed_commands(line.encode())
        states.append([_slot_states(node), [r for r in replies[before:] if r.startswith(("ok", "error"))]])
    return {"states": states, "refused": node.refused_commands, "reboot": node.reboot_requested}


def main(vectors_text):
    vectors = json.loads(vectors_text)
    result = {}
    result["hmac"] = [_hex(hmac_sha256(_unhex(v["key"]), _unhex(v["data"]))) for v in vectors["hmac_sha256"]]
    result["hkdf"] = [
        _hex(hkdf_sha256(_unhex(v["salt"]), _unhex(v["ikm"]), _unhex(v["info"]), v["length"]))
        for v in vectors["hkdf_sha256"]
    ]
    frames = []
    for v in vectors["frames"]:
        frames.append(_hex(encode_frame(
            _unhex(v["key"]), _unhex(v["node_id"]), _unhex(v["session_id"]), v["sequence"], v["type"],
            v["timestamp_ms"], v["source"], v["bits"], v["flags"], v["samples"], v["rct_failures"],
            v["apt_failures"], _unhex(v["payload"]),
        )))
    result["frames"] = frames
    handshakes = []
    for v in vectors["handshakes"]:
        key, node_id = _unhex(v["key"]), _unhex(v["node_id"])
        challenge, boot_nonce, link_nonce = _unhex(v["challenge"]), _unhex(v["boot_nonce"]), _unhex(v["link_nonce"])
        payload = handshake_payload(challenge, boot_nonce, link_nonce, v["boot_counter"])
        frame = encode_frame(key, node_id, bytes(8), 0, TYPE_HANDSHAKE, v["timestamp_ms"], 0, 0, 0, 0, 0, 0,
                             payload)
        session_key, session_id = derive_session(key, node_id, challenge, boot_nonce, link_nonce,
                                                 v["boot_counter"])
        gate = CommandGate(session_key, session_id)
        verdicts = []
        for c in v["commands"]:
            checked = gate.check(c["line"].split())
            verdicts.append(checked if isinstance(checked, str) else " ".join(checked))
        handshakes.append({"frame": _hex(frame), "session_key": _hex(session_key),
                           "session_id": _hex(session_id), "verdicts": verdicts})
    result["handshakes"] = handshakes
    cutoffs = []
    for v in vectors["cutoffs"]:
        w = apt_window(v["bits"])
        cutoffs.append([rct_cutoff(v["h"]), w, apt_cutoff(v["h"], w)])
    result["cutoffs"] = cutoffs
    health = []
    for v in vectors["health"]:
        test = Health(v["h"], v["bits"])
        data = _unhex(v["samples"])
        width = 2 if v["bits"] > 8 else 1
        step = v["chunk"] * width
        for start in range(0, len(data), step):
            chunk = data[start : start + step]
            test.run(chunk, len(chunk) // width, width)
        health.append([test.samples, test.rct_failures, test.apt_failures])
    result["health"] = health
    session = vectors["node_session"]
    result["session"], node = run_session(session)
    result["session_reboot"] = node.reboot_requested
    result["stuck_session"] = run_session(session, stuck=True)[0]
    result["short_write_session"] = run_session(session, write_limit=7)[0]
    stalled_stream, stalled = run_session(session, stalled=True)
    result["stalled"] = [len(stalled_stream), stalled.frames, stalled.dropped_frames]
    result["commands"] = command_checks(vectors["command_checks"])
    return json.dumps(result)

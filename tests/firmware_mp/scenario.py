"""Firmware checks run identically under MicroPython (WebAssembly) and CPython.

main(vectors_json) runs the firmware's portable modules against the shared
wire vectors and returns a JSON document of what they produced; the host test
compares it with the vectors, byte for byte.
"""

import json

from chaosnode.framing import encode_frame
from chaosnode.health import Health, apt_cutoff, apt_window, rct_cutoff
from chaosnode.hmac256 import hmac_sha256
from chaosnode.node import Node
from fake_hal import FakeHal


def _unhex(text):
    return bytes(int(text[i : i + 2], 16) for i in range(0, len(text), 2))


def _hex(data):
    return "".join("%02x" % b for b in data)


def run_session(spec, stuck=False):
    """Drive a Node with the fake HAL through the scenario's commands and steps."""
    hal = FakeHal(spec["start_ms"], stuck)
    out = bytearray()

    def write(frame):
        out.extend(frame)

    node = Node(hal, spec["config"], write)
    for action in spec["script"]:
        kind = action[0]
        if kind == "cmd":
            node.feed_commands(action[1].encode())
        elif kind == "steps":
            for _ in range(action[1]):
                node.step()
                hal.now += action[2]
    return _hex(out)


def main(vectors_text):
    vectors = json.loads(vectors_text)
    result = {}
    result["hmac"] = [_hex(hmac_sha256(_unhex(v["key"]), _unhex(v["data"]))) for v in vectors["hmac_sha256"]]
    frames = []
    for v in vectors["frames"]:
        frames.append(_hex(encode_frame(
            _unhex(v["key"]), _unhex(v["node_id"]), _unhex(v["boot_nonce"]), v["sequence"], v["type"],
            v["timestamp_ms"], v["source"], v["bits"], v["flags"], v["samples"], v["rct_failures"],
            v["apt_failures"], _unhex(v["payload"]),
        )))
    result["frames"] = frames
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
    result["session"] = run_session(session)
    result["stuck_session"] = run_session(session, stuck=True)
    return json.dumps(result)

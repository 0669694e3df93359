"""The node's main loop on the board: config, HAL, node, commands from stdin.

Frames go out through sys.stdout.buffer.write only (sys.stdout.write would turn
newline bytes into CR LF).  Commands are read without blocking: select.poll on
sys.stdin, one byte at a time while bytes are ready.  Ctrl-C still reaches the
REPL, so mpremote can interrupt the node to deploy again.
"""

import select
import sys

from chaosnode.config import load_config
from chaosnode.node import Node

_MAX_COMMAND_BYTES = 64  # per loop turn, so sampling is never starved


def run(config_path="/chaosnode.json"):
    """Load the config and run the node until interrupted."""
    try:
        config = load_config(config_path)
    except (OSError, ValueError) as exc:
        print("chaosnode: no usable config at", config_path, "-", exc)
        return
    from chaosnode.hal_esp32 import Esp32Hal

    hal = Esp32Hal(config)
    out = sys.stdout.buffer
    stdin = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin
    node = Node(hal, config, out.write)
    poller = select.poll()
    poller.register(sys.stdin, select.POLLIN)
    while True:
        wait = node.step()
        got = 0
        timeout = wait if wait < 20 else 20  # ms: wake for commands even while idle
        while got < _MAX_COMMAND_BYTES and poller.poll(timeout if got == 0 else 0):
            data = stdin.read(1)
            if not data:
                break
            node.feed_commands(data if isinstance(data, bytes) else data.encode())
            got += 1

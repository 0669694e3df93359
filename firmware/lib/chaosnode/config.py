"""The node config file written at deploy time (JSON, on the node's flash).

Fields: node_id (16 hex), board, label, adc_pin, led_pin, led_kind ("gpio",
"gpio_inverted", "neopixel" or "none"), heartbeat_ms, boot_pin (the BOOT
button, GPIO0), and sources: {name: {"rate": samples/s, "h": declared
min-entropy per sample, "block": samples per frame}}.  The node key is not
here: it lives in the board's NVS (chaosnode.app); only the simulator and the
tests pass it as "key" (64 hex).
"""

import json

CONFIG_PATH = "/chaosnode.json"
REQUIRED = ("node_id", "board", "sources")


def parse_config(text):
    """Parse and check a config document; ValueError names the missing field."""
    config = json.loads(text)
    if not isinstance(config, dict):
        raise ValueError("config is not an object")
    for name in REQUIRED:
        if name not in config:
            raise ValueError("config lacks " + name)
    return config


def load_config(path=CONFIG_PATH):
    """Read the config file from flash."""
    with open(path) as f:
        return parse_config(f.read())

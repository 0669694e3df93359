"""The node's main loop on the board: config, key, HAL, node, commands from stdin.

The node key lives in the board's NVS (esp32.NVS namespace "chaosnode", blob
"key"), not in a file: `nodes deploy` sends it once.  Unless the BOOT button
is held during the first moments after reset (maintenance mode: the REPL
stays reachable for mpremote), the REPL interrupt is disabled
(micropython.kbd_intr(-1)), so a program on the cable cannot stop the node
and read its memory through the REPL.

With ``"link": "ble"`` in the config the node is served over Bluetooth LE
instead (chaosnode.ble_app), with ``"link": "wifi"`` over Wi-Fi and MQTT
(chaosnode.mqtt_app); otherwise frames go out through
sys.stdout.buffer.write only (sys.stdout.write would turn
newline bytes into CR LF); short writes are finished by the node, and a frame
that cannot be written whole counts as dropped and is reported in STATUS.
(The stock ESP32_GENERIC_S3 image also mirrors stdout to UART0 in its C code;
Python cannot switch that off: see docs/first-node.md.)  Commands are read
without blocking: select.poll on sys.stdin, one byte at a time.
"""

import select
import sys
import time

from chaosnode.config import load_config
from chaosnode.node import Node

_MAX_COMMAND_BYTES = 256  # per loop turn, so sampling is never starved
NVS_NAMESPACE = "chaosnode"
MAINTENANCE_WINDOW_MS = 1500  # hold BOOT during this long after reset: REPL stays reachable


def boot_button_held(pin_number=0, window_ms=MAINTENANCE_WINDOW_MS):
    """True when BOOT (GPIO0, active low) is held at some point in the first window_ms."""
    import machine

    pin = machine.Pin(pin_number, machine.Pin.IN, machine.Pin.PULL_UP)
    start = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), start) < window_ms:
        if pin.value() == 0:
            return True
        time.sleep_ms(10)
    return False


def nvs_key(nvs):
    """The 32-byte node key from NVS, or None when none was provisioned."""
    buf = bytearray(32)
    try:
        n = nvs.get_blob("key", buf)
    except OSError:
        return None
    return bytes(buf) if n == 32 else None


def next_boot_counter(nvs):
    """Count this boot in NVS and return its number (1 for the first)."""
    try:
        boots = nvs.get_i32("boots")
    except OSError:
        boots = 0
    boots = (boots + 1) & 0x7FFFFFFF
    nvs.set_i32("boots", boots)
    nvs.commit()
    return boots


class _Output:
    """USB-CDC stdout as a write(buf) -> bytes written callable."""

    def __init__(self):
        self.out = sys.stdout.buffer

    def write(self, buf):
        n = self.out.write(buf)
        return len(buf) if n is None else n


def prepare(config, nvs, boot_held, kbd_intr, make_hal, write):
    """Everything between reset and the main loop, with the board's parts passed in.

    Returns the Node, or None in maintenance mode (BOOT held: the REPL stays
    reachable) or when NVS holds no key.  Otherwise the boot is counted in NVS
    and the REPL interrupt is disabled before the node starts.
    """
    if boot_held:
        print("chaosnode: BOOT held - maintenance mode, REPL enabled, node not started")
        return None
    key = nvs_key(nvs)
    if key is None:
        print("chaosnode: no node key in NVS - run chaos-host nodes deploy")
        return None
    hal = make_hal(config, next_boot_counter(nvs))
    kbd_intr(-1)  # Ctrl-C is a command byte now, not a way into the REPL
    return Node(hal, config, write, key)


def run(config_path="/chaosnode.json"):
    """Load the config and key and run the node until reset."""
    import esp32
    import machine
    import micropython

    try:
        config = load_config(config_path)
    except (OSError, ValueError) as exc:
        print("chaosnode: no usable config at", config_path, "-", exc)
        return
    from chaosnode.hal_esp32 import Esp32Hal

    node = prepare(
        config,
        esp32.NVS(NVS_NAMESPACE),
        boot_button_held(int(config.get("boot_pin", 0))),
        micropython.kbd_intr,
        Esp32Hal,
        _Output().write,
    )
    if node is None:
        return
    if config.get("link") == "ble":
        from chaosnode.ble_app import run_ble

        run_ble(node, str(config.get("label", "chaosnode")))
        return
    if config.get("link") == "wifi":
        import os

        from chaosnode.mqtt_app import run_mqtt

        run_mqtt(node, config, esp32.NVS(NVS_NAMESPACE), lambda: os.urandom(8))
        return
    stdin = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin
    poller = select.poll()
    poller.register(sys.stdin, select.POLLIN)
    while True:
        wait = node.step()
        if node.reboot_requested:
            time.sleep_ms(50)  # let the reply leave the USB buffer
            machine.reset()
        got = 0
        timeout = wait if wait < 20 else 20  # ms: wake for commands even while idle
        while got < _MAX_COMMAND_BYTES and poller.poll(timeout if got == 0 else 0):
            data = stdin.read(1)
            if not data:
                break
            node.feed_commands(data if isinstance(data, bytes) else data.encode())
            got += 1

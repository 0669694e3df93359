"""Stand-ins for the board's esp32.NVS and micropython.kbd_intr, for running chaosnode.app's
prepare() and deploy's provisioning script under the MicroPython VM (which has no esp32)."""

import sys


class FakeNVS:
    """esp32.NVS semantics: blobs and i32s by name; OSError for a missing entry."""

    def __init__(self):
        self.blobs = {}
        self.ints = {}
        self.commits = 0

    def set_blob(self, name, value):
        self.blobs[name] = bytes(value)

    def get_blob(self, name, buf):
        if name not in self.blobs:
            raise OSError(-4354)  # ESP_ERR_NVS_NOT_FOUND
        value = self.blobs[name]
        buf[0 : len(value)] = value
        return len(value)

    def set_i32(self, name, value):
        self.ints[name] = value

    def get_i32(self, name):
        if name not in self.ints:
            raise OSError(-4354)
        return self.ints[name]

    def commit(self):
        self.commits += 1


class _Esp32:
    def __init__(self, store):
        self.store = store
        self.namespaces = []

    def NVS(self, namespace):  # noqa: N802 - esp32.NVS is a class on the board
        self.namespaces.append(namespace)
        return self.store


def install_esp32(store):
    """Make ``import esp32`` give a module whose NVS(namespace) is store."""
    module = _Esp32(store)
    sys.modules["esp32"] = module
    return module


class KbdIntr:
    """Records micropython.kbd_intr calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, char):
        self.calls.append(char)

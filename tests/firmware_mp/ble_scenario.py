"""The firmware's BLE service state machine and chunking, driven like ble_app drives them
(runs under MicroPython and CPython): advertising payloads, a connection with an MTU
exchange, the host's hello written in 20-byte pieces, notifications that sometimes fail
(the radio's buffers full), a disconnect and advertising again."""

import json

from chaosnode.ble import (
    ADVERTISING,
    CONNECTED,
    BleService,
    advertising_payload,
    parse_advertising,
    scan_response_payload,
)
from chaosnode.node import Node
from fake_hal import FakeHal


def _hex(data):
    return "".join("%02x" % b for b in data)


def main(config_text, hello_hex, mtu):
    config = json.loads(config_text)
    hal = FakeHal(start_ms=1000)
    chunks = []
    calls = [0]

    def notify(chunk):
        calls[0] += 1
        if calls[0] % 3 == 0:
            return False  # ENOMEM: retried on the next turn
        chunks.append(bytes(chunk))
        return True

    node = Node(hal, config, None)
    service = BleService(node, notify)
    node.write = service.outbox.write
    result = {"states": [], "adv": [], "scan": []}
    for label in ("n1", "a-very-long-node-label-here"):
        adv = advertising_payload(label)
        result["adv"].append([_hex(adv), len(adv)])
        fields = parse_advertising(adv)
        result["scan"].append([_hex(fields.get(0x09, b"")), _hex(fields.get(0x08, b"")),
                               _hex(parse_advertising(scan_response_payload(label)).get(0x09, b""))])
    service.start()
    result["states"].append(service.state)
    service.on_write(b"hello 00\n")  # not connected: ignored
    service.on_connect(1)
    result["states"].append(service.state)
    service.on_mtu(mtu)
    hello = bytes(int(hello_hex[i:i + 2], 16) for i in range(0, len(hello_hex), 2))
    for i in range(0, len(hello), 20):  # the host writes in pieces of its write size
        service.on_write(hello[i:i + 20])
    for _ in range(200):
        hal.now += 20
        node.step()
        service.pump(8)
    for _ in range(50):
        service.pump(8)
    result["streaming"] = node.streaming
    result["chunk_sizes"] = [len(c) for c in chunks]
    result["stream"] = _hex(b"".join(chunks))
    result["pending_after"] = service.outbox.pending()
    result["notify_failures"] = service.notify_failures
    service.on_disconnect(1)
    result["states"].append(service.state)
    result["after_disconnect"] = [node.gate is None, node.streaming, service.outbox.pending()]
    return json.dumps(result)

"""The firmware's MQTT link driven like mqtt_app drives it (runs under MicroPython and CPython),
with a fake client that has umqtt.simple's methods: connect with a retained last will,
subscribe to cmd, announce online, the host's hello arriving as a message, frames published
whole in messages of at most MAX_MESSAGE bytes, a message on another topic ignored, a publish
failing (the connection lost: the session ends), a reconnection with a new nonce."""

import json

from chaosnode.mqtt import MAX_MESSAGE, OFFLINE, ONLINE, MqttLink, node_topic
from chaosnode.node import Node
from fake_hal import FakeHal


def _hex(data):
    return "".join(f"{b:02x}" for b in data)


class FakeUmqtt:
    """Records what the link does; publish fails once when told to."""

    def __init__(self):
        self.calls = []
        self.published = []
        self.inbox = []
        self.callback = None
        self.fail_next_publish = False

    def set_callback(self, f):
        self.callback = f

    def set_last_will(self, topic, msg, retain=False, qos=0):
        self.calls.append(["will", topic, _hex(msg), retain])

    def connect(self, clean_session=True):
        self.calls.append(["connect"])

    def subscribe(self, topic, qos=0):
        self.calls.append(["subscribe", topic])

    def publish(self, topic, msg, retain=False, qos=0):
        if self.fail_next_publish:
            self.fail_next_publish = False
            raise OSError(104)
        self.published.append([topic, bytes(msg), retain])

    def check_msg(self):
        while self.inbox:
            topic, msg = self.inbox.pop(0)
            self.callback(topic, msg)

    def disconnect(self):
        self.calls.append(["disconnect"])


def main(config_text, hello_hex, hello2_hex):
    config = json.loads(config_text)
    hal = FakeHal(start_ms=1000)
    client = FakeUmqtt()
    nonces = [0]

    def nonce():
        nonces[0] += 1
        return bytes([nonces[0]] * 8)

    node = Node(hal, config, None)
    link = MqttLink(node, client, "m1", "n1", nonce)
    node.write = link.outbox.write
    result = {"states": [link.state]}
    result["connected"] = link.connect()
    result["states"].append(link.state)
    cmd = node_topic("m1", "n1", "cmd")
    frames = node_topic("m1", "n1", "frames")
    client.inbox.append((b"chaosmagnet/m1/node/other/cmd", b"hello 00\n"))  # another node's: ignored
    client.inbox.append((cmd.encode(), bytes(int(hello_hex[i : i + 2], 16) for i in range(0, len(hello_hex), 2))))
    for _ in range(150):
        hal.now += 20
        node.step()
        link.poll()
    first = [m for m in client.published if m[0] == frames]
    result["first_stream"] = _hex(b"".join(m[1] for m in first))
    result["first_sizes"] = [len(m[1]) for m in first]
    result["ignored"] = link.ignored
    client.fail_next_publish = True
    for _ in range(5):
        hal.now += 20
        node.step()
        link.poll()
    result["states"].append(link.state)
    result["after_loss"] = [node.gate is None, node.streaming, link.outbox.pending()]
    result["first_state"] = [[m[0], m[1].decode(), m[2]] for m in client.published if m[0] != frames]
    client.published = []
    result["reconnected"] = link.connect()
    client.inbox.append((cmd, bytes(int(hello2_hex[i : i + 2], 16) for i in range(0, len(hello2_hex), 2))))
    for _ in range(50):
        hal.now += 20
        node.step()
        link.poll()
    result["second_stream"] = _hex(b"".join(m[1] for m in client.published if m[0] == frames))
    result["states"].append(link.state)
    link.close()
    result["states"].append(link.state)
    result["calls"] = client.calls
    result["state_messages"] = [[m[0], m[1].decode(), m[2]] for m in client.published if m[0] != frames]
    result["max_message"] = MAX_MESSAGE
    result["names"] = [OFFLINE, ONLINE]
    return json.dumps(result)

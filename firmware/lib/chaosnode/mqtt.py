"""The node's Wi-Fi link over MQTT, portable part: topics, the frame outbox and the link's
state machine around any client with micropython-lib ``umqtt.simple``'s interface.

Topics (docs/mesh.md)::

    chaosmagnet/<mesh>/node/<label>/frames   node -> host: frames, whole, in order (QoS 0)
    chaosmagnet/<mesh>/node/<label>/cmd      host -> node: hello and authenticated commands
    chaosmagnet/<mesh>/node/<label>/state    retained "online <nonce>", last will "offline"

A message on the frames topic carries one or more whole frames exactly as the
serial link carries them, so the host feeds the payloads to the same
byte-stream parser and handshake.  The broker is not trusted with anything:
frames stay tagged under the session key of one handshake.  Every MQTT
connection is a new link: the node publishes a new ``online`` nonce, the
host answers with a new hello, and the previous session ends.

Board code (chaosnode.mqtt_app) connects Wi-Fi and TLS and passes an
``umqtt.simple.MQTTClient``; the host's simulator passes a paho-mqtt client
with the same methods; the tests (MicroPython VM) pass a recording fake.
"""

ROOT = "chaosmagnet"
MAX_MESSAGE = 4096  # bytes of frames per publish: several small frames share one message
OUTBOX_BYTES = 16384  # frames waiting to be published; a full outbox is a short write
KEEPALIVE_S = 30

# link states
OFFLINE = "offline"
ONLINE = "online"


def nvs_secret(nvs, name, size=4096):
    """A secret blob deploy stored in NVS (wifi_psk, mqtt_pw, tls_key) as bytes, or None."""
    buf = bytearray(size)
    try:
        n = nvs.get_blob(name, buf)
    except OSError:
        return None
    return bytes(buf[0:n])


def node_topic(mesh, label, channel):
    """``chaosmagnet/<mesh>/node/<label>/<channel>`` (channel: frames, cmd or state)."""
    return ROOT + "/" + mesh + "/node/" + label + "/" + channel


class FrameOutbox:
    """Whole frames waiting to be published, joined into messages of at most MAX_MESSAGE bytes.

    ``write(buf)`` is the node's write callable: it takes a whole frame or nothing
    (0: the node retries, then counts the frame dropped), so a message never
    carries part of a frame.
    """

    def __init__(self, capacity=OUTBOX_BYTES, max_message=MAX_MESSAGE):
        self.capacity = capacity
        self.max_message = max_message
        self.frames = []
        self.size = 0
        self.messages_sent = 0
        self.bytes_sent = 0

    def write(self, data):
        n = len(data)
        if self.size + n > self.capacity:
            return 0
        self.frames.append(bytes(data))
        self.size += n
        return n

    def pending(self):
        return self.size

    def next_message(self):
        """The frames of the next message, joined (at least one frame; empty when none wait)."""
        if not self.frames:
            return b""
        total = 0
        count = 0
        for frame in self.frames:
            if count and total + len(frame) > self.max_message:
                break
            total += len(frame)
            count += 1
        return b"".join(self.frames[0:count])

    def sent(self, message):
        """The message returned by next_message() went out."""
        n = len(message)
        taken = 0
        while self.frames and taken < n:
            taken += len(self.frames.pop(0))
        self.size -= taken
        self.messages_sent += 1
        self.bytes_sent += n

    def clear(self):
        self.frames = []
        self.size = 0


class MqttLink:
    """The node's MQTT link: connect with a last will, subscribe to cmd, announce, publish frames.

    ``client`` has umqtt.simple's methods (set_callback, set_last_will,
    connect, subscribe, publish, check_msg, disconnect).  ``nonce()`` gives
    fresh bytes for the online announcement.  Any OSError from the client
    means the connection is gone: the session ends and connect() is due again.
    """

    def __init__(self, node, client, mesh, label, nonce, outbox=None):
        self.node = node
        self.client = client
        self.frames_topic = node_topic(mesh, label, "frames")
        self.cmd_topic = node_topic(mesh, label, "cmd")
        self.state_topic = node_topic(mesh, label, "state")
        self.nonce = nonce
        self.outbox = outbox if outbox is not None else FrameOutbox()
        self.state = OFFLINE
        self.connections = 0
        self.errors = 0
        self.ignored = 0
        client.set_callback(self.on_message)

    def connect(self):
        """Connect, subscribe to the command topic, announce ``online <nonce>`` (retained).

        Returns True when linked; False after a failure (the caller waits and retries)."""
        try:
            self.client.set_last_will(self.state_topic, b"offline", True, 0)
            self.client.connect()
            self.client.subscribe(self.cmd_topic, 0)
            nonce = self.nonce()
            text = "".join("%02x" % b for b in nonce)
            self.client.publish(self.state_topic, ("online " + text).encode(), True, 0)
        except OSError:
            self.errors += 1
            self.lost()
            return False
        self.outbox.clear()
        self.node.link_lost()  # a new connection: the host says hello again
        self.connections += 1
        self.state = ONLINE
        return True

    def lost(self):
        """The connection is gone: end the session, drop what waits."""
        if self.state == ONLINE:
            self.node.link_lost()
        self.state = OFFLINE
        self.outbox.clear()
        try:
            self.client.disconnect()
        except (OSError, AttributeError):
            pass

    def on_message(self, topic, msg):
        """umqtt's callback: bytes for the node's command reader (other topics are ignored)."""
        if isinstance(topic, str):
            topic = topic.encode()
        if topic != self.cmd_topic.encode():
            self.ignored += 1
            return
        self.node.feed_commands(msg)

    def poll(self, budget=8):
        """Main-loop work: deliver received commands, publish waiting frames.  False when the
        connection was lost (connect() again after a pause)."""
        if self.state != ONLINE:
            return False
        try:
            self.client.check_msg()
            sent = 0
            while self.outbox.pending() and sent < budget:
                message = self.outbox.next_message()
                self.client.publish(self.frames_topic, message, False, 0)
                self.outbox.sent(message)
                sent += 1
        except OSError:
            self.errors += 1
            self.lost()
            return False
        return True

    def close(self):
        """A clean goodbye: ``offline`` (retained) and a disconnect."""
        if self.state == ONLINE:
            try:
                self.client.publish(self.state_topic, b"offline", True, 0)
            except OSError:
                pass
        self.lost()

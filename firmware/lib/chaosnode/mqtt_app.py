"""The node's main loop over Wi-Fi and MQTT on the board (``network``, ``ssl``, ``umqtt.simple``).

``nodes deploy --link wifi`` writes the broker's host, port, the mesh and the
node's MQTT user name into the node config (``"link": "wifi"``), copies the
mesh CA and the node's client certificate (public) next to it, and sends the
secrets once into NVS with the node key: the Wi-Fi passphrase (``wifi_psk``),
the node's MQTT password (``mqtt_pw``) and its TLS client key (``tls_key``).
umqtt.simple comes from micropython-lib (``mpremote mip install umqtt.simple``).

TLS verifies the broker against the mesh CA and presents the node's
certificate; the broker also checks the password and the ACL (a node
publishes only under its own topic prefix).  After a lost Wi-Fi or broker
connection the node ends its session and tries again with a backoff of
0.5 s up to 8 s; the host handshakes anew on every connection.
"""

import time

import machine
import network
import ssl
from umqtt.simple import MQTTClient

from chaosnode.mqtt import KEEPALIVE_S, MqttLink, nvs_secret

CA_PATH = "/chaosnode_ca.pem"
CERT_PATH = "/chaosnode_cert.pem"
WIFI_TIMEOUT_MS = 20000


def connect_wifi(ssid, psk):
    """Join the Wi-Fi network (station mode); True when connected within WIFI_TIMEOUT_MS."""
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if not wlan.isconnected():
        wlan.connect(ssid, psk)
        start = time.ticks_ms()
        while not wlan.isconnected():
            if time.ticks_diff(time.ticks_ms(), start) > WIFI_TIMEOUT_MS:
                return False
            time.sleep_ms(100)
    return True


def tls_context(tls_key):
    """Verify the broker against the mesh CA; present the node's certificate and key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.verify_mode = ssl.CERT_REQUIRED
    with open(CA_PATH, "rb") as f:
        context.load_verify_locations(cadata=f.read())
    with open(CERT_PATH, "rb") as f:
        cert = f.read()
    context.load_cert_chain(cert, tls_key)
    return context


def run_mqtt(node, config, nvs, nonce):
    """Serve the node over Wi-Fi/MQTT until reset (chaosnode.app calls this for link = "wifi")."""
    psk = nvs_secret(nvs, "wifi_psk")
    password = nvs_secret(nvs, "mqtt_pw")
    tls_key = nvs_secret(nvs, "tls_key")
    if psk is None or password is None or tls_key is None:
        print("chaosnode: no Wi-Fi or MQTT secret in NVS - run chaos-host nodes deploy --link wifi")
        return
    label = str(config.get("label", "chaosnode"))
    client = MQTTClient(
        label + "-" + "".join("%02x" % b for b in nonce()[0:4]),
        config["broker_host"],
        port=int(config.get("broker_port", 8883)),
        user=config.get("mqtt_user", label),
        password=password,
        keepalive=KEEPALIVE_S,
        ssl=tls_context(tls_key),
    )
    link = MqttLink(node, client, config["mesh"], label, nonce)
    node.write = link.outbox.write
    backoff = 500
    while True:
        if link.state != "online":
            if connect_wifi(config["wifi_ssid"], psk) and link.connect():
                backoff = 500
            else:
                time.sleep_ms(backoff)
                backoff = backoff * 2 if backoff < 8000 else 8000
                continue
        wait = node.step()
        if node.reboot_requested:
            link.poll()
            time.sleep_ms(100)
            machine.reset()
        link.poll()
        time.sleep_ms(wait if wait < 5 else 5)

"""The mesh: many hosts (and later Wi-Fi nodes) through an MQTT broker, and a fleet collector.

Nothing outside this folder imports it except the CLI entry points: sources,
the pool and minting know nothing of the mesh.  The broker is never trusted
for credit: every host message is signed with the host's certified audit key
(ML-DSA-65), peer seeds are sealed to the peer's ML-KEM-768 key and absorbed
with zero credit.

* ``pki``, ``passwd``, ``setup``: what `chaos-host mesh init` writes (CA,
  certificates, mosquitto configuration, passwords, ACL) and `mesh broker` runs.
* ``url``, ``credentials``, ``topics``: where a client connects, as whom, and
  the topic layout.
* ``keys``, ``messages``, ``peerseed``: the mesh KEM key, signed envelopes with
  replay counters (sans-IO), and sealed peer seeds.
* ``client``, ``agent``: the MQTT connection and the host side of `run --mesh`.
* ``collector``: `chaos-host collector`: verify, store (SQLite), serve the fleet page.
"""

"""MQTT plumbing shared by the Wi-Fi node transport (chaosmagnet.nodes.mqtt) and the mesh
(chaosmagnet.mesh): broker URLs, topic names, client credentials and the client itself.

It sits below both, so that nothing below the mesh imports it: the mesh builds
on this, and so does the node transport, without either reaching into the other.
"""

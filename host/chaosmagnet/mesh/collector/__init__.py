"""The fleet collector: `chaos-host collector --mesh URL --db PATH`.

* ``store``: SQLite (WAL) time series of every host's verified status, its
  sources, its events and the alerts derived from them, with a retention.
* ``service``: subscribes to every host's identity, status and events,
  verifies each signature (mesh.messages) and stores what passes.
* ``web``: the fleet page, its JSON API and /metrics, under the dashboard's
  security rules (chaosmagnet.dashboard.security).

It sees counters and estimates, never samples, seeds or pool state.
"""

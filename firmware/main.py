"""ChaosMagnet node: start sampling (see lib/chaosnode/app.py)."""

from chaosnode.app import run

run()

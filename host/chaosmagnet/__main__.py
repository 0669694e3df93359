"""`python -m chaosmagnet` is `chaos-host`."""

from chaosmagnet.cli import main

main()

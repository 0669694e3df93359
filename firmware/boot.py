"""Runs before main.py: silence ESP-IDF log output so only frames reach the host."""

try:
    import esp

    esp.osdebug(None)
except ImportError:
    pass

"""ChaosMagnet node firmware: portable modules shared by the board and the simulator.

Everything in this package except ``hal_esp32`` and ``app`` runs unchanged under
MicroPython (on the board, and under the WebAssembly port in the tests) and
under CPython (the host's simulator).  Keep it to the common subset: no f-strings
with format specs MicroPython lacks, no dataclasses, no typing at run time.
"""

FIRMWARE_VERSION = "0.2.0"
PROTOCOL_VERSION = 2

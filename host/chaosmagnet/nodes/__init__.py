"""ESP32-S3 feather nodes: wire protocol, frame parser, serial link, registry,
node sources, simulator and the esptool/mpremote tooling.

Layers, from the bytes up: ``protocol`` (the frame layout and an encoder),
``parser`` (sans-IO: bytes in, frames and drop events out), ``link`` (a serial
port feeding a parser, reconnecting), ``sources`` (frames become pipeline
sources named ``node:<label>:<adc|rng|jitter>``).
"""

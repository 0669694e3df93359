"""Board HAL for ESP32-S3 under MicroPython: ADC1 at 0 dB, RNG with the radio on, CPU ticks.

Only this module and chaosnode.app touch the hardware.  The hot loops are
compiled to machine code (viper for the ADC, native for the jitter loop).
"""

import os
import time

import machine
import micropython

_JITTER_WORK = 16  # memory touches between two ticks_cpu() reads


@micropython.viper
def _adc_fill(read, buf: ptr8, n: int):
    i = 0
    while i < n:
        v = int(read())
        buf[2 * i] = v & 0xFF
        buf[2 * i + 1] = (v >> 8) & 0x0F
        i += 1


@micropython.native
def _jitter_fill(buf, n, scratch):
    ticks = time.ticks_cpu
    diff = time.ticks_diff
    prev = ticks()
    acc = 0
    for i in range(n):
        for j in range(_JITTER_WORK):
            acc ^= scratch[(acc + j) & 63]
            scratch[j & 63] = acc & 0xFF
        now = ticks()
        buf[i] = diff(now, prev) & 0xFF  # ticks_cpu is a 30-bit counter: always ticks_diff
        prev = now


class Esp32Hal:
    """The real board: ADC.read() (12-bit) on an ADC1 pin, os.urandom, ticks_cpu()."""

    def __init__(self, config, boot_counter=0):
        self._boot_counter = boot_counter
        pin = int(config["adc_pin"])
        if not 1 <= pin <= 10:
            raise ValueError("ADC pin must be on ADC1 (GPIO1..GPIO10): ADC2 stops while the radio is on")
        self.adc = machine.ADC(machine.Pin(pin), atten=machine.ADC.ATTN_0DB)
        self._read = self.adc.read  # raw 12-bit value; read_u16() low bits are scaled copies
        self._scratch = bytearray(64)
        self.radio = None
        self._radio_on()
        self._led = None
        self._led_kind = config.get("led_kind", "none")
        led_pin = config.get("led_pin")
        if led_pin is not None and self._led_kind in ("gpio", "gpio_inverted"):
            self._led = machine.Pin(int(led_pin), machine.Pin.OUT)
        elif led_pin is not None and self._led_kind == "neopixel":
            import neopixel

            self._led = neopixel.NeoPixel(machine.Pin(int(led_pin)), 1)

    def _radio_on(self):
        # esp_random() is a true RNG only while the RF subsystem runs: switch BLE on.
        import bluetooth

        self.radio = bluetooth.BLE()
        self.radio.active(True)

    def fill_adc(self, buf, n):
        _adc_fill(self._read, buf, n)

    def fill_rng(self, buf, n):
        buf[0:n] = os.urandom(n)

    def fill_jitter(self, buf, n):
        _jitter_fill(buf, n, self._scratch)

    def ticks_ms(self):
        return time.ticks_ms()

    def ticks_diff(self, a, b):
        return time.ticks_diff(a, b)

    def boot_nonce(self):
        return os.urandom(8)

    def boot_counter(self):
        return self._boot_counter  # counted in NVS by chaosnode.app before the HAL starts

    def led(self, on):
        if self._led is None:
            return
        if self._led_kind == "neopixel":
            self._led[0] = (0, 8, 0) if on else (0, 0, 0)
            self._led.write()
        else:
            self._led.value((not on) if self._led_kind == "gpio_inverted" else on)

    def mem_free(self):
        import gc

        return gc.mem_free()

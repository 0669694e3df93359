"""Audio source: the low bits of microphone PCM samples, through PortAudio.

The input device (the default one, or one chosen by name or index) is opened
for 16-bit mono capture with sounddevice.  Each PCM sample gives one raw
sample: its least significant ``bits`` bits (8 by default), where thermal and
quantisation noise live.  Nothing is added or removed: a muted or unplugged
microphone delivers constant or near-constant samples, and the engine's health
tests must see exactly that (no dither is ever added).

Level, clipping and silence are measured on every block and shown in
``details()``.  sounddevice is imported only when the source is checked or
started, so this module imports on a machine without PortAudio.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from chaosmagnet.errors import (
    ConfigError,
    SourceError,
    SourceUnavailable,
    UsageError,
    escape_device_text,
)
from chaosmagnet.sources.base import AVAILABLE, Availability, Source, SourceInfo
from chaosmagnet.sources.registry import SourceOptions, register

FULL_SCALE = 32768.0
CLIP_LEVEL = 32767  # |sample| at or above this is clipped (int16 full scale)
SILENCE_SPAN = 2  # a block whose peak-to-peak is at most this many LSBs is silent
LOW_LEVEL_DBFS = -80.0  # RMS below this: gain probably too low
CLIPPING_FRACTION = 0.001  # more than this share of clipped samples: gain too high


def declared_h_for(bits: int) -> float:
    """Conservative min-entropy claimed per raw sample of ``bits`` low bits.

    One bit for two or more low bits, half a bit for the LSB alone: far below
    what the thermal noise of a working microphone gives, because capture
    chains resample, filter and noise-suppress (neighbouring samples are
    correlated) and because the claim sets the health-test cutoffs.
    """
    return 1.0 if bits >= 2 else 0.5


def pcm_low_bits(pcm: np.ndarray, bits: int) -> np.ndarray:
    """The low ``bits`` bits of each int16 PCM sample (two's complement), as uint8."""
    if not 1 <= bits <= 8:
        raise UsageError(f"audio sample width must be 1..8 bits, got {bits}")
    samples = np.ascontiguousarray(pcm, dtype=np.int16).reshape(-1)
    return (samples.view(np.uint16) & ((1 << bits) - 1)).astype(np.uint8)


@dataclass(frozen=True)
class AudioLevel:
    """Level facts of one block of PCM: what gain, clipping and silence look like."""

    rms_dbfs: float  # RMS relative to full scale; -inf for digital silence
    peak: int  # largest |sample|
    span: int  # peak-to-peak (max - min)
    clipped_fraction: float
    distinct_values: int

    @property
    def silent(self) -> bool:
        """Constant or near-constant: a muted, unplugged or disabled input."""
        return self.span <= SILENCE_SPAN

    @property
    def clipping(self) -> bool:
        """Gain too high: a noticeable share of samples sit at full scale."""
        return self.clipped_fraction > CLIPPING_FRACTION

    @property
    def verdict(self) -> str:
        """One word for the live view: silent, low, clipping or ok."""
        if self.silent:
            return "silent"
        if self.clipping:
            return "clipping"
        if self.rms_dbfs < LOW_LEVEL_DBFS:
            return "low"
        return "ok"


def measure_level(pcm: np.ndarray) -> AudioLevel:
    """Measure the level, clipping and spread of a non-empty block of int16 PCM."""
    x = np.ascontiguousarray(pcm, dtype=np.int16).reshape(-1).astype(np.int32)
    if x.size == 0:
        raise ValueError("empty PCM block")
    rms = math.sqrt(float(np.mean(x.astype(np.float64) ** 2)))
    rms_dbfs = 20.0 * math.log10(rms / FULL_SCALE) if rms > 0 else float("-inf")
    return AudioLevel(
        rms_dbfs=rms_dbfs,
        peak=int(np.max(np.abs(x))),
        span=int(x.max() - x.min()),
        clipped_fraction=float(np.count_nonzero(np.abs(x) >= CLIP_LEVEL)) / x.size,
        distinct_values=int(np.unique(x).size),
    )


def _import_sounddevice() -> Any:
    """Import sounddevice; SourceUnavailable with the reason when it cannot load."""
    try:
        import sounddevice
    except ModuleNotFoundError as exc:
        raise SourceUnavailable("the sounddevice package is not installed") from exc
    except OSError as exc:  # sounddevice raises OSError when libportaudio is missing
        raise SourceUnavailable("PortAudio library missing (install libportaudio2)") from exc
    return sounddevice


def _parse_device(device: str | None) -> int | str | None:
    """A device given as digits is a PortAudio index, anything else a name (substring)."""
    if device is None or device == "":
        return None
    return int(device) if device.strip().isdigit() else device


class AudioSource(Source):
    """Low bits of 16-bit mono microphone samples from a PortAudio input device."""

    BLOCK_SECONDS = 0.1

    def __init__(self, device: str | None = None, bits: int = 8) -> None:
        if not 1 <= bits <= 8:
            raise UsageError(f"audio sample width must be 1..8 bits, got {bits}")
        self.info = SourceInfo(
            name="audio",
            kind="local",
            bits_per_sample=bits,
            declared_h=declared_h_for(bits),
            conditioned=False,
            description=f"low {bits} bits of 16-bit mono microphone samples (PortAudio)",
        )
        self.bits = bits
        self.device = _parse_device(device)
        self._sd: Any = None
        self._stream: Any = None
        self._lock = threading.Lock()  # serialises reads against closing the stream
        self._running = False
        self._device_name = ""
        self._samplerate = 0.0
        self._blocksize = 0
        self._blocks = 0
        self._samples = 0
        self._overflows = 0
        self._silent_blocks = 0
        self._clipping_blocks = 0
        self._level: AudioLevel | None = None

    # -- device lookup -----------------------------------------------------

    def _input_device(self, sd: Any) -> dict[str, Any]:
        """The PortAudio description of the chosen input device; SourceUnavailable if none."""
        try:
            found = sd.query_devices(self.device, kind="input")
        except ValueError as exc:  # no device matches the name/index, or several do
            raise SourceUnavailable(
                f"input device {escape_device_text(str(self.device))!r} not usable: "
                f"{escape_device_text(str(exc))}"
            ) from exc
        except sd.PortAudioError as exc:  # no default input device, or no such index
            wanted = "" if self.device is None else f" {self.device!r}"
            raise SourceUnavailable(f"no input device{wanted}") from exc
        if int(found.get("max_input_channels", 0)) < 1:
            raise SourceUnavailable(
                f"device {escape_device_text(str(found.get('name')))!r} has no input channels"
            )
        return dict(found)

    def availability(self) -> Availability:
        try:
            self._input_device(_import_sounddevice())
        except SourceUnavailable as exc:
            return Availability(False, str(exc))
        return AVAILABLE

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        sd = _import_sounddevice()
        found = self._input_device(sd)
        samplerate = float(found.get("default_samplerate") or 48000.0)
        blocksize = max(64, int(samplerate * self.BLOCK_SECONDS))
        try:
            stream = sd.InputStream(
                device=int(found["index"]),
                channels=1,
                dtype="int16",
                samplerate=samplerate,
                blocksize=0,  # PortAudio picks the host buffer; read() asks for blocksize
            )
            stream.start()
        except sd.PortAudioError as exc:
            raise SourceUnavailable(
                f"cannot open input device {escape_device_text(str(found.get('name')))!r}: "
                f"{escape_device_text(str(exc))}"
            ) from exc
        self._sd = sd
        self._stream = stream
        self._blocksize = blocksize
        self._samplerate = float(stream.samplerate)
        self._device_name = str(found.get("name", ""))
        self._running = True

    async def stop(self) -> None:
        self._running = False
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
            if stream is not None:
                try:
                    stream.abort()
                finally:
                    stream.close()

    # -- sampling ----------------------------------------------------------

    def read_block(self) -> np.ndarray | None:
        """Blocking: capture one block of PCM and return its raw samples (None once closed)."""
        with self._lock:
            stream = self._stream
            if stream is None:
                return None
            try:
                pcm, overflowed = stream.read(self._blocksize)
            except self._sd.PortAudioError as exc:
                raise SourceError(f"audio: capture failed: {escape_device_text(str(exc))}") from exc
        pcm = np.asarray(pcm, dtype=np.int16).reshape(-1)
        if overflowed:
            self._overflows += 1
        if pcm.size:
            level = measure_level(pcm)
            self._level = level
            self._silent_blocks += level.silent
            self._clipping_blocks += level.clipping
        self._blocks += 1
        self._samples += pcm.size
        return pcm_low_bits(pcm, self.bits)

    async def batches(self) -> AsyncIterator[np.ndarray]:
        # Never faster than the nominal sample rate: a device that delivers
        # faster than real time (a null or file PCM) is paced like a real one.
        started = time.monotonic()
        delivered = 0
        while self._running:
            samples = await asyncio.to_thread(self.read_block)
            if samples is None:
                return
            if samples.size:
                delivered += samples.size
                yield samples
            ahead = started + delivered / self._samplerate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)

    def details(self) -> dict[str, object]:
        out: dict[str, object] = {
            "device": escape_device_text(self._device_name) if self._device_name else "",
            "samplerate": self._samplerate,
            "bits": self.bits,
            "blocks": self._blocks,
            "pcm_samples": self._samples,
            "overflows": self._overflows,
            "silent_blocks": self._silent_blocks,
            "clipping_blocks": self._clipping_blocks,
        }
        level = self._level
        if level is not None:
            out.update(
                level=level.verdict,
                rms_dbfs=round(level.rms_dbfs, 1) if math.isfinite(level.rms_dbfs) else None,
                peak=level.peak,
                clipped_fraction=level.clipped_fraction,
                distinct_values=level.distinct_values,
            )
        return out


def _build(options: SourceOptions) -> AudioSource:
    """From --audio-device, else the config's [audio] table (device, bits)."""
    table = options.extra.get("audio", {})
    if not isinstance(table, dict):
        raise ConfigError("[audio] must be a table")
    unknown = sorted(set(table) - {"device", "bits"})
    if unknown:
        raise ConfigError(f"[audio]: unknown key {unknown[0]!r} (allowed: bits, device)")
    device = options.audio_device
    if device is None and "device" in table:
        if isinstance(table["device"], bool) or not isinstance(table["device"], (str, int)):
            raise ConfigError("[audio] device: expected a name or an index")
        device = str(table["device"])
    bits = options.audio_bits  # checked by AudioSource (a UsageError)
    if "bits" in table:
        bits = table["bits"]
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 8:
            raise ConfigError(f"[audio] bits: expected an integer 1..8, got {bits!r}")
    return AudioSource(device=device, bits=bits)


register("audio", _build, default_on=False)

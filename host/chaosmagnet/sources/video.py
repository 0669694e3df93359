"""Video source: low bits of camera pixels and of their frame-to-frame changes.

Any OpenCV capture works: a camera index (``--camera 0``), a video file or a
stream URL.  From each frame the source takes a centred square region of the
green channel (the densest, least interpolated colour of a Bayer sensor) and
emits, per pixel, the low ``bits`` bits of its value and then the low bits of
its difference from the same pixel in the previous frame.  Sensor noise moves
both; a static scene still changes its differences, a frozen feed does not.

Nothing is filtered: a black, saturated or frozen frame yields constant runs
that the health tests must catch.  Such frames are also counted and shown in
``details()`` with the frame rate and resolution.  OpenCV is imported only
when the source is checked or started.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
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

DEFAULT_REGION = 64  # side of the sampled square, pixels
DEFAULT_BITS = 4
DECLARED_H = 0.5  # bits of min-entropy claimed per raw sample (see docs/sources-av-hid.md)
BLACK_LEVEL = 8  # a pixel at or below this is black
SATURATED_LEVEL = 247  # a pixel at or above this is saturated
FLAT_FRACTION = 0.99  # share of black (saturated) pixels that makes a frame black (saturated)


@dataclass
class FrameStats:
    """Counts kept by a FrameSampler: what the feed looked like so far."""

    frames: int = 0
    black_frames: int = 0
    saturated_frames: int = 0
    static_frames: int = 0  # identical to the previous frame in the sampled region
    width: int = 0
    height: int = 0
    last_flags: list[str] = field(default_factory=list)


class FrameSampler:
    """Turns decoded frames into raw samples (sans-IO: no capture here).

    For a frame whose sampled region is R (green channel, side ``region``):
    the samples are ``R & mask`` followed by ``(R - R_prev) & mask`` (the
    difference modulo 2**bits; absent for the first frame or after the
    resolution changes).
    """

    def __init__(self, region: int = DEFAULT_REGION, bits: int = DEFAULT_BITS) -> None:
        if region < 1:
            raise UsageError(f"video region must be at least 1 pixel, got {region}")
        if not 1 <= bits <= 8:
            raise UsageError(f"video sample width must be 1..8 bits, got {bits}")
        self.region = region
        self.bits = bits
        self.mask = np.uint8((1 << bits) - 1)
        self.stats = FrameStats()
        self._previous: np.ndarray | None = None

    @staticmethod
    def channel(frame: np.ndarray) -> np.ndarray:
        """The plane that is sampled: green of a BGR(A) frame, or the frame if grey."""
        if frame.ndim == 3 and frame.shape[2] >= 3:
            return frame[:, :, 1]
        if frame.ndim == 3:
            return frame[:, :, 0]
        return frame

    def crop(self, plane: np.ndarray) -> np.ndarray:
        """The centred square region of a plane (smaller if the frame is)."""
        h, w = plane.shape[:2]
        side_y, side_x = min(self.region, h), min(self.region, w)
        y0, x0 = (h - side_y) // 2, (w - side_x) // 2
        return plane[y0 : y0 + side_y, x0 : x0 + side_x]

    def feed(self, frame: np.ndarray) -> np.ndarray:
        """Raw samples of one frame (uint8, low ``bits`` bits meaningful)."""
        if frame.dtype != np.uint8 or frame.ndim not in (2, 3) or frame.size == 0:
            raise SourceError(f"video: unsupported frame {frame.dtype} {frame.shape}")
        stats = self.stats
        stats.frames += 1
        h, w = frame.shape[:2]
        if (w, h) != (stats.width, stats.height):
            stats.width, stats.height = w, h
            self._previous = None
        flags: list[str] = []
        coarse = frame[::4, ::4]  # enough pixels to judge the whole frame, cheaply
        if np.count_nonzero(coarse <= BLACK_LEVEL) >= FLAT_FRACTION * coarse.size:
            stats.black_frames += 1
            flags.append("black")
        if np.count_nonzero(coarse >= SATURATED_LEVEL) >= FLAT_FRACTION * coarse.size:
            stats.saturated_frames += 1
            flags.append("saturated")
        region = np.ascontiguousarray(self.crop(self.channel(frame)))
        lsb = (region & self.mask).reshape(-1)
        previous, self._previous = self._previous, region
        if previous is None:
            stats.last_flags = flags
            return lsb
        if np.array_equal(region, previous):
            stats.static_frames += 1
            flags.append("static")
        stats.last_flags = flags
        diff = ((region - previous) & self.mask).reshape(-1)  # uint8 wraps: mod 256
        return np.concatenate([lsb, diff])


def _import_cv2() -> Any:
    """Import OpenCV quietly; SourceUnavailable with the reason when it cannot load."""
    try:
        import cv2
    except ModuleNotFoundError as exc:
        raise SourceUnavailable("OpenCV is not installed (opencv-python-headless)") from exc
    except ImportError as exc:  # e.g. a non-headless OpenCV without libGL
        raise SourceUnavailable(f"OpenCV cannot load: {escape_device_text(str(exc))}") from exc
    # Our own messages say what failed; OpenCV's warnings would only repeat it.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    return cv2


def _parse_camera(camera: str | None) -> int | str:
    """Digits are a camera index; anything else a file path or stream URL."""
    if camera is None or camera.strip() == "":
        return 0
    return int(camera) if camera.strip().isdigit() else camera


class VideoSource(Source):
    """Low bits of a pixel region, and of its frame-to-frame differences, from OpenCV."""

    MAX_READ_FAILURES = 10  # consecutive failed reads before a camera counts as lost

    def __init__(
        self, camera: str | None = None, region: int = DEFAULT_REGION, bits: int = DEFAULT_BITS
    ) -> None:
        self.sampler = FrameSampler(region, bits)
        self.camera = _parse_camera(camera)
        self.info = SourceInfo(
            name="video",
            kind="local",
            bits_per_sample=bits,
            declared_h=DECLARED_H,
            conditioned=False,
            description=(
                f"low {bits} bits of a {region}x{region} green-channel region and of its "
                "frame-to-frame differences (OpenCV)"
            ),
        )
        self._cv2: Any = None
        self._capture: Any = None
        self._lock = threading.Lock()  # serialises reads against releasing the capture
        self._running = False
        self._ended = False
        self._nominal_fps = 0.0
        self._measured_fps = 0.0
        self._last_frame_at: float | None = None

    @property
    def is_device(self) -> bool:
        """True for a camera index, False for a file or URL."""
        return isinstance(self.camera, int)

    def _label(self) -> str:
        if self.is_device:
            return f"camera {self.camera}"
        return escape_device_text(str(self.camera))

    def _check_target(self) -> None:
        """Cheap checks that need no capture: the camera node or the file exists."""
        if self.is_device:
            node = f"/dev/video{self.camera}"
            if sys.platform.startswith("linux") and not os.path.exists(node):
                raise SourceUnavailable(f"no camera ({node} does not exist)")
        elif "://" not in str(self.camera) and not os.path.isfile(str(self.camera)):
            raise SourceUnavailable(f"no camera: video file {self._label()!r} does not exist")

    def availability(self) -> Availability:
        try:
            cv2 = _import_cv2()
            self._check_target()
            if self.is_device and not sys.platform.startswith("linux"):
                capture = cv2.VideoCapture(self.camera)
                opened = capture.isOpened()
                capture.release()
                if not opened:
                    raise SourceUnavailable(f"no camera ({self._label()} cannot be opened)")
        except SourceUnavailable as exc:
            return Availability(False, str(exc))
        return AVAILABLE

    async def start(self) -> None:
        cv2 = _import_cv2()
        self._check_target()
        capture = await asyncio.to_thread(cv2.VideoCapture, self.camera)
        if not capture.isOpened():
            capture.release()
            what = "no camera" if self.is_device else "cannot decode video"
            raise SourceUnavailable(f"{what}: {self._label()} cannot be opened")
        self._cv2 = cv2
        self._capture = capture
        self._nominal_fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self._running = True
        self._ended = False

    async def stop(self) -> None:
        self._running = False
        await asyncio.to_thread(self._release)

    def _release(self) -> None:
        with self._lock:
            capture, self._capture = self._capture, None
            if capture is not None:
                capture.release()

    def read_frame_samples(self) -> np.ndarray | None:
        """Blocking: decode the next frame and return its raw samples (None at the end)."""
        failures = 0
        while True:
            with self._lock:
                capture = self._capture
                if capture is None:
                    return None
                ok, frame = capture.read()
            if ok and frame is not None:
                break
            if not self.is_device:
                self._ended = True  # end of the file (or of a finite stream)
                return None
            failures += 1
            if failures >= self.MAX_READ_FAILURES:
                raise SourceError(f"video: {self._label()} stopped delivering frames")
            time.sleep(0.05)
        now = time.monotonic()
        if self._last_frame_at is not None and now > self._last_frame_at:
            rate = 1.0 / (now - self._last_frame_at)
            previous = self._measured_fps
            self._measured_fps = rate if previous == 0 else 0.9 * previous + 0.1 * rate
        self._last_frame_at = now
        return self.sampler.feed(frame)

    async def batches(self) -> AsyncIterator[np.ndarray]:
        # A file is decoded as fast as it goes and ends at its end: looping it
        # would replay identical samples that no health test can see.
        while self._running:
            samples = await asyncio.to_thread(self.read_frame_samples)
            if samples is None:
                return
            yield samples

    def details(self) -> dict[str, object]:
        stats = self.sampler.stats
        return {
            "capture": self._label(),
            "resolution": f"{stats.width}x{stats.height}" if stats.frames else "",
            "fps_nominal": round(self._nominal_fps, 2),
            "fps_measured": round(self._measured_fps, 2),
            "region": self.sampler.region,
            "bits": self.sampler.bits,
            "frames": stats.frames,
            "black_frames": stats.black_frames,
            "saturated_frames": stats.saturated_frames,
            "static_frames": stats.static_frames,
            "frame_flags": ",".join(stats.last_flags) or "ok",
            "ended": self._ended,
        }


def _build(options: SourceOptions) -> VideoSource:
    """From --camera, else the config's [video] table (camera, region, bits)."""
    table = options.extra.get("video", {})
    if not isinstance(table, dict):
        raise ConfigError("[video] must be a table")
    unknown = sorted(set(table) - {"camera", "region", "bits"})
    if unknown:
        raise ConfigError(f"[video]: unknown key {unknown[0]!r} (allowed: bits, camera, region)")
    camera = options.camera
    if camera is None and "camera" in table:
        if isinstance(table["camera"], bool) or not isinstance(table["camera"], (str, int)):
            raise ConfigError("[video] camera: expected a device index, a path or a URL")
        camera = str(table["camera"])
    numbers = {"region": (DEFAULT_REGION, 1, 4096), "bits": (DEFAULT_BITS, 1, 8)}
    values = {}
    for key, (default, low, high) in numbers.items():
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"[video] {key}: expected an integer {low}..{high}, got {value!r}")
        values[key] = value
    return VideoSource(camera=camera, region=values["region"], bits=values["bits"])


register("video", _build, default_on=False)

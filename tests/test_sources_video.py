"""The video source, decoding real video files through cv2.VideoCapture.

The tests write short clips with cv2.VideoWriter (noise, one frame repeated,
black, saturated) and read them back through the source: FFV1 (lossless) clips
let the samples be checked exactly against the frames that were written; an
MPEG-4 clip checks a lossy decode.  The static and black clips must fail the
health tests; the noise clip must pass them.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from av_helpers import chaos_host
from chaosmagnet.errors import SourceUnavailable, UsageError
from chaosmagnet.health import HealthMonitor, HealthTest
from chaosmagnet.sources.registry import SourceOptions, build_source
from chaosmagnet.sources.video import FrameSampler, VideoSource

cv2 = pytest.importorskip("cv2", reason="OpenCV (opencv-python-headless) is not installed")

WIDTH, HEIGHT = 160, 120


def _write_clip(path: Path, frames: list[np.ndarray], fourcc: str) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25.0, (WIDTH, HEIGHT))
    if not writer.isOpened():
        pytest.skip(f"this OpenCV cannot encode {fourcc}")
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def _noise_frames(n: int, seed: int = 7) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8) for _ in range(n)]


def _expected_samples(frames: list[np.ndarray], region: int = 64, bits: int = 4) -> np.ndarray:
    """What the source must produce, computed with plain integer arithmetic."""
    modulus = 1 << bits
    y0, x0 = (HEIGHT - region) // 2, (WIDTH - region) // 2
    out: list[int] = []
    previous = None
    for frame in frames:
        green = frame[y0 : y0 + region, x0 : x0 + region, 1].astype(int)
        out.extend((green % modulus).ravel().tolist())
        if previous is not None:
            out.extend(((green - previous) % modulus).ravel().tolist())
        previous = green
    return np.array(out, dtype=np.uint8)


def _drain(source: VideoSource) -> np.ndarray:
    """Start, read every batch until the clip ends, stop."""

    async def run() -> np.ndarray:
        await source.start()
        chunks = []
        try:
            async for batch in source.batches():
                chunks.append(batch)
        finally:
            await source.stop()
        return np.concatenate(chunks) if chunks else np.empty(0, np.uint8)

    return asyncio.run(run())


def _health(source: VideoSource, samples: np.ndarray) -> HealthMonitor:
    monitor = HealthMonitor(source.info.declared_h, source.info.bits_per_sample)
    monitor.run(samples)
    return monitor


# -- the sampler alone --------------------------------------------------------

def test_sampler_region_lsb_then_difference() -> None:
    sampler = FrameSampler(region=2, bits=4)
    first = np.zeros((4, 4, 3), np.uint8)
    first[1:3, 1:3, 1] = [[0x1F, 0x20], [0xFF, 0x03]]
    second = first.copy()
    second[1:3, 1:3, 1] = [[0x20, 0x1F], [0x00, 0x03]]
    assert sampler.feed(first).tolist() == [0xF, 0x0, 0xF, 0x3]
    # LSBs of the second frame, then (new - old) mod 16: +1, -1, +1 (0xFF -> 0x00), 0
    assert sampler.feed(second).tolist() == [0x0, 0xF, 0x0, 0x3, 1, 15, 1, 0]


def test_sampler_handles_grey_and_small_frames() -> None:
    sampler = FrameSampler(region=64, bits=8)
    grey = np.arange(30, dtype=np.uint8).reshape(5, 6)
    assert sampler.feed(grey).tolist() == list(range(30))
    assert sampler.stats.width == 6 and sampler.stats.height == 5


def test_sampler_flags_black_saturated_and_static() -> None:
    sampler = FrameSampler()
    black = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    white = np.full((HEIGHT, WIDTH, 3), 255, np.uint8)
    sampler.feed(black)
    sampler.feed(black)
    assert sampler.stats.last_flags == ["black", "static"]
    sampler.feed(white)
    assert sampler.stats.last_flags == ["saturated"]
    stats = sampler.stats
    assert (stats.black_frames, stats.saturated_frames, stats.static_frames) == (2, 1, 1)


def test_bad_parameters_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        FrameSampler(bits=0)
    with pytest.raises(UsageError):
        FrameSampler(region=0)


# -- real decoding ------------------------------------------------------------

def test_lossless_noise_clip_gives_exactly_the_written_bits(tmp_path: Path) -> None:
    frames = _noise_frames(12)
    clip = _write_clip(tmp_path / "noise.mkv", frames, "FFV1")
    source = build_source("video", SourceOptions(camera=str(clip)))
    assert source.availability().available
    samples = _drain(source)
    assert np.array_equal(samples, _expected_samples(frames))
    details = source.details()
    assert details["resolution"] == f"{WIDTH}x{HEIGHT}"
    assert details["fps_nominal"] == 25.0
    assert details["frames"] == 12 and details["ended"] is True
    assert details["static_frames"] == details["black_frames"] == 0
    monitor = _health(source, samples)
    assert monitor.rct_failures == monitor.apt_failures == 0


def test_lossy_noise_clip_passes_health_tests(tmp_path: Path) -> None:
    clip = _write_clip(tmp_path / "noise.mp4", _noise_frames(20), "mp4v")
    source = build_source("video", SourceOptions(camera=str(clip)))
    samples = _drain(source)
    assert samples.size == 20 * 2 * 64 * 64 - 64 * 64  # no difference block for frame 1
    assert samples.max() <= 15
    monitor = _health(source, samples)
    assert monitor.rct_failures == monitor.apt_failures == 0


def test_static_clip_is_caught(tmp_path: Path) -> None:
    frame = _noise_frames(1)[0]  # a noisy picture, frozen: its LSBs look random
    clip = _write_clip(tmp_path / "static.mkv", [frame] * 10, "FFV1")
    source = build_source("video", SourceOptions(camera=str(clip)))
    samples = _drain(source)
    assert source.details()["static_frames"] == 9
    monitor = HealthMonitor(source.info.declared_h, source.info.bits_per_sample)
    failures = monitor.run(samples)
    assert any(f.test is HealthTest.RCT for f in failures)
    # Frame 1 gives 4096 LSBs; frame 2 its LSBs, then the first (all-zero)
    # difference block, which fails the RCT after exactly its cutoff.
    assert failures[0].sample_index == 2 * 64 * 64 + monitor.rct_cutoff - 1


def test_black_clip_is_caught(tmp_path: Path) -> None:
    black = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    clip = _write_clip(tmp_path / "black.mkv", [black] * 8, "FFV1")
    source = build_source("video", SourceOptions(camera=str(clip)))
    samples = _drain(source)
    details = source.details()
    assert details["black_frames"] == 8 and details["frame_flags"] == "black,static"
    monitor = HealthMonitor(source.info.declared_h, source.info.bits_per_sample)
    failures = monitor.run(samples)
    assert failures and failures[0].test is HealthTest.RCT
    assert failures[0].sample_index == monitor.rct_cutoff - 1


def test_saturated_clip_is_detected(tmp_path: Path) -> None:
    white = np.full((HEIGHT, WIDTH, 3), 255, np.uint8)
    clip = _write_clip(tmp_path / "white.mp4", [white] * 6, "mp4v")
    source = build_source("video", SourceOptions(camera=str(clip)))
    samples = _drain(source)
    assert source.details()["saturated_frames"] == 6
    assert _health(source, samples).rct_failures > 0


# -- unavailable ---------------------------------------------------------------

def test_missing_file_and_camera_are_unavailable_with_reasons(tmp_path: Path) -> None:
    missing = build_source("video", SourceOptions(camera=str(tmp_path / "nope.mp4")))
    state = missing.availability()
    assert not state.available and "does not exist" in state.reason
    with pytest.raises(SourceUnavailable):
        asyncio.run(missing.start())
    if sys.platform.startswith("linux") and not Path("/dev/video57").exists():
        state = build_source("video", SourceOptions(camera="57")).availability()
        assert not state.available and state.reason.startswith("no camera")


def test_a_file_that_is_not_video_cannot_be_started(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video\n" * 50)
    source = build_source("video", SourceOptions(camera=str(junk)))
    with pytest.raises(SourceUnavailable, match="cannot decode"):
        asyncio.run(source.start())


def test_missing_opencv_is_reported(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)
    state = VideoSource(camera="0").availability()
    assert not state.available and "OpenCV" in state.reason


# -- the command line ------------------------------------------------------------

def test_cli_sample_video_from_a_clip(tmp_path: Path) -> None:
    exe = chaos_host()
    clip = _write_clip(tmp_path / "clip.mp4", _noise_frames(16), "mp4v")
    out = tmp_path / "v.bin"
    proc = subprocess.run(
        [exe, "sample", "video", "--camera", str(clip), "--count", "100000",
         "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    data = np.frombuffer(out.read_bytes(), np.uint8)
    assert data.size == 100000 and data.max() <= 15


def test_config_table_chooses_camera_region_and_width(tmp_path: Path) -> None:
    from chaosmagnet.config import parse_config
    from chaosmagnet.errors import ConfigError

    frames = _noise_frames(3)
    clip = _write_clip(tmp_path / "noise.mkv", frames, "FFV1")
    config = parse_config({"video": {"camera": str(clip), "region": 16, "bits": 8}})
    from chaosmagnet.cli.common import source_options

    source = build_source("video", source_options(config))
    assert source.info.bits_per_sample == 8
    assert np.array_equal(_drain(source), _expected_samples(frames, region=16, bits=8))
    for bad in ({"bits": 0}, {"region": "big"}, {"camera": [0]}, {"fps": 30}):
        with pytest.raises(ConfigError):
            build_source("video", SourceOptions(extra={"video": bad}))

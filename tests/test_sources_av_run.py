"""`chaos-host run` and `sources` with the audio, video and HID sources.

With devices (file-backed ALSA PCMs, a generated clip, Xvfb driven by
xdotool) the three sources run, deliver samples and pass their health tests;
a silent input and a black clip are failed by them; without devices each is
listed as unavailable with its reason and `run` carries on without it.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from av_helpers import alsa_env, alsa_home, chaos_host, have_x_tools, xdotool, xvfb_display

cv2 = pytest.importorskip("cv2", reason="OpenCV (opencv-python-headless) is not installed")
try:
    import sounddevice  # noqa: F401
except (ImportError, OSError) as exc:  # no package, or no libportaudio
    pytest.skip(f"sounddevice/PortAudio unavailable ({exc})", allow_module_level=True)


def _clip(path: Path, frames: int, black: bool = False) -> Path:
    rng = np.random.default_rng(5)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (160, 120))
    for _ in range(frames):
        if black:
            writer.write(np.zeros((120, 160, 3), np.uint8))
        else:
            writer.write(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    writer.release()
    return path


def _run_json(args: list[str], env: dict[str, str]) -> tuple[dict, str]:
    """Run `chaos-host run ... --json`; return the last snapshot and stderr."""
    proc = subprocess.run(
        [chaos_host(), "run", *args, "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, proc.stdout
    return json.loads(lines[-1]), proc.stderr


def _by_name(snapshot: dict) -> dict[str, dict]:
    return {s["name"]: s for s in snapshot["sources"]}


@pytest.mark.slow
@pytest.mark.skipif(not have_x_tools(), reason="Xvfb and xdotool are needed")
def test_run_with_all_three_devices(tmp_path: Path) -> None:
    home = alsa_home(tmp_path, {"!default": "/dev/urandom"})
    clip = _clip(tmp_path / "clip.mp4", 60)
    with xvfb_display() as display:
        env = dict(alsa_env(home), DISPLAY=display)
        done = threading.Event()

        def drive() -> None:  # pointer motion and typing while `run` listens
            step = 0
            while not done.is_set():
                step += 1
                try:
                    xdotool(display, "mousemove", str(50 + step * 7 % 900), str(40 + step * 5 % 700))
                    xdotool(display, "type", "--delay", "20", "ab")
                except subprocess.CalledProcessError:  # the server busy on a loaded machine: try again
                    time.sleep(0.1)

        driver = threading.Thread(target=drive)
        driver.start()
        try:
            snapshot, _ = _run_json(
                ["--source", "audio", "--source", "video", "--source", "hid",
                 # 8 s, not 4: on a loaded machine the HID listeners alone may take
                 # seconds to connect to the X server before the first event counts
                 "--camera", str(clip), "--seconds", "8"],
                env,
            )
        finally:
            done.set()
            driver.join(30)
    sources = _by_name(snapshot)
    assert set(sources) == {"audio", "video", "hid"}
    for name in ("audio", "video", "hid"):
        assert sources[name]["samples"] > 0, f"{name}: {sources[name]}"
        assert sources[name]["rct_failures"] == 0, f"{name}: {sources[name]}"
        # the clip is read to its end once, and then the source says so
        assert sources[name]["state"] == ("ended" if name == "video" else "ok"), sources[name]
    assert sources["video"]["samples"] == 60 * 2 * 64 * 64 - 64 * 64  # the whole clip, once


@pytest.mark.slow
def test_run_fails_a_silent_microphone_and_a_black_camera(tmp_path: Path) -> None:
    home = alsa_home(tmp_path, {"!default": "/dev/zero"})
    clip = _clip(tmp_path / "black.mp4", 30, black=True)
    env = alsa_env(home)
    env.pop("DISPLAY", None)
    snapshot, _ = _run_json(
        ["--source", "audio", "--source", "video", "--camera", str(clip), "--seconds", "2"], env
    )
    sources = _by_name(snapshot)
    for name in ("audio", "video"):
        assert sources[name]["rct_failures"] > 0, sources[name]
        assert sources[name]["state"] in ("quarantined", "failed"), sources[name]
        assert sources[name]["credited_bits"] == 0, sources[name]


def test_without_devices_sources_are_unavailable_and_run_goes_on(tmp_path: Path) -> None:
    home = alsa_home(tmp_path, {})  # no PCM of ours; nothing at "nope" either
    env = alsa_env(home)
    env.pop("DISPLAY", None)
    missing = str(tmp_path / "missing.mp4")
    listing = subprocess.run(
        [chaos_host(), "sources", "--json", "--camera", missing, "--audio-device", "nope"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    rows = {row["name"]: row for row in json.loads(listing.stdout)}
    for name, words in {"audio": "nope", "video": "does not exist", "hid": "no display"}.items():
        assert rows[name]["available"] is False
        assert words in rows[name]["reason"], rows[name]
    snapshot, _ = _run_json(
        ["--source", "os-rng", "--source", "audio", "--source", "video", "--source", "hid",
         "--camera", missing, "--audio-device", "nope", "--seconds", "2"],
        env,
    )
    sources = _by_name(snapshot)
    assert sources["os-rng"]["samples"] > 0
    for name in ("audio", "video", "hid"):
        assert sources[name]["state"] == "unavailable" and sources[name]["reason"], sources[name]

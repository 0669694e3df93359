"""The audio source, through PortAudio, against ALSA devices that the tests define.

Each test gets a temporary HOME whose ~/.asoundrc defines file-backed PCMs
(ALSA's `file` plugin reading capture data from `infile`, over the `null`
slave): one fed with Gaussian noise the test wrote, one with /dev/zero
(a muted input), one with near-constant samples.  PortAudio enumerates them as
ordinary ALSA devices, so capture goes through sounddevice, PortAudio and
libasound exactly as it would from a microphone.
"""

from __future__ import annotations

import asyncio
import ctypes.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from av_helpers import alsa_env, alsa_home, chaos_host
from chaosmagnet.health import HealthMonitor, HealthTest, rct_cutoff
from chaosmagnet.sources.audio import AudioSource, measure_level, pcm_low_bits
from chaosmagnet.sources.registry import SourceOptions, build_source

try:
    import sounddevice as sd
except (ImportError, OSError) as exc:  # no package, or no libportaudio
    sd = None
    _SD_MISSING = str(exc)
else:
    _SD_MISSING = ""

needs_portaudio = pytest.mark.skipif(
    sd is None, reason=f"sounddevice/PortAudio unavailable ({_SD_MISSING}); install libportaudio2"
)

RATE = 44100
NOISE_SECONDS = 4


def _reinit_portaudio() -> None:
    # PortAudio (and libasound's config) are read at initialisation: start over
    # so the devices of the current HOME are the ones enumerated.
    sd._terminate()
    sd._initialize()


@pytest.fixture
def alsa_devices(tmp_path: Path):
    """Define the test PCMs in a temporary HOME; yield the noise PCM as int16."""
    rng = np.random.default_rng(20240611)
    noise = np.clip(rng.normal(0, 300, RATE * NOISE_SECONDS), -32768, 32767).astype("<i2")
    (tmp_path / "noise.raw").write_bytes(noise.tobytes())
    # A muted mic with a whisper of noise: mostly 0, sometimes +-1 LSB.
    hum = rng.choice(np.array([0, 1, -1], dtype="<i2"), RATE * NOISE_SECONDS, p=[0.8, 0.1, 0.1])
    (tmp_path / "hum.raw").write_bytes(hum.astype("<i2").tobytes())
    noise_file = str(tmp_path / "noise.raw")
    home = alsa_home(
        tmp_path,
        {
            "!default": noise_file,
            "chaos_noise": noise_file,
            "chaos_silence": "/dev/zero",  # a muted input: digital silence
            "chaos_hum": str(tmp_path / "hum.raw"),
        },
    )
    saved = {k: os.environ.get(k) for k in ("HOME", "XDG_CONFIG_HOME")}
    os.environ["HOME"] = str(home)
    os.environ["XDG_CONFIG_HOME"] = str(home / ".config")
    _reinit_portaudio()
    try:
        yield noise, home
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _reinit_portaudio()


def _capture(source: AudioSource, count: int) -> np.ndarray:
    """Start the source, gather at least count raw samples through batches(), stop."""

    async def run() -> np.ndarray:
        await source.start()
        chunks: list[np.ndarray] = []
        got = 0
        try:
            async for batch in source.batches():
                chunks.append(batch)
                got += batch.size
                if got >= count:
                    break
        finally:
            await source.stop()
        return np.concatenate(chunks)

    return asyncio.run(run())


# -- pure parts ------------------------------------------------------------

@pytest.mark.parametrize("bits", [1, 3, 8])
def test_low_bits_match_twos_complement(bits: int) -> None:
    values = [0, 1, -1, 2, -2, 255, 256, -256, 0x1234, -0x1234, 32767, -32768]
    expected = [v & ((1 << bits) - 1) for v in values]  # Python ints: infinite two's complement
    got = pcm_low_bits(np.array(values, dtype=np.int16), bits)
    assert got.dtype == np.uint8
    assert got.tolist() == expected


def test_level_classifies_silence_clipping_and_speech() -> None:
    assert measure_level(np.zeros(1000, np.int16)).verdict == "silent"
    assert measure_level(np.array([0, 1, -1, 0] * 100, np.int16)).verdict == "silent"
    square = np.array([32767, -32768] * 500, np.int16)
    assert measure_level(square).clipping
    rng = np.random.default_rng(1)
    speech = rng.normal(0, 2000, 4800).astype(np.int16)
    level = measure_level(speech)
    assert level.verdict == "ok"
    assert -30 < level.rms_dbfs < -20  # 2000/32768 is -24 dBFS


def test_bad_width_is_a_usage_error() -> None:
    from chaosmagnet.errors import UsageError

    with pytest.raises(UsageError):
        AudioSource(bits=9)
    with pytest.raises(UsageError):
        build_source("audio", SourceOptions(audio_bits=0))


# -- through PortAudio ------------------------------------------------------

@needs_portaudio
def test_noise_device_samples_are_the_low_bits_of_the_pcm(alsa_devices) -> None:
    noise, _home = alsa_devices
    source = build_source("audio", SourceOptions(audio_device="chaos_noise"))
    assert source.availability().available
    samples = _capture(source, RATE)  # one second
    assert samples.size >= RATE
    expected = pcm_low_bits(noise, 8).tobytes()
    # The captured stream is a contiguous run of the file's low bytes.
    assert expected.find(samples.tobytes()) >= 0
    details = source.details()
    assert details["device"] == "chaos_noise"
    assert details["level"] == "ok" and details["silent_blocks"] == 0
    monitor = HealthMonitor(source.info.declared_h, source.info.bits_per_sample)
    assert monitor.run(samples) == []


@needs_portaudio
def test_default_device_and_narrow_width(alsa_devices) -> None:
    noise, _home = alsa_devices
    source = build_source("audio", SourceOptions(audio_bits=2))
    samples = _capture(source, 4096)
    assert set(np.unique(samples).tolist()) <= {0, 1, 2, 3}
    assert pcm_low_bits(noise, 2).tobytes().find(samples.tobytes()) >= 0
    assert source.details()["device"] == "default"


@needs_portaudio
def test_silence_trips_the_repetition_count_test(alsa_devices) -> None:
    source = build_source("audio", SourceOptions(audio_device="chaos_silence"))
    samples = _capture(source, 4096)
    assert not samples.any()  # nothing added: no dither masks the silence
    details = source.details()
    assert details["level"] == "silent" and details["silent_blocks"] >= 1
    monitor = HealthMonitor(source.info.declared_h, source.info.bits_per_sample)
    failures = monitor.run(samples)
    rct = [f for f in failures if f.test is HealthTest.RCT]
    assert rct, "digital silence must fail the RCT"
    assert rct[0].sample_index == rct_cutoff(source.info.declared_h) - 1


@needs_portaudio
def test_near_constant_input_fails_health_tests(alsa_devices) -> None:
    source = build_source("audio", SourceOptions(audio_device="chaos_hum"))
    samples = _capture(source, 8192)
    assert source.details()["level"] == "silent"
    monitor = HealthMonitor(source.info.declared_h, source.info.bits_per_sample)
    monitor.run(samples)
    assert monitor.rct_failures + monitor.apt_failures > 0


@needs_portaudio
def test_unknown_device_is_unavailable_with_a_reason(alsa_devices) -> None:
    by_name = build_source("audio", SourceOptions(audio_device="no-such-mic"))
    state = by_name.availability()
    assert not state.available and "no-such-mic" in state.reason
    by_index = build_source("audio", SourceOptions(audio_device="999"))
    state = by_index.availability()
    assert not state.available and "no input device" in state.reason
    from chaosmagnet.errors import SourceUnavailable

    with pytest.raises(SourceUnavailable):
        asyncio.run(by_name.start())


def test_missing_portaudio_library_is_reported(monkeypatch) -> None:
    if sd is None:
        pytest.skip("sounddevice is not importable here at all")
    # Make sounddevice's own library lookup fail, as on a machine without
    # libportaudio2, and import it afresh.
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    monkeypatch.delitem(sys.modules, "sounddevice")
    monkeypatch.delitem(sys.modules, "_sounddevice_data", raising=False)
    state = AudioSource().availability()
    assert not state.available
    assert "PortAudio" in state.reason


def test_missing_sounddevice_package_is_reported(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import raises ModuleNotFoundError
    state = AudioSource().availability()
    assert not state.available and "sounddevice" in state.reason


# -- the command line -------------------------------------------------------

@needs_portaudio
def test_cli_sample_audio_writes_the_low_bits(alsa_devices, tmp_path: Path) -> None:
    noise, home = alsa_devices
    exe = chaos_host()
    out = tmp_path / "a.bin"
    env = alsa_env(home)
    proc = subprocess.run(
        [exe, "sample", "audio", "--audio-device", "chaos_noise", "--count", "20000",
         "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    assert len(data) == 20000
    assert pcm_low_bits(noise, 8).tobytes().find(data) >= 0


# -- the config file ---------------------------------------------------------

def test_config_table_chooses_device_and_width() -> None:
    from chaosmagnet.errors import ConfigError

    source = build_source("audio", SourceOptions(extra={"audio": {"device": "usb", "bits": 4}}))
    assert source.device == "usb" and source.info.bits_per_sample == 4
    # The command line wins over the file.
    options = SourceOptions(audio_device="3", extra={"audio": {"device": "usb"}})
    source = build_source("audio", options)
    assert source.device == 3
    for bad in ({"bits": 9}, {"bits": True}, {"device": 1.5}, {"gain": 2}):
        with pytest.raises(ConfigError):
            build_source("audio", SourceOptions(extra={"audio": bad}))

"""Keys and the audit trail survive kills and full disks (issue 16).

`chaos-host mint` and `chaos-host identity init` are killed at every write
boundary ($CHAOS_TEST_CRASH_AT=k makes the process os._exit at the k-th one),
and run on 64 KiB and 128 KiB tmpfs homes until the disk is full.  After each:
`audit verify` is either OK with every recorded file present, or names the
exact inconsistency (checked here against the files themselves); `audit
repair` brings it back to OK with a signed `repaired` entry; a later mint
succeeds.  Real sources, real scrypt, real crypto; the killed runs are
separate processes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaosmagnet.cli import main
from chaosmagnet.securefile import CRASH_AT_ENV, CRASH_EXIT_STATUS

PASS = "crash test passphrase"
MAX_BOUNDARIES = 40  # far more than either command has: the loop must end by itself

# Every inconsistency a kill or a full disk may leave, as `audit verify` names it.
KNOWN = [
    re.compile(r"^(?P<path>/\S+/bundle-[0-9a-f-]+\.json) has no mint entry "),
    re.compile(r"^the host identity [0-9a-f]{16} in \S+ has no identity_created entry$"),
    re.compile(r"^audit\.head\.json is missing: "),
]


def _env(home: Path, crash_at: int | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_AT_ENV}
    env.update(CHAOS_HOME=str(home), CHAOS_PASSPHRASE=PASS)
    if crash_at is not None:
        env[CRASH_AT_ENV] = str(crash_at)
    return env


def _one_source_quorum(home: Path) -> None:
    """These tests kill writes, not draws: let one source fund keys (the k-of-n quorum of
    issue 19 would make every identity wait for the slow `system` source)."""
    config = home / "chaos.toml"
    if not config.exists():
        with contextlib.suppress(OSError):  # a full tmpfs home: the default quorum then
            config.write_text("[mint]\nquorum = 1\n")


def chaos_process(home: Path, *args: str, crash_at: int | None = None) -> subprocess.CompletedProcess:
    """`chaos-host ARGS` in its own process (the only way to kill it mid-way)."""
    _one_source_quorum(home)
    return subprocess.run(
        [sys.executable, "-m", "chaosmagnet", *args],
        env=_env(home, crash_at),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=300,
    )


def chaos(home: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    """`chaos-host ARGS` in this process (faster); (exit status, stdout, stderr)."""
    _one_source_quorum(home)
    monkeypatch.chdir(home)  # where chaos.toml is read
    monkeypatch.setenv("CHAOS_HOME", str(home))
    monkeypatch.setenv("CHAOS_PASSPHRASE", PASS)
    monkeypatch.delenv(CRASH_AT_ENV, raising=False)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return int(exit_info.value.code or 0), out.getvalue(), err.getvalue()


def _entries(home: Path) -> list[dict]:
    path = home / "logs" / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _expected_problems(home: Path) -> set[str]:
    """What the files say is inconsistent, worked out here independently of `audit verify`."""
    entries = _entries(home)
    minted = {e["fields"]["bundle_id"] for e in entries if e["event"] == "mint"}
    expected = set()
    for bundle in sorted((home / "keys").glob("bundle-*.json")):
        if bundle.name[len("bundle-") : -len(".json")] not in minted:
            expected.add(f"unrecorded {bundle}")
    for entry in entries:
        if entry["event"] == "mint":
            assert (home / entry["fields"]["file"]).exists(), f"entry {entry['seq']} names a missing bundle"
    if (home / "keys" / "identity" / "identity.json").exists() and not any(
        e["event"] == "identity_created" for e in entries
    ):
        expected.add("identity")
    if entries and not (home / "logs" / "audit.head.json").exists():
        expected.add("head")
    return expected


def check_consistent(home: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """`audit verify` is OK, or names exactly what the files show; returns the problems named."""
    expected = _expected_problems(home)
    status, out, err = chaos(home, monkeypatch, "audit", "verify")
    if status == 0:
        assert not expected, (expected, out)
        assert "OK" in out and "every recorded file present" in out
        return []
    assert status == 2, err
    assert "Traceback" not in err
    prefix = f"{home / 'logs' / 'audit.jsonl'}: "
    problems = [line[len(prefix) :] for line in err.splitlines() if line.startswith(prefix)]
    named = set()
    for problem in problems:
        match = next((m for m in (p.match(problem) for p in KNOWN) if m), None)
        assert match is not None, f"unexpected problem after a crash: {problem}"
        if "path" in match.groupdict():
            named.add(f"unrecorded {match['path']}")
        elif "identity" in problem:
            named.add("identity")
        else:
            named.add("head")
    assert named == expected, (problems, expected)
    return problems


def repair_and_mint(home: Path, monkeypatch: pytest.MonkeyPatch, problems: list[str]) -> None:
    """`audit repair` returns the trail to OK with a signed record; then a mint succeeds."""
    before = (home / "logs" / "audit.jsonl").read_bytes() if (home / "logs" / "audit.jsonl").exists() else b""
    status, out, err = chaos(home, monkeypatch, "audit", "repair")
    assert status == 0, err
    assert "OK" in out, out
    after = (home / "logs" / "audit.jsonl").read_bytes()
    assert after.startswith(before), "repair rewrote a complete entry"
    if problems:
        last = _entries(home)[-1]
        assert last["event"] == "repaired" and last["signature"], last
        assert len(last["fields"]["actions"]) >= len(problems)
    status, out, err = chaos(home, monkeypatch, "mint", "--timeout", "120")
    assert status == 0, err
    status, out, err = chaos(home, monkeypatch, "audit", "verify")
    assert status == 0 and "every recorded file present" in out, err
    bundles = sorted(str(p) for p in (home / "keys").glob("bundle-*.json"))
    status, out, err = chaos(home, monkeypatch, "verify", *bundles)
    assert status == 0, err
    assert not list((home / "keys").glob(".*.tmp")) and not list((home / "logs").glob(".*.tmp"))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with a host identity and one bundle (made by the real command)."""
    home = tmp_path_factory.mktemp("crash-template")
    for args in (("identity", "init", "--timeout", "120"), ("mint", "--timeout", "120")):
        result = chaos_process(home, *args)
        assert result.returncode == 0, result.stderr
    return home


def _copy(template: Path, target: Path) -> Path:
    shutil.copytree(template, target, symlinks=True)
    return target


def test_mint_killed_at_every_write_boundary(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels = []
    for k in range(1, MAX_BOUNDARIES + 1):
        home = _copy(template, tmp_path / f"k{k}")
        result = chaos_process(home, "mint", "--timeout", "120", crash_at=k)
        if result.returncode == 0:
            break
        assert result.returncode == CRASH_EXIT_STATUS, result.stderr
        labels.append(result.stderr.strip().splitlines()[-1])
        problems = check_consistent(home, monkeypatch)
        repair_and_mint(home, monkeypatch, problems)
        shutil.rmtree(home)
    else:
        pytest.fail("mint never finished: the crash hook fires everywhere")
    # the bundle, its entry and the head: at least these boundaries exist
    assert len(labels) >= 5, labels
    assert any("bundle-" in label for label in labels) and any("audit entry" in label for label in labels)


def test_identity_init_killed_at_every_write_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels = []
    for k in range(1, MAX_BOUNDARIES + 1):
        home = tmp_path / f"k{k}"
        home.mkdir()
        result = chaos_process(home, "identity", "init", "--timeout", "120", crash_at=k)
        if result.returncode == 0:
            break
        assert result.returncode == CRASH_EXIT_STATUS, result.stderr
        labels.append(result.stderr.strip().splitlines()[-1])
        if not (home / "keys" / "identity" / "identity.json").exists():
            # killed before the identity existed: verify says so, and init again succeeds
            status, out, err = chaos(home, monkeypatch, "audit", "verify")
            assert status == 2 and "Traceback" not in err
            assert err.count("\n") == 1 and "no host identity" in err, err
            status, out, err = chaos(home, monkeypatch, "identity", "init", "--timeout", "120")
            assert status == 0, err
        problems = check_consistent(home, monkeypatch)
        repair_and_mint(home, monkeypatch, problems)
        shutil.rmtree(home)
    else:
        pytest.fail("identity init never finished")
    assert len(labels) >= 8, labels
    assert any("identity.json" in label for label in labels)


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``folder`` (skips when mounting is not permitted)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or 'mount failed'}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _clean_failure(status: int, err: str) -> None:
    assert status in (0, 2), err
    assert "Traceback" not in err
    if status == 2:
        errors = [line for line in err.splitlines() if line.startswith("chaos-host: error:")]
        assert len(errors) == 1, err


@pytest.mark.parametrize("size", ["64k", "128k"])
def test_full_disk_home(size: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with tmpfs(tmp_path / "home", size) as home:
        status, out, err = chaos(home, monkeypatch, "identity", "init", "--timeout", "120")
        _clean_failure(status, err)
        failures = 0 if status == 0 else 1
        if status == 0:
            check_consistent(home, monkeypatch)
        else:
            assert not (home / "keys" / "identity" / "identity.json").exists()
        for _ in range(12):
            if failures >= 2:
                break
            status, out, err = chaos(home, monkeypatch, "mint", "--timeout", "120")
            _clean_failure(status, err)
            if status == 2:
                failures += 1
                assert "No space left on device" in err or "space" in err, err
            if (home / "keys" / "identity" / "identity.json").exists():
                check_consistent(home, monkeypatch)
        assert failures, "the disk never filled up"
        # free space: the same files on a bigger disk
        grown = subprocess.run(
            ["mount", "-o", "remount,size=16m", str(home)], capture_output=True, text=True
        )
        assert grown.returncode == 0, grown.stderr
        if not (home / "keys" / "identity" / "identity.json").exists():
            status, out, err = chaos(home, monkeypatch, "identity", "init", "--timeout", "120")
            assert status == 0, err
        problems = check_consistent(home, monkeypatch)
        repair_and_mint(home, monkeypatch, problems)

"""The passphrase prompts (issue 15): they say what the passphrase protects, and a
mismatched repeat or a too-short passphrase asks again instead of ending the command.
Driven through a real pseudo-terminal, as a person at a keyboard would."""

from __future__ import annotations

import fcntl
import os
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

GOOD = "correct horse battery"


class Terminal:
    """A child process on a pty that is its controlling terminal (getpass reads /dev/tty)."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        master, slave = os.openpty()

        def controlling_tty() -> None:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
            start_new_session=True, preexec_fn=controlling_tty,
        )
        os.close(slave)
        self.master = master
        self.screen = ""
        self.seen = 0  # where the next expect starts looking

    def expect(self, text: str, timeout: float = 120) -> None:
        """Wait for text after what earlier expects matched (a prompt must be on screen before typing)."""
        deadline = time.monotonic() + timeout
        while text not in self.screen[self.seen :]:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} never appeared; screen:\n{self.screen}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                assert chunk, f"{text!r} never appeared before the end; screen:\n{self.screen}"
                self.screen += chunk.decode(errors="replace")
        self.seen = self.screen.index(text, self.seen) + len(text)

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def finish(self, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.screen += os.read(self.master, 4096).decode(errors="replace")
                except OSError:
                    break
        return self.proc.wait(timeout=max(1, deadline - time.monotonic()))


def test_identity_init_says_what_the_passphrase_is_for_and_asks_again(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CHAOS_PASSPHRASE"}
    env["CHAOS_HOME"] = str(tmp_path)
    term = Terminal([sys.executable, "-m", "chaosmagnet", "identity", "init"], env, tmp_path)
    term.expect("seals the host identity's secret keys")
    term.expect("Passphrase: ")
    term.type("short")  # too short: asked again
    term.expect("at least 12 characters long; try again")
    term.expect("Passphrase: ")
    term.type(GOOD)
    term.expect("Repeat passphrase: ")
    term.type(GOOD + " typo")  # mismatch: asked again, not the end
    term.expect("the passphrases do not match; try again")
    term.expect("Passphrase: ")
    term.type(GOOD)
    term.expect("Repeat passphrase: ")
    term.type(GOOD)
    assert term.finish() == 0, term.screen
    assert "host identity " in term.screen
    assert GOOD not in term.screen  # never echoed
    assert (tmp_path / "keys" / "identity" / "identity.json").is_file()


def test_identity_show_before_init_points_at_init(tmp_path: Path) -> None:
    env = dict(os.environ, CHAOS_HOME=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "chaosmagnet", "identity", "show"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "chaos-host identity init" in result.stderr and "PUBFILE" not in result.stderr


def test_identity_show_is_a_summary_and_full_prints_the_keys(tmp_path: Path) -> None:
    env = dict(os.environ, CHAOS_HOME=str(tmp_path), CHAOS_PASSPHRASE=GOOD)
    made = subprocess.run([sys.executable, "-m", "chaosmagnet", "identity", "init"], env=env,
                          capture_output=True, text=True, timeout=180)
    assert made.returncode == 0, made.stderr
    show = subprocess.run([sys.executable, "-m", "chaosmagnet", "identity", "show"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert show.returncode == 0
    lines = show.stdout.splitlines()
    assert len(lines) <= 9 and all(len(line) <= 120 for line in lines if not line.startswith("folder")), show.stdout
    assert lines[0].startswith("fingerprint") and any("Falcon-512" in line for line in lines)
    assert "identity.pub.json" in show.stdout
    full = subprocess.run([sys.executable, "-m", "chaosmagnet", "identity", "show", "--full"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert len(full.stdout) > len(show.stdout) + 2000  # the keys in hex

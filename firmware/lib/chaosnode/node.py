"""The node's sampling loop over a HAL, its commands and its status frames.

Portable: the board (chaosnode.hal_esp32 via chaosnode.app), the host's
simulator (a noise HAL under CPython) and the tests (a fake HAL under the
MicroPython WebAssembly port) all drive this same code.

Sources are time-multiplexed: one source fills a whole block, is health-tested
and framed before the next source is touched, so ADC reads are never
interleaved with RNG reads.  Each frame's payload is written in place in the
FrameWriter's buffer: nothing is allocated per sample.

A HAL provides fill_adc(buf, n) (n 12-bit readings, 16-bit little-endian),
fill_rng(buf, n), fill_jitter(buf, n), ticks_ms(), ticks_diff(a, b),
boot_nonce() (8 fresh random bytes, also used for link nonces) and
boot_counter() (this boot's number, kept in NVS on the board); led(on) and
mem_free() are optional.

Nothing is framed before a host's ``hello CHALLENGE``: the node answers with
a HANDSHAKE frame under its long-term key and tags everything after it under
the session key of that connection (chaosnode.session).  Every other command
must be ``auth COUNTER TAG COMMAND...`` under the session key, with a counter
above the last one accepted; anything else is refused.
"""

import struct

from chaosnode import FIRMWARE_VERSION, PROTOCOL_VERSION
from chaosnode.framing import (
    FLAG_CONDITIONED,
    FLAG_HEALTH_FAIL,
    SOURCE_ADC,
    SOURCE_JITTER,
    SOURCE_NAMES,
    SOURCE_RNG,
    TYPE_DATA,
    TYPE_HANDSHAKE,
    TYPE_HEARTBEAT,
    TYPE_REPLY,
    TYPE_STATUS,
    FrameWriter,
    encode_frame,
)
from chaosnode.health import Health
from chaosnode.session import CHALLENGE_SIZE, CommandGate, derive_session, handshake_payload

MAX_LINE = 192  # an authenticated command: auth, counter, 64 hex digits of tag, the command
MAX_WRITE_TRIES = 8  # writes in a row that make no progress before a frame counts as dropped
MAX_RATE = 100000
# (source id, bits per sample, conditioned)
SOURCE_KINDS = ((SOURCE_ADC, 12, False), (SOURCE_RNG, 8, True), (SOURCE_JITTER, 8, False))


class SourceSlot:
    """One on-device source: its rate, block size, health state and schedule."""

    def __init__(self, sid, bits, conditioned, h, rate, block, on):
        self.sid = sid
        self.name = SOURCE_NAMES[sid]
        self.bits = bits
        self.width = 2 if bits > 8 else 1
        self.conditioned = conditioned
        self.block = block
        self.on = on
        self.health = Health(h, bits)
        self.rate = rate
        self.period_ms = 1
        self.set_rate(rate)
        self.due_ms = 0
        self.last_failed = False

    def set_rate(self, rate):
        """Samples per second; a block of ``block`` samples goes out every period."""
        self.rate = rate
        period = (self.block * 1000) // rate
        self.period_ms = period if period > 0 else 1


def _jstr(text):
    """A JSON string literal for plain config text (quotes, backslashes, controls removed)."""
    out = []
    for ch in str(text):
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ord(ch) >= 32:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _jbool(value):
    return "true" if value else "false"


class LineReader:
    """Collects command bytes into lines; overlong lines are discarded whole."""

    def __init__(self):
        self._buf = bytearray()
        self._overflow = False

    def feed(self, data):
        """Return the complete lines (bytes, without line ends) found in data."""
        lines = []
        for b in data:
            if b == 10 or b == 13:
                if self._buf and not self._overflow:
                    lines.append(bytes(self._buf))
                self._buf = bytearray()
                self._overflow = False
            elif len(self._buf) >= MAX_LINE:
                self._overflow = True
            else:
                self._buf.append(b)
        return lines


class Node:
    """Samples the enabled sources at their rates and writes authenticated frames.

    Nothing is sent until a host's ``hello`` (CDC writes are lost while no
    host holds the port, so there is no point sampling for nobody).  ``key``
    is the node key (from NVS on the board); without it, config["key"].
    ``write(buf)`` returns the bytes it took (None: all of them).
    """

    def __init__(self, hal, config, write, key=None):
        self.hal = hal
        self.write = write
        self.board = config.get("board", "")
        self.label = config.get("label", "")
        self.heartbeat_ms = int(config.get("heartbeat_ms", 1000))
        if key is None:
            key = _unhex(config["key"])
        node_id = _unhex(config["node_id"])
        if len(key) != 32 or len(node_id) != 8:
            raise ValueError("node key must be 32 bytes and node id 8")
        self.key = bytes(key)
        self.node_id = node_id
        self.boot_nonce = hal.boot_nonce()
        self.boot_counter = int(hal.boot_counter())
        self.writer = FrameWriter(node_id)
        self.gate = None  # the command gate of the live session
        self.refused_commands = 0
        self.reboot_requested = False
        self.slots = [None, None, None, None]
        declared = config.get("sources", {})
        for sid, bits, conditioned in SOURCE_KINDS:
            spec = declared.get(SOURCE_NAMES[sid])
            if spec is None:
                continue
            block = int(spec.get("block", 256))
            max_block = self.writer.max_payload // (2 if bits > 8 else 1)
            if block < 1 or block > max_block:
                raise ValueError("block size out of range")
            self.slots[sid] = SourceSlot(
                sid, bits, conditioned, float(spec["h"]), int(spec["rate"]), block,
                bool(spec.get("on", True)),
            )
        self.streaming = False
        self.uptime_ms = 0
        self._last_ticks = hal.ticks_ms()
        self.next_heartbeat_ms = 0
        self.frames = 0
        self.write_errors = 0
        self.dropped_frames = 0
        self.reader = LineReader()
        self._heartbeat = bytearray(8)

    # -- time and output ------------------------------------------------------
    def clock(self):
        """Milliseconds since boot, exact across ticks_ms wrap-around."""
        now = self.hal.ticks_ms()
        self.uptime_ms += self.hal.ticks_diff(now, self._last_ticks)
        self._last_ticks = now
        return self.uptime_ms

    def _send(self, frame):
        """Write a whole frame, finishing short writes; one that cannot go out whole is dropped."""
        n = len(frame)
        done = 0
        stalled = 0
        while done < n:
            try:
                wrote = self.write(frame if done == 0 else frame[done:])
            except OSError:
                self.write_errors += 1
                wrote = 0
            if wrote is None:
                wrote = n - done
            if wrote > 0:
                done += wrote
                stalled = 0
            else:
                stalled += 1
                if stalled >= MAX_WRITE_TRIES:
                    break
        if done == n:
            self.frames += 1
        else:
            self.dropped_frames += 1
        if self.writer.exhausted:
            self._end_session()

    def _end_session(self):
        self.writer.end_session()
        self.gate = None
        self.streaming = False

    def link_lost(self):
        """The link dropped (a BLE disconnect): end the session; the next host says hello."""
        self._end_session()

    def _totals(self):
        samples = rct = apt = 0
        for slot in self.slots:
            if slot is not None:
                samples += slot.health.samples
                rct += slot.health.rct_failures
                apt += slot.health.apt_failures
        return samples, rct, apt

    def _send_text(self, ftype, text):
        if self.gate is None:
            return  # no session: nothing can be tagged
        data = text.encode() if isinstance(text, str) else text
        n = min(len(data), self.writer.max_payload)
        self.writer.payload(n)[0:n] = data[0:n]
        samples, rct, apt = self._totals()
        self._send(self.writer.finish(ftype, n, self.uptime_ms, 0, 0, 0, samples, rct, apt))

    # -- frames -------------------------------------------------------------
    def sample(self, slot):
        """Fill, test and send one block of ``slot``."""
        if self.gate is None:
            return
        n = slot.block
        payload = self.writer.payload(n * slot.width)
        if slot.sid == SOURCE_ADC:
            self.hal.fill_adc(payload, n)
        elif slot.sid == SOURCE_RNG:
            self.hal.fill_rng(payload, n)
        else:
            self.hal.fill_jitter(payload, n)
        failures = slot.health.run(payload, n, slot.width)
        slot.last_failed = failures > 0
        flags = (FLAG_HEALTH_FAIL if failures else 0) | (FLAG_CONDITIONED if slot.conditioned else 0)
        h = slot.health
        self._send(self.writer.finish(
            TYPE_DATA, n * slot.width, self.uptime_ms, slot.sid, slot.bits, flags,
            h.samples, h.rct_failures, h.apt_failures,
        ))

    def status_text(self):
        """The STATUS payload: compact JSON with fields in a fixed order."""
        parts = [
            '{"fw":', _jstr(FIRMWARE_VERSION), ',"proto":', str(PROTOCOL_VERSION),
            ',"board":', _jstr(self.board), ',"label":', _jstr(self.label),
            ',"uptime_ms":', str(self.uptime_ms), ',"boot":', str(self.boot_counter),
            ',"streaming":', _jbool(self.streaming), ',"frames":', str(self.frames),
            ',"write_errors":', str(self.write_errors),
            ',"dropped_frames":', str(self.dropped_frames),
            ',"refused_commands":', str(self.refused_commands), ',"sources":[',
        ]
        first = True
        for slot in self.slots:
            if slot is None:
                continue
            h = slot.health
            if not first:
                parts.append(",")
            first = False
            parts.extend((
                '{"name":', _jstr(slot.name), ',"on":', _jbool(slot.on),
                ',"rate":', str(slot.rate), ',"block":', str(slot.block),
                ',"bits":', str(slot.bits), ',"h":', repr(float(h.h)),
                ',"conditioned":', _jbool(slot.conditioned),
                ',"rct_cutoff":', str(h.rct_cutoff), ',"apt_cutoff":', str(h.apt_cutoff),
                ',"apt_window":', str(h.apt_window), ',"samples":', str(h.samples),
                ',"rct_failures":', str(h.rct_failures), ',"apt_failures":', str(h.apt_failures),
                ',"failing":', _jbool(slot.last_failed), "}",
            ))
        parts.append("]}")
        return "".join(parts)

    def send_status(self):
        """Send a STATUS frame (firmware, board, uptime, rates, health)."""
        self._send_text(TYPE_STATUS, self.status_text())

    def send_heartbeat(self):
        """Send a HEARTBEAT frame: uptime in s, running and failing source masks."""
        running = failing = 0
        for slot in self.slots:
            if slot is not None:
                if slot.on:
                    running |= 1 << slot.sid
                if slot.last_failed:
                    failing |= 1 << slot.sid
        struct.pack_into("<IBBH", self._heartbeat, 0, (self.uptime_ms // 1000) & 0xFFFFFFFF,
                         running, failing, 0)
        self._send_text(TYPE_HEARTBEAT, self._heartbeat)

    # -- commands -----------------------------------------------------------
    def feed_commands(self, data):
        """Feed bytes from the host; run every complete command line."""
        for line in self.reader.feed(data):
            self.handle_line(line)

    def _slots_named(self, name):
        if name == "all":
            return [s for s in self.slots if s is not None]
        for slot in self.slots:
            if slot is not None and slot.name == name:
                return [slot]
        return []

    def handle_line(self, line):
        """Run one command line: ``hello CHALLENGE``, or an authenticated command."""
        try:
            words = line.decode().split()
        except UnicodeError:
            words = []
        if not words:
            return
        self.clock()
        if words[0] == "hello":
            self.handshake(words)
            return
        if self.gate is None:
            self.refused_commands += 1  # no session: nothing to answer under
            return
        checked = self.gate.check(words)
        if isinstance(checked, str):
            self.refused_commands += 1
            self._send_text(TYPE_REPLY, checked)
            return
        self.run_command(checked)

    def handshake(self, words):
        """Answer ``hello CHALLENGE`` (32 hex digits) and start a new session."""
        challenge = b""
        if len(words) == 2 and len(words[1]) == 2 * CHALLENGE_SIZE and _is_hex(words[1]):
            challenge = _unhex(words[1])
        if not challenge:
            self.refused_commands += 1
            self._send_text(TYPE_REPLY, "error bad challenge")
            return
        link_nonce = self.hal.boot_nonce()
        payload = handshake_payload(challenge, self.boot_nonce, link_nonce, self.boot_counter)
        samples, rct, apt = self._totals()
        frame = encode_frame(self.key, self.node_id, bytes(8), 0, TYPE_HANDSHAKE, self.uptime_ms,
                             0, 0, 0, samples, rct, apt, payload)
        session_key, session_id = derive_session(
            self.key, self.node_id, challenge, self.boot_nonce, link_nonce, self.boot_counter)
        self.writer.start_session(session_key, session_id)
        self.gate = CommandGate(session_key, session_id)
        self._send(frame)
        if not self.streaming:
            self.streaming = True
            for slot in self.slots:
                if slot is not None:
                    slot.due_ms = self.uptime_ms
            self.next_heartbeat_ms = self.uptime_ms + self.heartbeat_ms
        self.send_status()

    def run_command(self, words):
        """An authenticated command: status, ping, start/stop SRC|all, rate SRC N, quiet, reboot."""
        cmd = words[0]
        if cmd == "status" and len(words) == 1:
            self.send_status()
        elif cmd == "ping" and len(words) == 1:
            self.send_heartbeat()
        elif cmd == "quiet" and len(words) == 1:
            self.streaming = False
            self._send_text(TYPE_REPLY, "ok quiet")
        elif cmd == "reboot" and len(words) == 1:
            self._send_text(TYPE_REPLY, "ok reboot")
            self.streaming = False
            self.reboot_requested = True  # the main loop resets the board after flushing
        elif (cmd == "start" or cmd == "stop") and len(words) == 2:
            slots = self._slots_named(words[1])
            if not slots:
                self._send_text(TYPE_REPLY, "error unknown source")
                return
            for slot in slots:
                if cmd == "start" and not slot.on:
                    slot.due_ms = self.uptime_ms
                slot.on = cmd == "start"
            self._send_text(TYPE_REPLY, "ok " + cmd + " " + words[1])
        elif cmd == "rate" and len(words) == 3:
            slots = self._slots_named(words[1])
            try:
                rate = int(words[2])
            except ValueError:
                rate = 0
            if not slots or rate < 1 or rate > MAX_RATE:
                self._send_text(TYPE_REPLY, "error bad rate")
                return
            for slot in slots:
                slot.set_rate(rate)
            self._send_text(TYPE_REPLY, "ok rate " + words[1] + " " + str(rate))
        else:
            self._send_text(TYPE_REPLY, "error unknown command")

    # -- the loop -------------------------------------------------------------
    def step(self):
        """Send what is due (blocks, heartbeat); return ms until something is due."""
        now = self.clock()
        if not self.streaming or self.gate is None:
            return 50
        wait = 1000
        for slot in self.slots:
            if slot is None or not slot.on:
                continue
            if now >= slot.due_ms:
                self.sample(slot)
                slot.due_ms += slot.period_ms
                if now - slot.due_ms > 1000:
                    slot.due_ms = now + slot.period_ms  # fell behind: no burst to catch up
                now = self.clock()
            left = slot.due_ms - now
            if left < wait:
                wait = left
        if now >= self.next_heartbeat_ms:
            self.send_heartbeat()
            self.next_heartbeat_ms = now + self.heartbeat_ms
            led = getattr(self.hal, "led", None)
            if led is not None:
                led((now // self.heartbeat_ms) & 1)
        left = self.next_heartbeat_ms - now
        if left < wait:
            wait = left
        return wait if wait > 0 else 0


def _is_hex(text):
    for ch in text:
        if ch not in "0123456789abcdefABCDEF":
            return False
    return len(text) % 2 == 0


def _unhex(text):
    """Bytes from a hex string (binascii-free so it runs everywhere)."""
    if not _is_hex(text):
        raise ValueError("not a hex string")
    return bytes(int(text[i : i + 2], 16) for i in range(0, len(text), 2))

"""`chaos-host --help` without the command-line framework.

Importing typer (and its click) takes longer than the whole of `chaos-host
--help` may (under 150 ms), so the top-level help is laid out here with the
standard library, the way click lays it out: the same width rule, the same
short-help truncation, the same wrapping.  tests/test_startup.py compares
this text with what the loaded application prints at several terminal widths.
"""

from __future__ import annotations

import shutil
import textwrap

__all__ = ["render_top_level_help", "short_help"]


def short_help(text: str, max_length: int) -> str:
    """The first sentence of ``text``, cut to ``max_length`` with "..." (click's rule)."""
    paragraph_end = text.find("\n\n")
    if paragraph_end != -1:
        text = text[:paragraph_end]
    words = text.split()
    if not words:
        return ""
    total = 0
    last = len(words) - 1
    i = 0
    for i, word in enumerate(words):
        total += len(word) + (i > 0)
        if total > max_length:
            break
        if word[-1] == ".":
            return " ".join(words[: i + 1])
        if total == max_length and i != last:
            break
    else:
        return " ".join(words)
    total += len("...")
    while i > 0:
        total -= len(words[i]) + (i > 0)
        if total <= max_length:
            break
        i -= 1
    return " ".join(words[:i]) + "..."


def _fill(text: str, width: int, indent: str = "") -> str:
    wrapper = textwrap.TextWrapper(
        width, initial_indent=indent, subsequent_indent=indent, replace_whitespace=False
    )
    return "\n\n".join(wrapper.fill(" ".join(p.split("\n"))) for p in text.split("\n\n"))


def _definitions(rows: list[tuple[str, str]], width: int, indent: int = 2) -> list[str]:
    first_col = min(max(len(name) for name, _ in rows), 30) + 2
    lines = []
    for name, text in rows:
        head = " " * indent + name
        if len(name) <= first_col - 2:
            head += " " * (first_col - len(name))
            pad_first = ""
        else:
            pad_first = "\n" + " " * (first_col + indent)
        wrapped = textwrap.TextWrapper(max(width - first_col - 2, 10), replace_whitespace=False).wrap(text)
        body = [head + pad_first + (wrapped[0] if wrapped else "")]
        body += [" " * (first_col + indent) + line for line in wrapped[1:]]
        lines.extend(body)
    return lines


def render_top_level_help(
    prog: str,
    help_text: str,
    commands: tuple[tuple[str, str], ...],
    options: tuple[tuple[str, str], ...] = (),
    epilog: str = "",
) -> str:
    """The help page of a command group: usage, its help, its options and --help, its commands'
    short help, and its epilog."""
    width = max(min(shutil.get_terminal_size().columns, 80) - 2, 50)
    limit = width - 6 - max(len(name) for name, _ in commands)
    out = [f"Usage: {prog} [OPTIONS] COMMAND [ARGS]...", ""]
    out.append(_fill(help_text, width, "  "))
    out += ["", "Options:"]
    out += _definitions([*options, ("--help", "Show this message and exit.")], width)
    out += ["", "Commands:"]
    out += _definitions([(name, short_help(text, limit)) for name, text in commands], width)
    if epilog:
        out += ["", _fill(epilog, width, "  ")]
    return "\n".join(out) + "\n"

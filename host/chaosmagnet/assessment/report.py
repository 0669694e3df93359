"""A self-contained HTML report of an SP 800-90B assessment (`chaos-host assess --report`).

One file, no external resources: inline CSS and inline SVG charts (a histogram
of the symbols and a bar chart of the estimators), so it can be mailed or
archived next to the sample file.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

from chaosmagnet.assessment.noniid import ESTIMATORS, NonIidResult

__all__ = ["render_html"]

_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2rem auto;
       max-width: 60rem; color: #1d232a; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.sub { color: #5b6570; margin-top: 0; }
.cards { display: flex; gap: 1rem; flex-wrap: wrap; }
.card { border: 1px solid #d8dee4; border-radius: 8px; padding: .7rem 1rem; min-width: 10rem; }
.card .v { font-size: 1.6rem; font-weight: 600; } .card .l { color: #5b6570; font-size: .85rem; }
.card.main { border-color: #2f6fdf; } .card.main .v { color: #2f6fdf; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #e6eaee; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.min { font-weight: 700; color: #b3261e; }
.warn { background: #fff4d6; border: 1px solid #f0c36d; padding: .5rem .8rem; border-radius: 6px; }
.pass { color: #1a7f37; font-weight: 600; } .fail { color: #b3261e; font-weight: 600; }
svg text { font-family: inherit; }
"""


def _fmt(value: float | None, digits: int = 6) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _histogram_svg(counts: np.ndarray, bits: int) -> str:
    """Bars of the count of every symbol value 0 .. 2^bits - 1."""
    width, height, left, bottom, top = 900, 280, 60, 46, 10
    values = counts.size
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = int(counts.max()) if counts.size and counts.max() > 0 else 1
    bar_w = plot_w / values
    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="Histogram of the symbols">'
    ]
    # y grid and labels
    for frac in (0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_h * (1 - frac)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="#e6eaee"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#5b6570">{int(round(peak * frac)):,}</text>'
        )
    for value, count in enumerate(counts.tolist()):
        h = plot_h * count / peak
        x = left + value * bar_w
        parts.append(
            f'<rect x="{x:.2f}" y="{top + plot_h - h:.2f}" width="{max(bar_w - 0.5, 0.5):.2f}" '
            f'height="{h:.2f}" fill="#2f6fdf"><title>{value}: {count:,}</title></rect>'
        )
    step = max(1, values // 16)
    for value in range(0, values, step):
        x = left + (value + 0.5) * bar_w
        parts.append(
            f'<text x="{x:.1f}" y="{height - 28}" font-size="11" text-anchor="middle" '
            f'fill="#5b6570">{value}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" font-size="12" text-anchor="middle" '
        f'fill="#5b6570">symbol value ({bits} bits); bar height: number of samples</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _bars_svg(rows: Sequence[tuple[str, float | None]], scale: float, unit: str) -> str:
    """Horizontal bars of estimator values on 0..scale; the smallest is highlighted."""
    present = [v for _, v in rows if v is not None]
    lowest = min(present) if present else None
    row_h, left, right, width = 26, 230, 90, 900
    height = row_h * len(rows) + 30
    plot_w = width - left - right
    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="Estimator results in {html.escape(unit)}">'
    ]
    for frac in (0, 0.25, 0.5, 0.75, 1.0):
        x = left + plot_w * frac
        parts.append(
            f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - 22}" stroke="#e6eaee"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{height - 6}" font-size="11" text-anchor="middle" '
            f'fill="#5b6570">{scale * frac:g}</text>'
        )
    for i, (label, value) in enumerate(rows):
        y = i * row_h + 4
        parts.append(
            f'<text x="{left - 8}" y="{y + 15}" font-size="12" text-anchor="end">'
            f"{html.escape(label)}</text>"
        )
        if value is None:
            parts.append(
                f'<text x="{left + 4}" y="{y + 15}" font-size="12" fill="#5b6570">'
                "not run (too few samples)</text>"
            )
            continue
        w = plot_w * max(0.0, min(value, scale)) / scale
        colour = "#b3261e" if lowest is not None and math.isclose(value, lowest) else "#2f6fdf"
        parts.append(
            f'<rect x="{left}" y="{y}" width="{w:.2f}" height="{row_h - 8}" fill="{colour}" rx="2">'
            f"<title>{html.escape(label)}: {value:.6f} {html.escape(unit)}</title></rect>"
        )
        parts.append(f'<text x="{left + w + 6:.2f}" y="{y + 14}" font-size="12">{value:.4f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _iid_section(iid: Any) -> str:
    data = iid.to_json()
    verdict = {
        "iid": '<span class="pass">IID</span>',
        "not_proven": "<span>IID not proven</span> (some tests were not applicable to this data; "
        "a test not run is not a pass)",
    }.get(str(data.get("verdict")), '<span class="fail">not IID</span>')
    rows = []

    def verdict_cells(test: dict[str, Any]) -> str:
        status = test.get("status", "undecided")
        word, cls = {
            "passed": ("pass", "pass"),
            "failed": ("fail", "fail"),
            "not_applicable": ("not applicable", ""),
        }.get(status, ("undecided", ""))
        note = html.escape(str(test.get("note") or ""))
        return f'<td class="{cls}">{word}</td><td>{note}</td>'

    chi = data.get("chi_square", {})
    for key in ("independence", "goodness_of_fit"):
        if key in chi:
            rows.append(
                f"<tr><td>chi-square {key.replace('_', ' ')}</td>{verdict_cells(chi[key])}</tr>"
            )
    if "lrs" in data:
        rows.append(f"<tr><td>longest repeated substring</td>{verdict_cells(data['lrs'])}</tr>")
    for name, test in data.get("permutation", {}).get("tests", {}).items():
        rows.append(f"<tr><td>permutation: {html.escape(str(name))}</td>{verdict_cells(test)}</tr>")
    h_iid = data.get("h_iid")
    extra = (
        f"<p>IID entropy estimate (most common value): <b>{h_iid:.6f}</b> bits per sample.</p>"
        if h_iid is not None
        else ""
    )
    return (
        f"<h2>IID track (§5)</h2><p>Verdict: {verdict}</p>{extra}"
        f"<table><tr><th>Test</th><th>Result</th><th>Why</th></tr>{''.join(rows)}</table>"
    )


def render_html(
    result: NonIidResult, samples: np.ndarray, iid: Any | None = None, title: str | None = None
) -> str:
    """Return the HTML report for result (and the IID result, when given).

    samples are the raw samples that were assessed (for the histogram).
    """
    name = title or result.file or "samples"
    bits = result.bits
    counts = np.bincount(np.asarray(samples, dtype=np.uint8), minlength=1 << bits)[: 1 << bits]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cards = [
        ("main", "H_assessed (bits per sample)", _fmt(result.h_assessed)),
        ("", "H_original (bits per sample)", _fmt(result.h_original)),
        ("", "H_bitstring (bits per bit)", _fmt(result.h_bitstring)),
        ("", "samples", f"{result.samples:,}"),
        ("", "bits per sample / distinct values", f"{bits} / {result.alphabet}"),
    ]
    card_html = "".join(
        f'<div class="card {cls}"><div class="v">{html.escape(v)}</div>'
        f'<div class="l">{html.escape(label)}</div></div>'
        for cls, label, v in cards
    )
    warnings = "".join(f'<p class="warn">{html.escape(w)}</p>' for w in result.warnings)

    orig_rows = [
        (f"{ESTIMATORS[k][1]} ({ESTIMATORS[k][0]})", result.estimators[k].h_original)
        for k in ESTIMATORS
        if result.estimators[k].ran_original
    ]
    bit_rows = [
        (f"{ESTIMATORS[k][1]} ({ESTIMATORS[k][0]})", result.estimators[k].h_bitstring)
        for k in ESTIMATORS
        if result.estimators[k].ran_bitstring
    ]
    charts = (
        f"<h2>Estimators, per sample (H_original)</h2>"
        f"{_bars_svg(orig_rows, float(bits), 'bits per sample')}"
    )
    if bit_rows:
        charts += (
            f"<h2>Estimators on the bitstring, per bit (H_bitstring)</h2>"
            f"{_bars_svg(bit_rows, 1.0, 'bits per bit')}"
        )

    table_rows = []
    for key, (section, label) in ESTIMATORS.items():
        est = result.estimators[key]
        cells = []
        for ran, value, best in (
            (est.ran_original, est.h_original, result.h_original),
            (est.ran_bitstring, est.h_bitstring, result.h_bitstring),
        ):
            if not ran:
                cells.append('<td class="n">n/a</td>')
            else:
                cls = (
                    "n min"
                    if value is not None and best is not None and math.isclose(value, best)
                    else "n"
                )
                cells.append(f'<td class="{cls}">{_fmt(value)}</td>')
        table_rows.append(
            f"<tr><td>{section}</td><td>{html.escape(label)}</td>{''.join(cells)}</tr>"
        )
    formula = (
        "H_assessed = H_original (binary samples)"
        if result.h_bitstring is None
        else f"H_assessed = min(H_original, {bits} × H_bitstring)"
    )
    iid_html = _iid_section(iid) if iid is not None else ""
    sha_html = (
        f'<p class="sub">SHA-256 <code class="sha256">{html.escape(result.sha256)}</code> · '
        f"{result.samples:,} samples</p>"
        if result.sha256
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SP 800-90B assessment: {html.escape(name)}</title>
<style>{_CSS}</style></head>
<body>
<h1>SP 800-90B entropy assessment</h1>
<p class="sub">{html.escape(name)} · {stamp} · ChaosMagnet <code>chaos-host assess</code></p>
{sha_html}
{warnings}
<div class="cards">{card_html}</div>
<p>{html.escape(formula)}; every estimate is min-entropy at 99&nbsp;% confidence (SP 800-90B §6.3).</p>
<h2>Symbol histogram</h2>
{_histogram_svg(counts, bits)}
{charts}
<h2>All estimates</h2>
<table><tr><th>§</th><th>Estimator</th><th>H_original (bits/sample)</th><th>H_bitstring (bits/bit)</th></tr>
{"".join(table_rows)}</table>
{iid_html}
</body></html>
"""

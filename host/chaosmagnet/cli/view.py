"""The live terminal view of `chaos-host run` (rich), built from Engine.snapshot()."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

_STATE_STYLE = {
    "ok": "green",
    "quarantined": "yellow",
    "failed": "bold red",
    "unavailable": "dim",
    "stopped": "dim",
    "error": "red",
    "ended": "dim",
    "starting": "cyan",
    "waiting": "yellow",
}
_LINK_STYLE = {"linked": "green", "handshake": "cyan", "waiting": "yellow", "lost": "red"}


def node_links(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per node (sources ``node:<label>:<source>``): its link state, reason, port
    and frame counters, from the details its sources report (chaosmagnet.nodes.sources)."""
    nodes: dict[str, dict[str, Any]] = {}
    for s in snapshot["sources"]:
        parts = s["name"].split(":")
        if s.get("kind") != "node" or len(parts) < 3 or parts[1] in nodes:
            continue
        details = s.get("details") or {}
        nodes[parts[1]] = {
            "label": parts[1],
            "link_state": details.get("link_state", "waiting"),
            "link_reason": details.get("link_reason", ""),
            "port": details.get("port", ""),
            "frames": details.get("frames", 0),
            "connects": details.get("connects", 0),
        }
    return list(nodes.values())


def dependence_lines(snapshot: dict[str, Any]) -> list[str]:
    """One line per dependent group: its members, who keeps the credit, and why (p, MI, lag)."""
    lines = []
    for group in (snapshot.get("dependence") or {}).get("groups", []):
        why = "; ".join(pair_why(e) for e in group["evidence"])
        lines.append(
            f"{' + '.join(group['members'])}: credited once, via {group['credited_member']} ({why})"
        )
    return lines


def pair_why(e: dict[str, Any]) -> str:
    """Why a pair is held dependent: its p-value, and the MI and lag correlation behind it."""
    parts = [f"{e['sources'][0]} ~ {e['sources'][1]} p {e['p_value']:.2g}"]
    if e.get("mi_bits") is not None:
        parts.append(f"MI {e['mi_bits']:.3f} bits/{e['mi_bins']} bins")
    if e.get("lag_r") is not None:
        parts.append(f"{e['lag_stat']} r {e['lag_r']:.2f} at lag {e['lag_seconds']} s")
    return ", ".join(parts) + f" [{e['detector']}]"


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if abs(value) < 0.5 * 10**-digits:
        value = 0.0  # a stuck source's estimate of -0.0 reads 0.000, not -0.000
    return f"{value:.{digits}f}"


def _assessed(s: dict[str, Any]) -> str:
    """The last full assessment, or how far the first one has collected."""
    if s["h_assessed"] is not None:
        return _fmt(s["h_assessed"])
    progress = s.get("assessment_progress")
    return "-" if progress is None else f"[dim]{progress * 100:.0f}% coll.[/]"


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _compact(n: float) -> str:
    """A count in at most 6 characters: 999,999 / 1.23M / 45.6G (a narrow terminal's samples)."""
    if n < 1_000_000:
        return f"{n:,.0f}"
    for unit, size in (("M", 1e6), ("G", 1e9), ("T", 1e12)):
        if n < size * 1000:
            return f"{n / size:.3g}{unit}"
    return f"{n:.2e}"


# Layouts of the sources table by terminal width: every column of each is fixed-width
# except the source name, which folds; a number is never cut.
_WIDE = 150  # all columns
_MEDIUM = 110  # no rate, Shannon or collision; RCT/APT together


def render(snapshot: dict[str, Any], width: int | None = None) -> Group:
    """A table of sources and a pool panel, laid out for a terminal ``width`` columns wide
    (all columns from 150, a compact table from 110, the key columns below that)."""
    width = width or 200
    wide = width >= _WIDE
    table = Table(title="sources", title_justify="left", expand=False)
    if width < _MEDIUM:
        table.box = None  # no borders: every column counts at 80
    elif not wide:
        table.box = box.SIMPLE_HEAD  # a rule under the header only
    columns: list[tuple[str, str]] = [("source", "left"), ("state", "left"), ("samples", "right")]
    if wide:
        columns.append(("rate/s", "right"))
    if wide:
        columns.append(("Shannon", "right"))
    columns.append(("min (MCV)" if width >= _MEDIUM else "min H", "right"))
    if wide:
        columns.append(("collision", "right"))
    if width >= _MEDIUM:
        columns += [("assessed", "right"), ("credit/sample", "right")]
    columns.append(("credited bits" if width >= _MEDIUM else "credited", "right"))
    columns += [("RCT", "right"), ("APT", "right")] if wide else [("RCT/APT", "right")]
    if wide:
        columns.append(("anomaly", "right"))
    for column, justify in columns:
        if column == "source":
            table.add_column(column, justify="left", overflow="fold", ratio=1)
        else:
            table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    notes: list[str] = []
    for s in snapshot["sources"]:
        state = Text(s["state"], style=_STATE_STYLE.get(s["state"], ""))
        if s["state"] in ("unavailable", "error", "waiting", "quarantined") and s["reason"]:
            notes.append(f"{s['name']}: {s['reason']}")
        anomaly = s.get("anomaly") or {}
        if anomaly.get("reason") and not anomaly.get("active"):
            notes.append(f"{s['name']}: watching, {anomaly['reason']}")
        row: list[Any] = [s["name"], state]
        row.append(f"{s['samples']:,}" if width >= _MEDIUM else _compact(s["samples"]))
        if wide:
            row.append(f"{s['rate']:,.0f}")
        if wide:
            row.append(_fmt(s["h_shannon"]))
        row.append(_fmt(s["h_min"]))
        if wide:
            row.append(_fmt(s["h_collision"]))
        if width >= _MEDIUM:
            row += [_assessed(s), _fmt(s["credit_h"])]
        row.append(f"{s['credited_bits']:,.0f}" if width >= _MEDIUM else _compact(s["credited_bits"]))
        if wide:
            row += [str(s["rct_failures"]), str(s["apt_failures"])]
            row.append(anomaly_text(anomaly))
        else:
            row.append(f"{s['rct_failures']}/{s['apt_failures']}")
        table.add_row(*row)
    parts: list[Any] = [table]
    if notes:
        parts.append(Text("\n".join(notes), style="dim", overflow="fold"))
    links = node_links(snapshot)
    if links:
        nodes = Table(title="nodes", title_justify="left", expand=False, box=table.box)
        for column in ("node", "link", "port", "frames", "why"):
            if column == "frames":
                nodes.add_column(column, justify="right", no_wrap=True)
            else:
                nodes.add_column(column, justify="left", overflow="fold")
        for n in links:
            nodes.add_row(
                n["label"],
                Text(n["link_state"], style=_LINK_STYLE.get(n["link_state"], "")),
                str(n["port"]),
                f"{n['frames']:,}",
                Text(str(n["link_reason"]), style="dim"),
            )
        parts.append(nodes)
    groups = dependence_lines(snapshot)
    if groups:
        parts.append(Text("dependent sources", style="bold underline"))
        parts.append(Text("\n".join(groups), overflow="fold"))
    p = snapshot["pool"]
    pool = Table.grid(padding=(0, 2))
    pool.add_column(style="bold", no_wrap=True)
    pool.add_column(overflow="fold")
    bar_width = 30 if width >= 100 else 20
    filled = int(round(p["fill"] * bar_width))
    pool.add_row(
        "pool fill",
        f"[green]{'#' * filled}[/][dim]{'.' * (bar_width - filled)}[/] {p['fill'] * 100:5.1f} %  "
        f"({p['credited_bits']:.0f} / {p['capacity_bits']} credited bits)",
    )
    pool.add_row("raw absorbed", f"{_human_bytes(p['raw_bytes'])}  ({p['raw_bits']:,} raw bits)")
    pool.add_row("extraction ratio", f"{p['extraction_ratio']:.4f} credited bits per raw bit")
    pool.add_row("drawn", f"{p['drawn_bits']:,.0f} bits")
    pool.add_row("fingerprint", f"{p['fingerprint']}  (of the state, never the state)" if width >= 100 else p["fingerprint"])
    feed = snapshot.get("outputs", {}).get("kernel_feed")
    if feed is not None:
        pool.add_row("kernel feed", kernel_feed_text(feed))
    pool.add_row("uptime", f"{snapshot['uptime']:.0f} s")
    return Group(*parts, Text("pool", style="bold underline"), pool)


def anomaly_text(anomaly: dict[str, Any]) -> Text:
    """The anomaly cell: the score (1 or more is out of control), or why there is none."""
    state = anomaly.get("state", "off")
    if state in ("off", "learning"):
        return Text(state, style="dim")
    score = float(anomaly.get("score", 0.0))
    return Text(f"{score:.2f}", style="bold red" if anomaly.get("active") else ("yellow" if score >= 0.5 else ""))


def kernel_feed_text(feed: dict[str, Any]) -> str:
    """One line on what `run --feed-kernel` gave the kernel."""
    count = feed.get("entropy_count")
    text = (
        f"{feed['bytes_fed']:,} bytes, {feed['bits_credited']:,} bits credited to the kernel"
        f" in {feed['writes']:,} writes; kernel count {'?' if count is None else count}"
    )
    if feed.get("last_error"):
        text += f"; last error: {feed['last_error']}"
    return text


def status_line(snapshot: dict[str, Any]) -> str:
    """One line per interval for `run` when stdout is not a terminal."""
    p = snapshot["pool"]
    states: dict[str, int] = {}
    for s in snapshot["sources"]:
        states[s["state"]] = states.get(s["state"], 0) + 1
    counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    links = "".join(f"; node {n['label']} {n['link_state']}" for n in node_links(snapshot))
    links += "".join(
        f"; dependent {'+'.join(g['members'])} (credited once)"
        for g in (snapshot.get("dependence") or {}).get("groups", [])
    )
    anomalous = [s["name"] for s in snapshot["sources"] if (s.get("anomaly") or {}).get("active")]
    if anomalous:
        links += f"; anomaly: {', '.join(anomalous)}"
    return (
        f"{snapshot['uptime']:7.1f} s  pool {p['credited_bits']:.0f}/{p['capacity_bits']} credited bits "
        f"({p['fill'] * 100:.0f}%), {p['raw_bytes']:,} raw bytes, ratio {p['extraction_ratio']:.4f}; "
        f"sources: {counts}{links}"
        + (
            f"; kernel fed {snapshot['outputs']['kernel_feed']['bits_credited']:,} bits"
            if snapshot.get("outputs", {}).get("kernel_feed")
            else ""
        )
    )


def summary_lines(snapshot: dict[str, Any]) -> list[str]:
    """The summary printed when `run` stops."""
    p = snapshot["pool"]
    lines = [
        f"ran {snapshot['uptime']:.1f} s; pool {p['credited_bits']:.0f}/{p['capacity_bits']} credited bits, "
        f"{p['raw_bytes']:,} raw bytes absorbed, extraction ratio {p['extraction_ratio']:.4f}"
    ]
    width = max([14, *(len(s["name"]) for s in snapshot["sources"])])
    for s in snapshot["sources"]:
        extra = f"  ({s['reason']})" if s["reason"] and s["state"] != "ok" else ""
        anomaly = s.get("anomaly") or {}
        score = f"  anomaly score {anomaly['score']:.2f}" if anomaly.get("state") in ("watching", "anomalous") else ""
        lines.append(
            f"  {s['name']:<{width}} {s['state']:<12} samples {s['samples']:>10,}  "
            f"min-entropy {max(0.0, s['h_min']):.3f}  credited {s['credited_bits']:,.0f} bits  "
            f"RCT/APT failures {s['rct_failures']}/{s['apt_failures']}{score}{extra}"
        )
    for n in node_links(snapshot):
        why = f" ({n['link_reason']})" if n["link_reason"] else ""
        lines.append(
            f"  node {n['label']}: link {n['link_state']}{why}, port {n['port']}, "
            f"{n['frames']:,} frames"
        )
    for line in dependence_lines(snapshot):
        lines.append(f"  dependent: {line}")
    feed = snapshot.get("outputs", {}).get("kernel_feed")
    if feed is not None:
        lines.append(f"  kernel feed: {kernel_feed_text(feed)}")
    return lines

"""/metrics: the live state in the Prometheus text exposition format (version 0.0.4).

Written by hand (the format is a few lines of text per family); the tests
parse it with prometheus-client's own parser.  Per source: samples, credited
bits, entropy estimates, health failures and state; the pool: fill, credited,
drawn, raw and output bytes; nodes: connected, link state, frames accepted and
dropped by reason when the node layer reports them.  Never the pool state or its
fingerprint.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SOURCE_STATES = (
    "starting",
    "ok",
    "waiting",
    "quarantined",
    "failed",
    "unavailable",
    "stopped",
    "error",
)
LINK_STATES = ("waiting", "handshake", "linked", "lost")  # chaosmagnet.nodes.sources


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float | int | bool | None) -> str:
    if value is None:
        return "NaN"
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


class _Family:
    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name, self.kind, self.help = name, kind, help_text
        self.samples: list[tuple[dict[str, str], Any]] = []

    def add(self, value: Any, **labels: str) -> None:
        self.samples.append((labels, value))

    def lines(self) -> Iterable[str]:
        # text format 0.0.4: a counter's HELP and TYPE lines name the sample, _total included
        sample_name = self.name + "_total" if self.kind == "counter" else self.name
        yield f"# HELP {sample_name} {self.help}"
        yield f"# TYPE {sample_name} {self.kind}"
        for labels, value in self.samples:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            yield (
                f"{sample_name}{{{label_text}}} {_number(value)}"
                if labels
                else f"{sample_name} {_number(value)}"
            )


def render_metrics(status: Mapping[str, Any]) -> str:
    """The text for /metrics from LiveState.status()."""
    fams: dict[str, _Family] = {}

    def fam(name: str, kind: str, help_text: str) -> _Family:
        if name not in fams:
            fams[name] = _Family("chaosmagnet_" + name, kind, help_text)
        return fams[name]

    fam("uptime_seconds", "gauge", "Seconds since the engine started.").add(status["uptime"])
    for s in status["sources"]:
        src = {"source": s["name"], "kind": s["kind"]}
        name = {"source": s["name"]}
        fam("source_samples", "counter", "Raw samples taken from the source.").add(
            s["samples"], **src
        )
        fam(
            "source_credited_bits",
            "counter",
            "Min-entropy bits credited to the pool from the source.",
        ).add(s["credited_bits"], **name)
        fam(
            "source_pool_bits", "gauge", "Credited bits currently in the pool from the source."
        ).add(s["pool_bits"], **name)
        fam(
            "source_rate_samples_per_second", "gauge", "Samples per second over the last second."
        ).add(s["rate"], **name)
        fam("source_bits_per_sample", "gauge", "Width of one raw sample in bits.").add(
            s["bits_per_sample"], **name
        )
        entropy = fam(
            "source_entropy_bits_per_sample",
            "gauge",
            "Entropy estimates per raw sample: online MCV min-entropy, Shannon, collision, "
            "declared, assessed (SP 800-90B) and the credit applied.",
        )
        for estimator, key in (
            ("min_mcv", "h_min"),
            ("shannon", "h_shannon"),
            ("collision", "h_collision"),
            ("declared", "declared_h"),
            ("credit", "credit_h"),
        ):
            entropy.add(s[key], source=s["name"], estimator=estimator)
        if s["h_assessed"] is not None:
            entropy.add(s["h_assessed"], source=s["name"], estimator="assessed")
        failures = fam(
            "source_health_failures", "counter", "Health-test failures (SP 800-90B 4.4) by test."
        )
        failures.add(s["rct_failures"], source=s["name"], test="rct")
        failures.add(s["apt_failures"], source=s["name"], test="apt")
        anomaly = s.get("anomaly") or {}
        if anomaly.get("state") in ("watching", "anomalous"):
            fam(
                "source_anomaly_score",
                "gauge",
                "Anomaly score of the source's per-interval features (1 or more: out of control).",
            ).add(float(anomaly["score"]), **name)
            fam("source_anomaly_active", "gauge", "1 while an anomaly is raised on the source.").add(
                bool(anomaly["active"]), **name
            )
        cutoffs = fam("source_health_cutoff", "gauge", "Health-test cutoffs in force.")
        cutoffs.add(s["rct_cutoff"], source=s["name"], test="rct")
        cutoffs.add(s["apt_cutoff"], source=s["name"], test="apt")
        state = fam("source_state", "gauge", "1 for the source's current state, 0 for the others.")
        states = SOURCE_STATES if s["state"] in SOURCE_STATES else (*SOURCE_STATES, s["state"])
        for candidate in states:
            state.add(1 if candidate == s["state"] else 0, source=s["name"], state=candidate)
        fam("source_enabled", "gauge", "1 when the source is switched on.").add(
            bool(s["enabled"]), **name
        )

    pool = status["pool"]
    fam("pool_fill_ratio", "gauge", "Credited bits in the pool as a fraction of its capacity.").add(
        pool["fill"]
    )
    fam("pool_credited_bits", "gauge", "Credited min-entropy bits in the pool now.").add(
        pool["credited_bits"]
    )
    fam(
        "pool_healthy_credited_bits", "gauge", "Credited bits in the pool from sources in state ok."
    ).add(pool["healthy_credited_bits"])
    fam("pool_capacity_bits", "gauge", "Most credited bits the pool holds.").add(
        pool["capacity_bits"]
    )
    fam(
        "pool_credited",
        "counter",
        "Credited bits ever added to the pool (before capping), in bits.",
    ).add(pool["credited_total"])
    fam("pool_drawn_bits", "counter", "Credited bits debited by draws.").add(pool["drawn_bits"])
    fam("pool_raw_bytes", "counter", "Raw sample bytes absorbed into the pool.").add(
        pool["raw_bytes"]
    )
    fam("pool_output_bytes", "counter", "Bytes drawn from the pool.").add(pool["output_bytes"])
    fam(
        "pool_extraction_ratio",
        "gauge",
        "Credited bits per raw bit absorbed, over the pool's life.",
    ).add(pool["extraction_ratio"])
    output = pool["output"]
    if output["seeded"] and output["samples"]:
        out = fam(
            "output_entropy_bits_per_byte",
            "gauge",
            "Estimates over a sample of conditioned output "
            "(looks full whatever goes in; never credited).",
        )
        for estimator, key in (
            ("min_mcv", "h_min"),
            ("shannon", "h_shannon"),
            ("collision", "h_collision"),
        ):
            out.add(output[key], estimator=estimator)

    feed = status.get("outputs", {}).get("kernel_feed")
    if feed is not None:
        fam("kernel_feed_bytes", "counter", "Bytes of conditioned output written to the kernel (RNDADDENTROPY).").add(
            feed["bytes_fed"]
        )
        fam(
            "kernel_feed_credited_bits",
            "counter",
            "Bits credited to the kernel: never more than were debited from healthy sources' credit.",
        ).add(feed["bits_credited"])
        fam("kernel_feed_writes", "counter", "RNDADDENTROPY calls made.").add(feed["writes"])
        fam("kernel_feed_skipped", "counter", "Intervals skipped because the pool held no healthy credit.").add(
            feed["skipped_no_credit"]
        )
        if feed.get("entropy_count") is not None:
            fam("kernel_entropy_count_bits", "gauge", "The kernel's entropy count (RNDGETENTCNT).").add(
                feed["entropy_count"]
            )
        fam("kernel_feed_error", "gauge", "1 when the last feed attempt failed.").add(bool(feed.get("last_error")))

    nodes = status["nodes"]
    connected = fam("nodes_connected", "gauge", "Nodes whose link is up (state linked).")
    connected.add(sum(1 for n in nodes if n.get("connected")))
    for node in nodes:
        label = str(node["label"])
        if "connected" in node:
            fam("node_connected", "gauge", "1 when the node's link is up.").add(
                bool(node["connected"]), node=label
            )
        current = node.get("link_state")
        if isinstance(current, str):
            family = fam(
                "node_link_state",
                "gauge",
                "1 for the node's link state (waiting, handshake, linked, lost), 0 for the others.",
            )
            known = LINK_STATES if current in LINK_STATES else (*LINK_STATES, current)
            for candidate in known:
                family.add(1 if candidate == current else 0, node=label, state=candidate)
        if "frames_accepted" in node:
            fam("node_frames_accepted", "counter", "Frames accepted from the node.").add(
                node["frames_accepted"], node=label
            )
        dropped = node.get("frames_dropped")
        if isinstance(dropped, Mapping):
            family = fam(
                "node_frames_dropped", "counter", "Frames dropped from the node, by reason."
            )
            for reason, count in sorted(dropped.items()):
                family.add(count, node=label, reason=str(reason))
    return "\n".join(line for family in fams.values() for line in family.lines()) + "\n"

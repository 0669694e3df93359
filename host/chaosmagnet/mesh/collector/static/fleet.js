// ChaosMagnet fleet page: polls /api/fleet every two seconds and each host's
// history, and draws them with the dashboard's own LineChart.  Everything from
// the API is put into the page as text (textContent), never as HTML.

import { LineChart } from "/static/chart.js";

const POLL_MS = 2000;
const charts = new Map(); // host label -> {fill, hmin}
const SOURCE_COLORS = ["#34d399", "#38bdf8", "#a78bfa", "#f59e0b", "#f472b6", "#facc15", "#60a5fa", "#fb7185"];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function fmt(value, digits = 2) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "–";
}

function count(value) {
  return typeof value === "number" ? Math.round(value).toLocaleString("en-US") : "–";
}

function ago(seconds) {
  if (typeof seconds !== "number") return "–";
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

function clock(t) {
  return new Date(t * 1000).toLocaleTimeString("en-GB");
}

async function getJSON(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function renderAlerts(alerts) {
  const list = document.getElementById("alerts-list");
  document.getElementById("alerts-empty").hidden = alerts.length > 0;
  list.replaceChildren(
    ...alerts.map((a) =>
      el("li", { "data-kind": a.kind }, el("span", { class: "when" }, clock(a.time)), el("span", { class: "what" }, a.message)),
    ),
  );
}

function renderHostsTable(hosts) {
  const table = document.getElementById("hosts-table");
  document.getElementById("hosts-empty").hidden = hosts.length > 0;
  table.hidden = hosts.length === 0;
  table.tBodies[0].replaceChildren(
    ...hosts.map((h) => {
      const mesh = h.mesh || {};
      const pool = h.pool || {};
      return el(
        "tr",
        { "data-host": h.label, "data-state": h.shown_state },
        el("td", { class: "name" }, h.label),
        el("td", {}, el("span", { class: "pill", "data-state": h.shown_state }, h.shown_state)),
        el("td", {}, el("span", { class: "pill", "data-state": h.health === "ok" ? "ok" : "degraded" }, h.health)),
        el("td", { class: "num" }, pool.fill === undefined ? "–" : `${Math.round(pool.fill * 100)} %`),
        el("td", { class: "num" }, count(pool.credited_bits)),
        el("td", { class: "num" }, String((h.sources || []).length)),
        el("td", { class: "num" }, `${count(mesh.seeds_sent)} / ${count(mesh.seeds_received)}`),
        el("td", { class: "num" }, ago(h.age)),
        el("td", { class: "mono", title: h.fingerprint }, h.fingerprint.slice(0, 16)),
      );
    }),
  );
}

function hostCard(h) {
  let card = document.querySelector(`section.host-card[data-host="${CSS.escape(h.label)}"]`);
  if (!card) {
    const fill = el("canvas", { class: "chart small" });
    const hmin = el("canvas", { class: "chart small" });
    card = el(
      "section",
      { class: "card host-card", "data-host": h.label },
      el("h2", {}, el("span", {}, h.label), el("span", { class: "pill", "data-role": "state" }, "")),
      el("div", { class: "two" },
        el("figure", {}, el("figcaption", {}, "pool fill"), fill),
        el("figure", {}, el("figcaption", {}, "min-entropy per sample, by source"), hmin)),
      el("div", { class: "table-wrap" },
        el("table", { class: "sources" },
          el("thead", {}, el("tr", {},
            el("th", {}, "source"), el("th", {}, "state"), el("th", {}, "health over time"),
            el("th", { class: "num" }, "rate/s"), el("th", { class: "num" }, "Hmin"), el("th", { class: "num" }, "credit"),
            el("th", { class: "num" }, "credited bits"), el("th", { class: "num" }, "RCT/APT"))),
          el("tbody"))),
    );
    document.getElementById("host-cards").append(card);
    charts.set(h.label, {
      fill: new LineChart(fill, { series: [{ key: "fill", label: "fill", color: "#34d399", fill: true }], yMax: 1 }),
      hmin: new LineChart(hmin, { series: [], yMax: 8 }),
      history: {},
    });
  }
  const pill = card.querySelector('[data-role="state"]');
  pill.textContent = h.shown_state;
  pill.dataset.state = h.shown_state;
  return card;
}

function renderHostCard(h) {
  const card = hostCard(h);
  const history = charts.get(h.label).history || {};
  card.querySelector("table.sources tbody").replaceChildren(
    ...(h.sources || []).map((s) => {
      const points = (history[s.name] || []).slice(-60);
      return el(
        "tr",
        { "data-source": s.name },
        el("td", { class: "name" }, s.name),
        el("td", {}, el("span", { class: "pill", "data-state": s.state }, s.state)),
        el("td", {}, el("div", { class: "timeline", title: "state at each status, oldest left" },
          ...points.map((p) => el("span", { "data-state": p.state, title: `${clock(p.t)} ${p.state}` })))),
        el("td", { class: "num" }, fmt(s.rate, 0)),
        el("td", { class: "num" }, fmt(s.h_min, 3)),
        el("td", { class: "num" }, fmt(s.credit_h, 3)),
        el("td", { class: "num" }, count(s.credited_bits)),
        el("td", { class: "num" }, `${count(s.rct_failures)}/${count(s.apt_failures)}`),
      );
    }),
  );
}

async function refreshHistory(label) {
  const data = await getJSON(`/api/hosts/${encodeURIComponent(label)}/history?seconds=600`);
  const entry = charts.get(label);
  if (!entry) return;
  entry.history = data.sources;
  entry.fill.setPoints(data.pool.map((p) => ({ t: p.t, fill: p.fill })));
  const names = Object.keys(data.sources).sort();
  entry.hmin.series = names.map((name, i) => ({ key: name, label: name, color: SOURCE_COLORS[i % SOURCE_COLORS.length] }));
  const byTime = new Map();
  for (const name of names) {
    for (const p of data.sources[name]) {
      const row = byTime.get(p.t) || { t: p.t };
      row[name] = p.h_min;
      byTime.set(p.t, row);
    }
  }
  entry.hmin.setPoints([...byTime.values()].sort((a, b) => a.t - b.t));
}

function renderCollector(c) {
  const stats = document.getElementById("collector-stats");
  const dropped = Object.entries(c.dropped).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
  const rows = [
    ["messages received", count(c.messages_received)],
    ["status rows stored", count(c.status_rows)],
    ["source rows stored", count(c.source_rows)],
    ["retention", `${Math.round(c.retention_seconds / 3600)} h`],
    ["dropped", dropped],
  ];
  stats.replaceChildren(...rows.map(([k, v]) => el("div", { class: k === "dropped" ? "wide" : "" }, el("dt", {}, k), el("dd", {}, v))));
  const total = Object.values(c.dropped).reduce((a, b) => a + b, 0);
  document.getElementById("drop-count").textContent = `${total} dropped`;
}

async function tick() {
  const connection = document.getElementById("connection");
  try {
    const fleet = await getJSON("/api/fleet");
    document.getElementById("mesh-name").textContent = fleet.mesh;
    document.getElementById("host-count").textContent = `${fleet.hosts.length} hosts`;
    connection.dataset.state = fleet.broker.state === "linked" ? "live" : "lost";
    connection.textContent = fleet.broker.state === "linked" ? "broker linked" : `broker ${fleet.broker.state}`;
    renderAlerts(fleet.alerts);
    renderHostsTable(fleet.hosts);
    for (const h of fleet.hosts) renderHostCard(h);
    await Promise.all(fleet.hosts.map((h) => refreshHistory(h.label)));
    for (const h of fleet.hosts) renderHostCard(h);
    renderCollector(fleet.collector);
    document.body.dataset.ready = "1";
  } catch (error) {
    connection.dataset.state = "lost";
    connection.textContent = "collector unreachable";
  }
}

tick();
setInterval(tick, POLL_MS);

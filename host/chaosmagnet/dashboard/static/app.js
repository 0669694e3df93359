// ChaosMagnet dashboard page: renders /api/status and the once-a-second
// push stream (/api/events), drives the source switches and the Mint button.
//
// Control token: read once from ?token=... (the link `chaos-host run`
// prints), kept in sessionStorage, removed from the address bar, and sent in
// the X-Chaos-Token header with every state-changing request.  All text from
// the server is inserted with textContent, never as HTML.

import { LineChart } from "./chart.js";

const TOKEN_KEY = "chaosmagnet.token";
const COLORS = { min: "#f59e0b", shannon: "#38bdf8", collision: "#a78bfa", credit: "#34d399" };
const ENTROPY_SERIES = [
  { key: "h_min", label: "min-entropy", color: COLORS.min },
  { key: "h_shannon", label: "Shannon", color: COLORS.shannon },
  { key: "h_collision", label: "collision", color: COLORS.collision },
];

const state = {
  token: null,
  updates: 0,
  status: null,
  charts: new Map(), // source name -> {chart, card}
  poolCredit: null,
  poolOutput: null,
  logAfter: 0,
  auditAfter: 0,
  algorithmsShown: false,
  pending: new Set(),
  bundlesKey: "",
};

// -- small helpers ------------------------------------------------------------
const $ = (selector, root = document) => root.querySelector(selector);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function setText(node, text) {
  if (node && node.textContent !== text) node.textContent = text;
}

function fmt(value, digits = 3) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

function count(value) {
  if (value === null || value === undefined) return "–";
  if (value >= 1e9) return `${(value / 1e9).toFixed(2)} G`;
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)} M`;
  if (value >= 1e4) return `${(value / 1e3).toFixed(1)} k`;
  return String(Math.round(value));
}

function bytes(value) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = value;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

function duration(seconds) {
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}

function clock(epochSeconds) {
  return new Date(epochSeconds * 1000).toLocaleTimeString([], { hour12: false });
}

function toast(message, isError = false) {
  const node = $("#toast");
  node.textContent = message;
  node.dataset.kind = isError ? "error" : "info";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (node.textContent = ""), 8000);
}

function short(value) {
  // digests and fingerprints: the first 12 hex digits say enough in a one-line tail
  if (typeof value === "string" && /^[0-9a-f]{20,}$/.test(value)) return `${value.slice(0, 12)}…`;
  if (typeof value === "number" && !Number.isInteger(value)) return value.toFixed(3);
  return value;
}

function summarize(fields) {
  return Object.entries(fields || {})
    .filter(([, v]) => v !== null && v !== "" && typeof v !== "object")
    .map(([k, v]) => `${k}=${short(v)}`)
    .join("  ");
}

// -- talking to the server ------------------------------------------------------
function readToken() {
  const params = new URLSearchParams(window.location.search);
  const fromUrl = params.get("token");
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    params.delete("token");
    const rest = params.toString();
    window.history.replaceState(null, "", window.location.pathname + (rest ? `?${rest}` : ""));
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

async function getJSON(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Chaos-Token": state.token || "" },
    body: JSON.stringify(body),
  });
  let data = {};
  try {
    data = await response.json();
  } catch {
    data = {};
  }
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

// -- pool --------------------------------------------------------------------
function renderKernelFeed(outputs) {
  const feed = outputs && outputs.kernel_feed;
  $("#kernel-feed-row").hidden = !feed;
  if (!feed) return;
  let text = `${bytes(feed.bytes_fed)}, ${count(feed.bits_credited)} bits credited in ${count(feed.writes)} writes` +
    ` (kernel count ${feed.entropy_count === null ? "?" : feed.entropy_count})`;
  if (feed.last_error) text += ` — last error: ${feed.last_error}`;
  setText($("#kernel-feed"), text);
}

function renderPool(pool) {
  const fill = Math.max(0, Math.min(1, pool.fill));
  setText($("#pool-fill"), `${(fill * 100).toFixed(1)} %`);
  $("#pool-fill-bar").style.width = `${(fill * 100).toFixed(1)}%`;
  setText($("#pool-credited"), `${fmt(pool.credited_bits, 1)} bits`);
  setText($("#pool-capacity"), `of ${pool.capacity_bits}`);
  setText($("#pool-healthy"), `${fmt(pool.healthy_credited_bits, 1)} bits`);
  setText($("#pool-raw"), bytes(pool.raw_bytes));
  setText($("#pool-ratio"), fmt(pool.extraction_ratio, 4));
  setText($("#pool-credited-total"), `${count(pool.credited_total)} bits`);
  setText($("#pool-drawn"), `${count(pool.drawn_bits)} bits`);
  setText($("#pool-output"), bytes(pool.output_bytes));
  setText($("#pool-fingerprint"), pool.fingerprint);
  const out = pool.output;
  setText(
    $("#output-note"),
    out.seeded
      ? `Now measured over ${count(out.samples)} bytes (${bytes(out.bytes_measured)} so far).`
      : "Waiting for the pool to hold 256 credited bits before the probe draws its one seed.",
  );
}

// -- sources table ------------------------------------------------------------
function sourceRow(source) {
  const tbody = $("#sources-table tbody");
  let row = tbody.querySelector(`tr[data-source="${CSS.escape(source.name)}"]`);
  if (row) return row;
  const toggle = el("input", { type: "checkbox", class: "switch", role: "switch", "aria-label": `switch ${source.name}` });
  toggle.addEventListener("change", () => switchSource(source.name, toggle));
  const clear = el("button", { class: "small", type: "button", hidden: "", text: "clear" });
  clear.addEventListener("click", () => clearSource(source.name, clear));
  row = el(
    "tr",
    { dataset: { source: source.name } },
    el("td", {}, toggle),
    el("td", { class: "name" }, el("span", { text: source.name }), el("small", { class: "kind", text: source.kind })),
    el("td", {}, el("span", { class: "pill state" })),
  );
  for (const key of ["samples", "rate", "h_min", "h_shannon", "h_collision", "h_assessed", "credit_h",
    "credited_bits", "pool_bits", "rct_failures", "apt_failures", "anomaly"]) {
    row.append(el("td", { class: `num ${key}` }));
  }
  row.append(el("td", { class: "note" }, el("span", { class: "reason" }), clear));
  tbody.append(row);
  return row;
}

function renderSources(sources) {
  for (const s of sources) {
    const row = sourceRow(s);
    const pill = $(".state", row);
    setText(pill, s.state);
    pill.dataset.state = s.state;
    const toggle = $("input.switch", row);
    if (!state.pending.has(s.name)) toggle.checked = s.enabled;
    toggle.disabled = !state.token || state.pending.has(s.name);
    toggle.title = state.token ? (s.enabled ? "switch off" : "switch on") : "read-only: open the link with the token";
    setText($(".samples", row), count(s.samples));
    setText($(".rate", row), count(s.rate));
    setText($(".h_min", row), fmt(s.h_min));
    setText($(".h_shannon", row), fmt(s.h_shannon));
    setText($(".h_collision", row), fmt(s.h_collision));
    setText($(".h_assessed", row), fmt(s.h_assessed));
    setText($(".credit_h", row), fmt(s.credit_h));
    setText($(".credited_bits", row), count(s.credited_bits));
    setText($(".pool_bits", row), fmt(s.pool_bits, 1));
    setText($(".rct_failures", row), String(s.rct_failures));
    setText($(".apt_failures", row), String(s.apt_failures));
    $(".rct_failures", row).title = `cutoff ${s.rct_cutoff}`;
    $(".apt_failures", row).title = `cutoff ${s.apt_cutoff}`;
    $(".rct_failures", row).classList.toggle("bad", s.rct_failures > 0);
    $(".apt_failures", row).classList.toggle("bad", s.apt_failures > 0);
    const dep = s.dependence;
    const grouped = dep ? (dep.credited ? `credited for group ${dep.group}` : `credited once via ${dep.credited_member} (dependent)`) : "";
    const anomaly = s.anomaly || { state: "off", score: 0, reason: "", active: false };
    const cell = $(".anomaly", row);
    setText(cell, ["off", "learning"].includes(anomaly.state) ? anomaly.state : fmt(anomaly.score, 2));
    cell.title = anomaly.reason || (anomaly.state === "learning" ? "learning this source's baseline" : "");
    cell.classList.toggle("bad", Boolean(anomaly.active));
    const watching = anomaly.reason && !anomaly.active ? `watching: ${anomaly.reason}` : "";
    const notes = [s.conditioned ? "conditioned (credit 0 unless configured)" : "", grouped, s.reason, watching].filter(Boolean);
    setText($(".reason", row), notes.join(" · "));
    const clear = $("button.small", row);
    clear.hidden = !state.token || !["quarantined", "failed"].includes(s.state);
  }
}

async function switchSource(name, toggle) {
  const wanted = toggle.checked;
  state.pending.add(name);
  toggle.disabled = true;
  try {
    const row = await post(`/api/sources/${encodeURIComponent(name)}`, { enabled: wanted });
    toast(`${name}: ${row.state}`);
  } catch (error) {
    toggle.checked = !wanted;
    toast(`${name}: ${error.message}`, true);
  } finally {
    state.pending.delete(name);
    toggle.disabled = !state.token;
  }
}

async function clearSource(name, button) {
  button.disabled = true;
  try {
    const row = await post(`/api/sources/${encodeURIComponent(name)}/clear`, {});
    toast(`${name}: cleared, now ${row.state}`);
  } catch (error) {
    toast(`${name}: ${error.message}`, true);
  } finally {
    button.disabled = false;
  }
}

// -- charts ------------------------------------------------------------------
function sourceChart(source) {
  let entry = state.charts.get(source.name);
  if (entry) return entry;
  const canvas = el("canvas", { class: "chart small", dataset: { chart: `source:${source.name}` } });
  const pill = el("span", { class: "pill state" });
  const bits = source.bits_per_sample;
  const card = el(
    "figure",
    { class: "mini", dataset: { source: source.name } },
    el("figcaption", {}, el("span", {}, el("b", { text: source.name }), el("small", { text: ` bits per ${bits}-bit sample` })), pill),
    canvas,
  );
  $("#chart-grid").append(card);
  const chart = new LineChart(canvas, { series: ENTROPY_SERIES, yMax: bits });
  entry = { chart, pill };
  state.charts.set(source.name, entry);
  return entry;
}

function renderSourceCharts(sources, latest) {
  for (const s of sources) {
    const entry = sourceChart(s);
    setText(entry.pill, s.state);
    entry.pill.dataset.state = s.state;
    if (latest && latest[s.name]) entry.chart.push(latest[s.name]);
    else entry.chart.draw();
  }
}

function setupPoolCharts(capacity) {
  state.poolCredit = new LineChart($('canvas[data-chart="pool-credit"]'), {
    series: [{ key: "credited_bits", label: "credited bits", color: COLORS.credit, fill: "rgba(52, 211, 153, 0.15)" }],
    yMax: () => (state.status ? state.status.pool.capacity_bits : capacity),
  });
  state.poolOutput = new LineChart($('canvas[data-chart="pool-output"]'), {
    series: ENTROPY_SERIES,
    yMax: 8,
  });
}

// -- raw vs conditioned ---------------------------------------------------------
function bar(label, fraction, creditFraction, kind, title) {
  const level = el("div", { class: `bar-level ${kind}` });
  level.style.width = `${(Math.max(0, Math.min(1, fraction ?? 0)) * 100).toFixed(1)}%`;
  const track = el("div", { class: "bar-track" }, level);
  if (creditFraction !== null && creditFraction !== undefined) {
    const mark = el("div", { class: "bar-credit", title: "credit applied" });
    mark.style.left = `${(Math.max(0, Math.min(1, creditFraction)) * 100).toFixed(1)}%`;
    track.append(mark);
  }
  return el(
    "div",
    { class: "bar-row", title },
    el("span", { class: "bar-label", text: label }),
    track,
    el("span", { class: "bar-value", text: fraction === null || fraction === undefined ? "–" : fraction.toFixed(3) }),
  );
}

function renderCompare(status) {
  const box = $("#compare-bars");
  const rows = [];
  for (const s of status.sources) {
    if (!s.samples) continue;
    const width = s.bits_per_sample;
    rows.push(bar(s.name, s.h_min / width, s.credit_h / width, s.conditioned ? "conditioned-source" : "raw",
      `${s.name}: ${fmt(s.h_min)} of ${width} bits per sample (MCV); credit ${fmt(s.credit_h)}`));
  }
  const out = status.pool.output;
  rows.push(bar("pool output", out.h_min === null ? null : out.h_min / 8, null, "conditioned",
    out.seeded ? `conditioned output: ${fmt(out.h_min)} of 8 bits per byte (MCV)` : "not measured yet"));
  box.replaceChildren(...rows);
}

// -- nodes ---------------------------------------------------------------------
function renderNodes(nodes) {
  const table = $("#nodes-table");
  $("#nodes-empty").hidden = nodes.length > 0;
  table.hidden = nodes.length === 0;
  const rows = nodes.map((n) => {
    const drops = Object.entries(n.frames_dropped || {}).filter(([, v]) => v > 0)
      .map(([reason, v]) => `${reason} ${v}`).join(", ") || "none";
    const sources = el("div", { class: "node-sources" });
    for (const s of n.sources) {
      const own = s.node_health && s.node_health.failing !== undefined
        ? (s.node_health.failing ? "node: failing" : "node: ok") : "node: –";
      sources.append(el("span", { class: "pill state", dataset: { state: s.state }, text: `${s.name.split(":").pop()} ${s.state}` }),
        el("small", { text: ` ${own}  ` }));
    }
    const linkState = n.link_state || (n.connected ? "linked" : "waiting");
    const link = el("span", { class: "pill link", dataset: { link: linkState }, text: linkState, title: n.link_reason || "" });
    return el("tr", { dataset: { node: n.label } },
      el("td", { text: n.label }),
      el("td", {}, link, el("small", { text: (n.verified ? " verified" : "") + (n.link_reason ? ` ${n.link_reason}` : "") })),
      el("td", { class: "mono", text: n.port || "–" }),
      el("td", { class: "num", text: count(n.frames_accepted ?? null) }),
      el("td", { text: drops }),
      el("td", { class: "num", text: count(n.lost_frames ?? null) }),
      el("td", { text: n.firmware || "–" }),
      el("td", {}, sources));
  });
  $("tbody", table).replaceChildren(...rows);
}

// -- dependence -------------------------------------------------------------------
function pairWhy(e) {
  const parts = [`${e.sources.join(" ~ ")}: p ${e.p_value}`];
  if (e.mi_bits !== null) parts.push(`MI ${fmt(e.mi_bits, 3)} bits over ${e.mi_bins} bins`);
  if (e.lag_r !== null) parts.push(`${e.lag_stat} r ${fmt(e.lag_r, 2)} at lag ${e.lag_seconds} s`);
  parts.push(`(${e.detector})`);
  return parts.join(", ");
}

function renderDependence(dependence) {
  const groups = (dependence && dependence.groups) || [];
  const table = $("#dependence-table");
  $("#dependence-empty").hidden = groups.length > 0;
  table.hidden = groups.length === 0;
  const rows = groups.map((g) => el("tr", { dataset: { group: g.members.join("+") } },
    el("td", { text: g.members.join(" + ") }),
    el("td", { text: g.credited_member || "–" }),
    el("td", {}, ...g.evidence.map((e) => el("div", { text: pairWhy(e) })))));
  $("tbody", table).replaceChildren(...rows);
  const sched = dependence && dependence.schedule;
  setText($("#dependence-schedule"), sched && sched.pairs
    ? `${sched.pairs} pairs of ${sched.sources} sources; ${sched.pairs_per_tick} tested a second, each re-tested every ${sched.retest_seconds} s`
    : "");
}

// -- minting -------------------------------------------------------------------
function renderMint(mint) {
  const button = $("#mint-button");
  const hint = $("#mint-hint");
  if (!state.algorithmsShown && mint.algorithms) {
    const kem = $("#mint-kem");
    for (const a of mint.algorithms.kem) {
      const label = `${a.name} (${a.strength_bits}-bit${a.seeded_from_pool ? "" : ", backend RNG"})`;
      const option = el("option", { value: a.name, text: label });
      if (a.name === mint.default_kem) option.selected = true;
      kem.append(option);
    }
    const sign = $("#mint-sign");
    for (const a of mint.algorithms.sign) {
      sign.append(el("option", { value: a.name, text: `${a.name} (${a.strength_bits}-bit${a.seeded_from_pool ? "" : ", backend RNG"})` }));
    }
    state.algorithmsShown = true;
  }
  const remote = !["127.0.0.1", "localhost", "[::1]", "::1"].includes(window.location.hostname);
  const field = $("#mint-passphrase");
  field.disabled = remote; // a passphrase would cross the network in clear
  field.placeholder = remote ? (mint.server_passphrase ? "the server's CHAOS_PASSPHRASE is used" : "not over the network") : "";
  const creating = mint.identity && !mint.identity.exists;
  const typed = $("#mint-passphrase").value.length > 0;
  $("#mint-confirm-label").hidden = !(creating && typed);
  let reason = "";
  if (!mint.available) reason = mint.reason;
  else if (!state.token) reason = "read-only: open the link with the control token to mint";
  else if (remote && !mint.server_passphrase) {
    reason = "from another machine, minting uses the server's CHAOS_PASSPHRASE, and it is not set (or use an SSH tunnel)";
  }
  else if (mint.busy) reason = "";
  button.disabled = Boolean(reason) || mint.busy;
  button.title = reason;
  const notes = [];
  if (reason) notes.push(reason);
  else {
    notes.push(mint.server_passphrase
      ? "Leave the passphrase empty to use the server's CHAOS_PASSPHRASE."
      : "The passphrase seals the secret keys (scrypt + AES-256-GCM); it is never stored or shown.");
    if (creating) notes.push("The first mint creates this host's identity, sealed under the passphrase.");
    else if (mint.identity && mint.identity.fingerprint) notes.push(`Signed by host identity ${short(mint.identity.fingerprint)}`);
    notes.push(`Seeds are drawn once the pool holds ${mint.credit_factor}× the key strength in healthy credited bits.`);
  }
  setText(hint, notes.join(" "));
  const p = mint.progress || {};
  let progress = "";
  if (mint.busy) {
    progress = p.phase === "waiting" && p.need
      ? `waiting for entropy: ${p.what} — ${fmt(p.have, 0)}/${fmt(p.need, 0)} credited bits` +
        (p.reason ? ` (${p.reason})` : "")
      : p.phase === "unsealing" ? "stretching the passphrase (scrypt)…" : "minting…";
  }
  setText($("#mint-progress"), progress);
}

async function mintBundle(event) {
  event.preventDefault();
  const button = $("#mint-button");
  const passphrase = $("#mint-passphrase").value;
  const body = {
    kem: $("#mint-kem").value,
    sign_keypair: $("#mint-sign").value || null,
    passphrase,
    passphrase_confirm: $("#mint-confirm-label").hidden ? null : $("#mint-confirm").value,
  };
  button.disabled = true;
  setText($("#mint-progress"), "minting…");
  try {
    const bundle = await post("/api/mint", body);
    $("#mint-passphrase").value = "";
    $("#mint-confirm").value = "";
    toast(`minted ${bundle.kem} bundle ${bundle.id.slice(0, 8)} (${bundle.credited_bits_drawn} credited bits drawn)`);
    await loadBundles();
  } catch (error) {
    toast(`mint failed: ${error.message}`, true);
  } finally {
    setText($("#mint-progress"), "");
  }
}

function renderBundles(bundles) {
  const empty = $("#bundles-empty");
  setText(empty, "No bundles minted yet.");
  empty.hidden = bundles.length > 0;
  const rows = bundles.map((b) => el(
    "tr",
    { dataset: { bundle: b.id } },
    el("td", { class: "mono", title: b.id, text: b.id.slice(0, 8) }),
    el("td", { text: b.created.replace("T", " ").replace("Z", "") }),
    el("td", { text: b.signing_key ? `${b.kem} + ${b.signing_key}` : b.kem }),
    el("td", { text: b.seeded_from_pool ? "yes" : "no (backend RNG)" }),
    el("td", { text: b.audit_seq === null || b.audit_seq === undefined ? "–" : `#${b.audit_seq}` }),
    el("td", {}, el("a", { href: b.public_url, target: "_blank", rel: "noopener", text: "public part" })),
  ));
  $("#bundles tbody").replaceChildren(...rows);
}

async function loadBundles() {
  try {
    const data = await getJSON("/api/bundles");
    renderBundles(data.bundles);
  } catch (error) {
    toast(error.message, true);
  }
}

// -- log and audit tails ---------------------------------------------------------
function prependLines(list, items, make, limit = 200) {
  for (const item of items) list.prepend(make(item));
  while (list.children.length > limit) list.lastElementChild.remove();
}

function logLine(e) {
  const kind = e.event === "health_failure" ? "bad" : e.event === "source_state" ? "state" : "";
  return el("li", { class: kind },
    el("time", { text: clock(e.time) }),
    el("b", { text: e.event }),
    el("span", { text: summarize(e.fields) }));
}

function auditLine(e) {
  return el("li", {},
    el("time", { text: e.time.replace("T", " ").replace("Z", "").slice(11, 19), title: e.time }),
    el("b", { text: `#${e.seq} ${e.event}` }),
    el("span", { text: summarize(e.fields) }),
    el("small", { class: e.signed ? "signed" : "unsigned", text: e.signed ? "signed" : "unsigned" }));
}

function appendTails(log, audit) {
  if (log.length) {
    prependLines($("#log-tail"), log, logLine);
    state.logAfter = log[log.length - 1].id;
  }
  if (audit.length) {
    prependLines($("#audit-tail"), audit, auditLine);
    state.auditAfter = audit[audit.length - 1].seq;
    if (audit.some((e) => e.event === "mint")) loadBundles();
  }
}

// -- the whole page ----------------------------------------------------------------
function render(status) {
  state.status = status;
  setText($("#uptime"), `uptime ${duration(status.uptime)}`);
  renderPool(status.pool);
  renderKernelFeed(status.outputs);
  renderSources(status.sources);
  renderSourceCharts(status.sources, status.latest);
  if (status.pool_point) state.poolCredit.push(status.pool_point);
  if (status.pool_point) state.poolOutput.push(status.pool_point);
  renderCompare(status);
  renderNodes(status.nodes);
  renderDependence(status.dependence);
  renderMint(status.mint);
  state.updates += 1;
  document.body.dataset.updates = String(state.updates);
}

function connect() {
  const url = `/api/events?log_after=${state.logAfter}&audit_after=${state.auditAfter}`;
  const source = new EventSource(url);
  const chip = $("#connection");
  source.addEventListener("open", () => {
    chip.dataset.state = "live";
    setText(chip, "live");
  });
  source.addEventListener("update", (event) => {
    const data = JSON.parse(event.data);
    appendTails(data.log, data.audit);
    render(data.status);
  });
  source.addEventListener("error", () => {
    chip.dataset.state = "lost";
    setText(chip, "reconnecting…");
  });
}

async function main() {
  state.token = readToken();
  const mode = $("#control-mode");
  setText(mode, state.token ? "control enabled" : "read-only");
  mode.dataset.state = state.token ? "control" : "readonly";
  $("#readonly-notice").hidden = Boolean(state.token);
  $("#mint-form").addEventListener("submit", mintBundle);
  $("#mint-passphrase").addEventListener("input", () => state.status && renderMint(state.status.mint));

  const [status, history, log, audit] = await Promise.all([
    getJSON("/api/status"), getJSON("/api/history"), getJSON("/api/log"), getJSON("/api/audit"),
  ]);
  setupPoolCharts(status.pool.capacity_bits);
  state.poolCredit.setPoints(history.pool);
  state.poolOutput.setPoints(history.pool);
  for (const s of status.sources) sourceChart(s).chart.setPoints(history.sources[s.name] || []);
  appendTails(log.events, audit.entries);
  render(status);
  await loadBundles();
  window.addEventListener("resize", () => {
    state.poolCredit.draw();
    state.poolOutput.draw();
    for (const { chart } of state.charts.values()) chart.draw();
  });
  connect();
}

main().catch((error) => toast(`dashboard failed to start: ${error.message}`, true));

// ringkv console: reads the node's JSON API every 2 s and draws it. No
// framework and no build step; every value from the API is put into the
// page as text (never as HTML), since node names and keys come from outside.
"use strict";

const TOKEN_KEY = "ringkv-token";
const POLL_MS = 2000;
const WINDOW_MS = 5 * 60 * 1000; // the charts' history, by age: a poll takes 2 s plus the time it waits for answers
const SVG_NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
  "#7f7f7f", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d"];
const ZONE_PALETTE = ["#c7c7c7", "#7f7f7f", "#dbdb8d", "#9edae5", "#c5b0d5", "#f7b6d2"];
// HTTP operations that are client requests; the admin routes (the
// console's own polling among them) are left out of the charts.
const HTTP_CLIENT_OPS = new Set(["get", "put", "delete"]);

const state = {
  self: "", role: "none", auth: false, roleKnown: false, metricsError: "",
  ring: null, parts: null, members: [], colors: new Map(),
  whatIf: null, found: null, highlight: null,
  samples: [],
};

// ---- helpers ----

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

async function api(path, opts) {
  const o = Object.assign({ cache: "no-store" }, opts || {});
  o.headers = Object.assign({}, o.headers || {});
  const t = token();
  if (t) o.headers["Authorization"] = "Bearer " + t;
  return fetch(path, o);
}

// apiText answers the body of a 2xx, else throws an Error whose message
// is the status and the node's error, and whose status is the status.
async function apiText(path, opts) {
  const resp = await api(path, opts);
  const text = await resp.text();
  if (!resp.ok) {
    let body = null;
    try { body = JSON.parse(text); } catch (e) { /* not JSON: shown as text */ }
    const err = new Error(resp.status + ": " + ((body && body.error) || text.trim() || resp.statusText));
    err.status = resp.status;
    throw err;
  }
  return text;
}

async function apiJSON(path, opts) {
  const text = await apiText(path, opts);
  try { return JSON.parse(text); } catch (e) { return null; }
}

function fmtBytes(n) {
  if (n === undefined || n === null) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v : v.toFixed(1)) + " " + units[i];
}

function fmtNum(n) { return n === undefined || n === null ? "" : Number(n).toLocaleString("en"); }

function colorOf(name) {
  if (!state.colors.has(name)) state.colors.set(name, PALETTE[state.colors.size % PALETTE.length]);
  return state.colors.get(name);
}

function swatch(color) {
  const s = el("span", { class: "swatch" });
  s.style.background = color;
  return s;
}

function setStatus(msg, isError) {
  const s = $("status");
  s.textContent = msg;
  s.className = isError ? "error" : "muted";
}

// ---- token and role ----

// refreshRole asks the node what the token may do. When it cannot tell
// (the node is down, or refuses this peer) the loop asks again next time.
async function refreshRole() {
  try {
    const w = await apiJSON("/v1/whoami");
    state.role = w.role;
    state.auth = w.auth;
    state.roleKnown = true;
  } catch (e) {
    state.role = "none";
    state.auth = true;
    state.roleKnown = false;
    setStatus("whoami: " + e.message, true);
  }
  renderRole();
}

function renderRole() {
  const badge = $("role");
  if (!state.auth) badge.textContent = "no tokens on this node: admin";
  else if (state.role === "admin") badge.textContent = "admin";
  else badge.textContent = "read-only (" + state.role + ")";
  badge.className = state.role === "admin" ? "badge admin" : "badge";
}

function isAdmin() { return state.role === "admin"; }

// ---- polling ----

// needToken reports whether the node wants a token the page does not have
// (none typed, or one the node refused). The page then asks nothing until
// a token is submitted: every request would be refused, and each refusal
// is counted and logged by the node as a possible attack.
function needToken() { return state.roleKnown && state.auth && state.role === "none"; }

// showNeedToken clears what the page shows and asks for a token.
function showNeedToken(refused) {
  state.members = []; state.ring = null; state.parts = null; state.samples = []; state.metricsError = "";
  renderAll();
  $("charts").replaceChildren(el("p", { class: "muted" }, "waiting for two samples"));
  setStatus((refused ? "the token was refused (401): " : "") + "type a token (role read or above)", refused);
}

// tokenRefused stops polling after a 401 until a token is submitted.
function tokenRefused() {
  state.role = "none";
  renderRole();
  showNeedToken(true);
}

// refresh reads the node's state and redraws; only the loop passes
// sample, so that the charts get one sample per poll.
async function refresh(sample) {
  if (!state.roleKnown) await refreshRole();
  if (!state.roleKnown) return;
  if (needToken()) { showNeedToken(false); return; }
  const results = await Promise.allSettled([
    apiJSON("/v1/stats"), apiJSON("/v1/members"), apiJSON("/v1/ring"),
  ]);
  if (results.some(r => r.status === "rejected" && r.reason.status === 401)) { tokenRefused(); return; }
  const failed = results.filter(r => r.status === "rejected").map(r => r.reason.message);
  if (results[0].status === "fulfilled") {
    state.self = results[0].value.node;
    $("self").textContent = "node " + state.self;
  }
  if (results[1].status === "fulfilled") state.members = results[1].value;
  if (results[2].status === "fulfilled") state.ring = results[2].value;
  if (state.ring && (!state.parts || state.parts.fingerprint !== state.ring.fingerprint)) {
    try { state.parts = await apiJSON("/v1/ring/partitions"); } catch (e) { failed.push(e.message); }
  }
  try {
    const text = await apiText("/metrics");
    state.metricsError = "";
    if (sample) addSample(state.samples, text, Date.now());
  } catch (e) {
    if (e.status === 401) { tokenRefused(); return; }
    state.metricsError = "metrics: " + e.message;
    failed.push(state.metricsError);
  }
  renderAll();
  if (failed.length) setStatus(failed[0], true);
  else setStatus("updated " + new Date().toLocaleTimeString(), false);
}

async function loop() {
  try { await refresh(true); } catch (e) { setStatus(e.message, true); }
  setTimeout(loop, POLL_MS);
}

function renderAll() {
  for (const m of state.members) colorOf(m.name);
  if (state.parts) for (const m of state.parts.members) colorOf(m);
  renderRing();
  renderMembers();
  renderCharts();
}

// ---- ring ----

const R_MOVE = [62, 82], R_ARC = [88, 130], R_ZONE = [134, 148];

function arcPath(p, n, r) {
  const a0 = 2 * Math.PI * p / n - Math.PI / 2;
  const a1 = 2 * Math.PI * (p + 1) / n - Math.PI / 2;
  const large = a1 - a0 > Math.PI ? 1 : 0;
  const pt = (rad, a) => (rad * Math.cos(a)).toFixed(2) + " " + (rad * Math.sin(a)).toFixed(2);
  return "M " + pt(r[1], a0) + " A " + r[1] + " " + r[1] + " 0 " + large + " 1 " + pt(r[1], a1) +
    " L " + pt(r[0], a1) + " A " + r[0] + " " + r[0] + " 0 " + large + " 0 " + pt(r[0], a0) + " Z";
}

function liveness() {
  const m = new Map();
  for (const x of state.members) m.set(x.name, x.liveness);
  return m;
}

// zones maps node to zone, from the ring's per-node zone field; empty when
// no node carries one, and then no zone band is drawn.
function zones() {
  const z = new Map();
  for (const n of (state.ring && state.ring.nodes) || []) if (n.zone) z.set(n.node, n.zone);
  return z;
}

function renderRing() {
  const svg = $("ring");
  svg.replaceChildren();
  if (!state.parts || !state.ring) return;
  const parts = state.parts.partitions;
  const n = parts.length;
  const live = liveness();
  const zoneOf = zones();
  const zoneColors = new Map([...new Set(zoneOf.values())].sort().map((z, i) => [z, ZONE_PALETTE[i % ZONE_PALETTE.length]]));
  for (let p = 0; p < n; p++) {
    const owner = parts[p][0];
    const arc = svgEl("path", { d: arcPath(p, n, R_ARC), class: "arc", fill: colorOf(owner),
      "data-partition": p, "data-owner": owner });
    const l = live.get(owner);
    if (l && l !== "alive") arc.classList.add("down");
    arc.append(svgEl("title"));
    arc.firstChild.textContent = "partition " + p + ": " + parts[p].join(", ");
    arc.addEventListener("mouseenter", () => highlight(owner));
    arc.addEventListener("mouseleave", () => highlight(null));
    svg.append(arc);
    if (zoneOf.size > 0) {
      const z = zoneOf.get(owner) || "";
      svg.append(svgEl("path", { d: arcPath(p, n, R_ZONE), class: "zone", fill: zoneColors.get(z) || "#eee", "data-zone": z }));
    }
  }
  renderWhatIfArcs(svg, n);
  renderFound(svg, n);
  const center = svgEl("text", { x: 0, y: 4 });
  center.textContent = n + " partitions, N=" + state.ring.replicas;
  svg.append(center);
  $("ring-summary").textContent = "fingerprint " + state.ring.fingerprint + (state.ring.degraded ? " (degraded: fewer members than N)" : "");
  $("zones-note").textContent = zoneOf.size ? "outer band: zones " + [...zoneColors.keys()].join(", ") : "";
  renderLegend(live);
  applyHighlight();
}

function renderWhatIfArcs(svg, n) {
  if (!state.whatIf) return;
  for (const mv of state.whatIf.moves || []) {
    const to = mv.after[0] || "";
    const arc = svgEl("path", { d: arcPath(mv.partition, n, R_MOVE), class: "move", fill: colorOf(to),
      "data-partition": mv.partition });
    arc.append(svgEl("title"));
    arc.firstChild.textContent = "partition " + mv.partition + ": " + mv.before.join(", ") + " -> " + mv.after.join(", ");
    svg.append(arc);
  }
}

function renderFound(svg, n) {
  if (state.found === null || state.found >= n) return;
  const a = 2 * Math.PI * (state.found + 0.5) / n - Math.PI / 2;
  const x = (r) => (r * Math.cos(a)).toFixed(2), y = (r) => (r * Math.sin(a)).toFixed(2);
  svg.append(svgEl("line", { x1: x(40), y1: y(40), x2: x(152), y2: y(152), stroke: "#000", "stroke-width": 2, class: "found" }));
}

function renderLegend(live) {
  const ul = $("legend");
  ul.replaceChildren();
  const counts = new Map();
  for (const row of state.parts.partitions) counts.set(row[0], (counts.get(row[0]) || 0) + 1);
  for (const name of state.parts.members) {
    const l = live.get(name) || "unknown";
    const li = el("li", { "data-node": name }, swatch(colorOf(name)), name + ": " + (counts.get(name) || 0) + " partitions owned" + (l !== "alive" ? " (" + l + ")" : ""));
    if (l !== "alive") li.classList.add("down");
    li.addEventListener("mouseenter", () => highlight(name));
    li.addEventListener("mouseleave", () => highlight(null));
    ul.append(li);
  }
}

// highlight dims every partition that node does not replicate.
function highlight(node) {
  state.highlight = node;
  applyHighlight();
}

function applyHighlight() {
  const node = state.highlight;
  const parts = state.parts ? state.parts.partitions : [];
  for (const arc of $("ring").querySelectorAll("path.arc")) {
    const row = parts[Number(arc.dataset.partition)] || [];
    arc.classList.toggle("dim", node !== null && !row.includes(node));
  }
  for (const li of $("legend").children) li.classList.toggle("active", li.dataset.node === node);
}

// ---- what-if ----

async function showWhatIf(ev) {
  ev.preventDefault();
  const op = $("whatif-op").value;
  const name = $("whatif-node").value.trim();
  const out = $("whatif");
  if (!name) { out.replaceChildren(el("p", { class: "error" }, "give a node name")); return; }
  try {
    state.whatIf = await apiJSON("/v1/ring?what_if=" + encodeURIComponent(op + ":" + name));
  } catch (e) {
    state.whatIf = null;
    out.replaceChildren(el("p", { class: "error" }, e.message));
    renderRing();
    return;
  }
  renderWhatIf();
  renderRing();
}

function renderWhatIf() {
  const w = state.whatIf;
  const out = $("whatif");
  const pct = (x) => (100 * x).toFixed(1) + "%";
  const lines = [el("p", { id: "whatif-summary" },
    w.op + " " + w.node + ": " + w.changed_partitions.length + " partitions change hands; " +
    w.moved_slots + " of " + w.total_slots + " replica slots move (" + pct(w.moved_fraction) +
    ", the least possible is " + pct(w.optimal_fraction) + ")" +
    (w.has_bytes ? "; about " + fmtBytes(w.moved_bytes) + " would move" : "") +
    ". Inner band: the new owner of each moving partition.")];
  const table = el("table", {}, el("tr", {}, el("th", {}, "node"), el("th", {}, "owned before"), el("th", {}, "after"),
    el("th", {}, "replicated before"), el("th", {}, "after")));
  for (const s of w.shares || []) {
    table.append(el("tr", {}, el("td", {}, swatch(colorOf(s.node)), s.node), el("td", { class: "num" }, s.owned_before),
      el("td", { class: "num" }, s.owned_after), el("td", { class: "num" }, s.replicated_before), el("td", { class: "num" }, s.replicated_after)));
  }
  lines.push(table);
  out.replaceChildren(...lines);
}

function clearWhatIf() {
  state.whatIf = null;
  $("whatif").replaceChildren();
  renderRing();
}

// ---- members ----

function transferCell(t) {
  if (!t) return "";
  const total = t.pending + t.in_flight + t.done;
  if (t.pending + t.in_flight === 0) return t.done ? "done (" + t.done + " partitions)" : "";
  const bar = el("progress", { max: total, value: t.done });
  return el("span", {}, bar, " " + t.done + "/" + total + " partitions, " + fmtBytes(t.bytes_left) + " left");
}

function aaeCell(a) {
  if (!a) return "off or unknown";
  let s = a.partitions_in_sync + "/" + a.partitions + " partitions in sync";
  s += a.last_full_pass ? ", last full pass " + new Date(a.last_full_pass).toLocaleTimeString() : ", no full pass yet";
  if (a.exchange_failures) s += ", " + a.exchange_failures + " failed exchanges";
  return s;
}

function actionCell(m) {
  if (!isAdmin()) return "";
  if (m.name === state.self) {
    const b = el("button", { class: "danger", "data-action": "leave" }, "leave");
    b.addEventListener("click", () => adminAction("/v1/leave",
      "Make " + m.name + " leave the ring? It hands its partitions to their new replicas, then stops."));
    return b;
  }
  if (m.status !== "joined" && m.status !== "joining" && m.status !== "leaving") return "";
  const b = el("button", { class: "danger", "data-action": "remove" }, "remove");
  b.addEventListener("click", () => adminAction("/v1/remove/" + encodeURIComponent(m.name),
    "Remove " + m.name + " from the ring? Its partitions move to the other nodes without it."));
  return b;
}

async function adminAction(path, question) {
  if (!window.confirm(question)) return;
  try {
    const r = await apiJSON(path, { method: "POST" });
    setStatus(r.message || "done", false);
  } catch (e) {
    setStatus(e.message, true);
  }
}

function renderMembers() {
  const tbody = $("members").tBodies[0];
  tbody.replaceChildren();
  const ringNodes = new Map(((state.ring && state.ring.nodes) || []).map(n => [n.node, n]));
  const transfers = (state.ring && state.ring.transfers) || {};
  const aae = (state.ring && state.ring.aae) || {};
  for (const m of state.members) {
    const rn = ringNodes.get(m.name);
    const stats = rn && rn.has_stats;
    const tr = el("tr", { "data-node": m.name, "data-liveness": m.liveness },
      el("td", {}, swatch(colorOf(m.name)), m.name + (m.name === state.self ? " (this node)" : "")),
      el("td", { class: "liveness" }, m.liveness),
      el("td", {}, m.status),
      el("td", { class: "num" }, stats ? fmtNum(rn.keys) : ""),
      el("td", { class: "num" }, stats ? fmtBytes(rn.bytes) : ""),
      el("td", { class: "num" }, m.pending_hints ? fmtNum(m.pending_hints) + " (" + fmtBytes(m.pending_hint_bytes) + ")" : "0"),
      el("td", {}, transferCell(transfers[m.name])),
      el("td", {}, aaeCell(aae[m.name])),
      el("td", {}, actionCell(m)));
    if (m.liveness !== "alive") tr.classList.add("down");
    if (m.liveness === "suspect") tr.classList.add("suspect");
    tbody.append(tr);
  }
  const plan = state.ring && state.ring.plan;
  $("plan").textContent = plan ? "plan epoch " + plan.epoch + ": members " + plan.members.join(", ") +
    (plan.target ? "; moving to " + plan.target.join(", ") : "") : "";
}

// ---- request charts, from the node's /metrics histograms ----

const LABEL_RE = /(\w+)="((?:[^"\\]|\\.)*)"/g;

// parseHistograms sums ringkv_request_duration_seconds over status, per
// "proto op" of a client request: {count, buckets: Map(le -> cumulative)}.
function parseHistograms(text) {
  const series = new Map();
  for (const line of text.split("\n")) {
    const m = /^ringkv_request_duration_seconds_(bucket|count)\{([^}]*)\} (\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of m[2].matchAll(LABEL_RE)) labels[l[1]] = l[2];
    if (labels.proto === "http" && !HTTP_CLIENT_OPS.has(labels.op)) continue;
    const key = labels.proto + " " + labels.op;
    if (!series.has(key)) series.set(key, { count: 0, buckets: new Map() });
    const s = series.get(key);
    const v = Number(m[3]);
    if (m[1] === "count") s.count += v;
    else s.buckets.set(labels.le, (s.buckets.get(labels.le) || 0) + v);
  }
  return series;
}

// addSample appends a sample taken at now (ms) to samples and drops those
// older than the window.
function addSample(samples, text, now) {
  samples.push({ t: now, series: parseHistograms(text) });
  while (samples.length && samples[0].t < now - WINDOW_MS) samples.shift();
}

// quantile estimates q of the requests between two samples from their
// bucket counts, interpolating inside a bucket as Prometheus does.
function quantile(q, prev, cur) {
  const total = cur.count - prev.count;
  if (total <= 0) return null;
  const les = [...cur.buckets.keys()].filter(k => k !== "+Inf").sort((a, b) => Number(a) - Number(b));
  const rank = q * total;
  let lower = 0, below = 0;
  for (const le of les) {
    const bound = Number(le);
    const n = cur.buckets.get(le) - (prev.buckets.get(le) || 0); // cumulative
    if (n >= rank) return lower + (bound - lower) * ((rank - below) / Math.max(n - below, 1e-9));
    lower = bound;
    below = n;
  }
  return lower; // above the last bound: report the bound
}

// restarted reports whether a series' counters went back between two
// samples: the node restarted. The count alone may have grown back past
// the previous sample's, so every bucket is compared.
function restarted(prev, cur) {
  if (cur.count < prev.count) return true;
  for (const [le, n] of prev.buckets) if ((cur.buckets.get(le) || 0) < n) return true;
  return false;
}

const NO_SERIES = { count: 0, buckets: new Map() };

// points returns, per key, [{t, ops, p50, p99}] between consecutive
// samples. After a restart the new counters are the increase, as
// Prometheus's rate() takes them.
function points(samples) {
  const out = new Map();
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1], b = samples[i];
    const dt = (b.t - a.t) / 1000;
    if (dt <= 0) continue;
    for (const [key, cur] of b.series) {
      let prev = a.series.get(key) || NO_SERIES;
      if (restarted(prev, cur)) prev = NO_SERIES;
      if (!out.has(key)) out.set(key, []);
      out.get(key).push({ t: b.t, ops: (cur.count - prev.count) / dt,
        p50: quantile(0.5, prev, cur), p99: quantile(0.99, prev, cur) });
    }
  }
  return out;
}

// series draws one line of a chart, with a dot on the newest point so that
// a line of a single sample shows too.
function series(pts, field, scale, cls, t0, span) {
  const xy = pts.filter(p => p[field] !== null).map(p =>
    [((p.t - t0) / span * 258 + 1).toFixed(1), (68 - p[field] / scale * 64).toFixed(1)]);
  const g = svgEl("g", { class: cls });
  g.append(svgEl("polyline", { points: xy.map(c => c.join(",")).join(" ") }));
  if (xy.length) g.append(svgEl("circle", { cx: xy[xy.length - 1][0], cy: xy[xy.length - 1][1], r: 2 }));
  return g;
}

function chart(title, pts, lines, unit, t0, span) {
  const max = Math.max(1e-9, ...pts.flatMap(p => lines.map(l => p[l] || 0)));
  const svg = svgEl("svg", { viewBox: "0 0 260 70", preserveAspectRatio: "none" });
  for (const l of lines) svg.append(series(pts, l, max, l, t0, span));
  const last = pts[pts.length - 1];
  const legend = lines.map(l => l + " " + (last[l] === null ? "-" : unit(last[l]))).join(", ");
  return el("div", {}, el("div", { class: "legend" }, title + ": " + legend + " (max " + unit(max) + ")"), svg);
}

function renderCharts() {
  const box = $("charts");
  if (state.metricsError) { box.replaceChildren(el("p", { class: "error" }, state.metricsError)); return; }
  if (state.samples.length < 2) return;
  const byKey = points(state.samples);
  const t1 = state.samples[state.samples.length - 1].t;
  const t0 = state.samples[0].t; // the charts widen as history builds up
  const span = Math.max(t1 - t0, 1);
  const ms = (s) => (s * 1000).toFixed(s < 0.001 ? 3 : 1) + " ms";
  const rate = (x) => x.toFixed(x < 10 ? 1 : 0) + "/s";
  const charts = [];
  for (const key of [...byKey.keys()].sort()) {
    const pts = byKey.get(key);
    if (!pts.some(p => p.ops > 0)) continue;
    charts.push(el("div", { class: "chart", "data-op": key }, el("h3", {}, key),
      chart("throughput", pts, ["ops"], rate, t0, span), chart("latency", pts, ["p50", "p99"], ms, t0, span)));
  }
  if (charts.length === 0) charts.push(el("p", { class: "muted" }, "no client requests on this node in the last 5 minutes"));
  box.replaceChildren(...charts);
}

// ---- key lookup ----

function decodeValue(b64) {
  const bin = atob(b64 || "");
  const bytes = Uint8Array.from(bin, c => c.charCodeAt(0));
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (e) {
    return "(" + bytes.length + " bytes, not UTF-8; base64 " + b64 + ")";
  }
}

async function lookUp(ev) {
  ev.preventDefault();
  const key = $("key").value;
  const out = $("key-result");
  if (!key) { out.replaceChildren(el("p", { class: "error" }, "give a key")); return; }
  let v;
  try {
    v = await apiJSON("/v1/versions?key=" + encodeURIComponent(key));
  } catch (e) {
    out.replaceChildren(el("p", { class: "error" }, e.message));
    return;
  }
  state.found = v.placement.partition;
  renderRing();
  const names = (list) => el("span", {}, ...list.flatMap((n, i) => [i ? ", " : "", swatch(colorOf(n)), n]));
  const live = v.versions.filter(x => !x.deleted).length;
  const table = el("table", { id: "versions" }, el("tr", {}, el("th", {}, "dot"), el("th", {}, "wall time"), el("th", {}, "value")));
  for (const x of v.versions) {
    table.append(el("tr", { class: x.deleted ? "version deleted" : "version" }, el("td", { class: "mono" }, x.dot),
      el("td", {}, x.wall_time), el("td", { class: "mono" }, x.deleted ? "(deleted)" : decodeValue(x.value))));
  }
  out.replaceChildren(
    el("p", {}, "partition " + v.placement.partition + "; preference list (owner first): ", names(v.placement.replicas)),
    el("p", {}, "fallbacks: ", v.placement.fallbacks.length ? names(v.placement.fallbacks) : "none"),
    el("p", { id: "versions-summary" }, live === 0 ? "not found" : live === 1 ? "one live version" : live + " siblings (concurrent versions)"),
    v.versions.length ? table : "",
    el("p", {}, "context: ", el("code", {}, v.context || "(empty)")));
}

// ---- start ----

function init() {
  const saved = token();
  if (saved) $("token").value = saved;
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    refreshRole().then(() => refresh(false));
  });
  $("token-clear").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $("token").value = "";
    refreshRole().then(() => refresh(false));
  });
  $("whatif-form").addEventListener("submit", showWhatIf);
  $("whatif-clear").addEventListener("click", clearWhatIf);
  $("key-form").addEventListener("submit", lookUp);
  loop(); // asks whoami first
}

init();

// churnwatch dashboard: plain JavaScript, no build step, no external asset.
// Data: /api/warnings (stored, newest first) and /api/warnings/stream
// (server-sent events) for the live table, /api/chart, /api/tasks and
// /api/health. Every text from the data is set with textContent.
"use strict";

const token = new URLSearchParams(location.search).get("token");
const MAX_ROWS = 300;
const PALETTE = ["#1f5fbf", "#c2410c", "#15803d", "#7c3aed", "#a50e0e", "#0e7490", "#a16207",
  "#be185d", "#4d7c0f", "#334155", "#ea580c", "#0891b2", "#9333ea"];

let signals = {};        // code -> {zh, en, color}
let stream = null;       // EventSource
let chartRange = "7d"; // simulated and replayed data are days old; 24 h is a click away
let previousCounts = null; // {at, topics: {topic: consumed}}

function url(path, params) {
  const u = new URL(path, location.href);
  for (const [k, v] of Object.entries(params || {})) if (v) u.searchParams.set(k, v);
  if (token) u.searchParams.set("token", token);
  return u.toString();
}

async function getJSON(path, params) {
  const r = await fetch(url(path, params), { cache: "no-store" });
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

// Times show in the pipeline's time zone (what a "day" is for it), not
// the browser's.
const timeFormat = (() => {
  const opts = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };
  try {
    const timeZone = document.querySelector('meta[name="churnwatch-timezone"]').content;
    return new Intl.DateTimeFormat("sv-SE", Object.assign({ timeZone }, opts));
  } catch (e) { // not an IANA name (e.g. "Local"): the browser's zone
    return new Intl.DateTimeFormat("sv-SE", opts);
  }
})();

function fmtTime(s) {
  const d = new Date(s);
  if (isNaN(d)) return "";
  return timeFormat.format(d); // 2026-11-23 20:46:19
}

function ago(s) {
  if (!s) return "never";
  const sec = Math.max(0, Math.round((Date.now() - new Date(s)) / 1000));
  if (sec < 90) return sec + " s ago";
  if (sec < 5400) return Math.round(sec / 60) + " min ago";
  return Math.round(sec / 3600) + " h ago";
}

function filters() {
  const f = new FormData(document.getElementById("filters"));
  const out = {};
  for (const [k, v] of f.entries()) if (String(v).trim()) out[k] = String(v).trim();
  return out;
}

// ---- live warnings ----

function warningRow(w, fresh) {
  const s = signals[w.signal] || { zh: w.signal_zh, en: w.signal_en };
  const tr = el("tr", { "data-warning-id": w.warning_id, "data-signal": w.signal, class: fresh ? "fresh" : "" },
    el("td", { text: fmtTime(w.detected_at) }),
    el("td", { class: "sev " + w.severity, text: w.severity }),
    el("td", {}, el("span", { text: s.zh || w.signal }), el("br"), el("span", { class: "en", text: s.en || "" })),
    el("td", { class: "msisdn", text: w.msisdn }),
    el("td", { text: w.tier }),
    el("td", { text: w.region || "" }),
    el("td", { text: [w.account_manager, w.phone_manager].filter(Boolean).join(" / ") }),
    el("td", { class: "num", text: String(w.score) }),
    el("td", { class: "evidence", text: w.evidence || "" }));
  return tr;
}

function addWarning(w, fresh) {
  const tbody = document.querySelector("#warnings tbody");
  if (tbody.querySelector(`tr[data-warning-id="${CSS.escape(w.warning_id)}"]`)) return;
  tbody.prepend(warningRow(w, fresh));
  while (tbody.rows.length > MAX_ROWS) tbody.deleteRow(tbody.rows.length - 1);
  updateCount();
}

function updateCount() {
  const n = document.querySelector("#warnings tbody").rows.length;
  document.getElementById("warnings-empty").hidden = n > 0;
  document.getElementById("live-count").textContent = n ? `(${n} shown, newest first)` : "";
}

function setStream(state, text) {
  const s = document.getElementById("stream-status");
  s.dataset.state = state;
  s.textContent = text;
}

function connect() {
  if (stream) stream.close();
  const f = filters();
  document.querySelector("#warnings tbody").replaceChildren();
  updateCount();
  setStream("connecting", "connecting…");
  // The stream first, then the stored warnings, so that nothing falls
  // between the two; rows are deduplicated by warning id.
  stream = new EventSource(url("api/warnings/stream", f));
  stream.addEventListener("ready", () => setStream("live", "● live 实时"));
  stream.addEventListener("warning", (e) => addWarning(JSON.parse(e.data), true));
  stream.onerror = () => setStream("down", "stream lost, reconnecting…");
  getJSON("api/warnings", Object.assign({ limit: "100" }, f)).then((ws) => {
    for (const w of ws.reverse()) addWarning(w, false);
  }).catch((e) => console.warn(e));
}

// ---- chart: stacked bars drawn as inline SVG ----

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

async function drawChart() {
  let c;
  try { c = await getJSON("api/chart", { range: chartRange }); } catch (e) { console.warn(e); return; }
  const W = 1000, H = 220, L = 36, B = 22, T = 8;
  c.series = c.series || [];
  const n = c.buckets.length;
  const totals = c.buckets.map((_, i) => c.series.reduce((a, s) => a + s.counts[i], 0));
  const maxY = Math.max(1, ...totals);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img",
    "aria-label": "warnings per signal" });
  const bw = (W - L) / n;
  const y = (v) => H - B - (v / maxY) * (H - B - T);
  for (const frac of [0, 0.5, 1]) {
    const v = Math.round(maxY * frac);
    root.append(svg("line", { x1: L, x2: W, y1: y(v), y2: y(v), class: "axis", "stroke-dasharray": frac ? "2 3" : "" }));
    root.append(svg("text", { x: L - 4, y: y(v) + 3, "text-anchor": "end" }, String(v)));
  }
  c.buckets.forEach((b, i) => {
    let acc = 0;
    for (const s of c.series) {
      const v = s.counts[i];
      if (!v) continue;
      const r = svg("rect", { x: L + i * bw + 1, width: Math.max(1, bw - 2), y: y(acc + v), height: y(acc) - y(acc + v),
        fill: (signals[s.signal] || {}).color || "#888" });
      const names = signals[s.signal] || {};
      r.append(svg("title", {}, `${names.zh || s.signal} ${names.en || ""}: ${v}`));
      root.append(r);
      acc += v;
    }
    const every = Math.ceil(n / 12);
    if (i % every === 0) {
      root.append(svg("text", { x: L + i * bw + bw / 2, y: H - 6, "text-anchor": "middle" }, c.labels[i]));
    }
  });
  document.getElementById("chart").replaceChildren(root);
  const legend = document.getElementById("legend");
  legend.replaceChildren();
  for (const s of c.series) {
    const names = signals[s.signal] || {};
    const total = s.counts.reduce((a, v) => a + v, 0);
    const i = el("i");
    i.style.background = names.color || "#888";
    legend.append(el("span", {}, i, `${names.zh || s.signal} ${names.en || ""} (${total})`));
  }
  if (!c.series.length) legend.append(el("span", { class: "muted", text: "no warning in this range — 此时段无预警" }));
}

// ---- tasks per manager ----

async function loadTasks() {
  let loads;
  try { loads = await getJSON("api/tasks"); } catch (e) { console.warn(e); return; }
  const tbody = document.querySelector("#tasks tbody");
  tbody.replaceChildren(...loads.map((l) => el("tr", {},
    el("td", { text: l.assignee || "(unassigned)" }),
    el("td", { class: "num", text: String(l.open) }),
    el("td", { class: "num" + (l.overdue ? " sev critical" : ""), text: String(l.overdue) }),
    el("td", { class: "num", text: String(l.escalated) }),
    el("td", {}, el("a", { href: url("report", { manager: l.assignee }), text: "昨日报表 report" })))));
  document.getElementById("tasks-empty").hidden = loads.length > 0;
}

// ---- pipeline health ----

async function loadHealth() {
  let h;
  try { h = await getJSON("api/health"); } catch (e) {
    const r = document.getElementById("ready");
    r.dataset.state = "unready"; r.textContent = "dashboard API unreachable";
    return;
  }
  const rd = h.readiness;
  const r = document.getElementById("ready");
  r.dataset.state = rd.ready ? "ready" : "unready";
  r.textContent = rd.ready ? "ready 正常" : "NOT READY 异常";
  document.getElementById("problems").replaceChildren(...(rd.problems || []).concat(h.errors || []).map((p) => el("li", { text: p })));

  const lagByTopic = {};
  for (const l of h.lag || []) lagByTopic[l.topic] = (lagByTopic[l.topic] || 0) + l.lag;
  const at = new Date(h.now).getTime();
  const rates = {};
  if (previousCounts && at > previousCounts.at) {
    for (const t of h.topics) {
      const before = previousCounts.topics[t.topic];
      if (before !== undefined) rates[t.topic] = (t.consumed - before) / ((at - previousCounts.at) / 1000);
    }
  }
  previousCounts = { at, topics: Object.fromEntries(h.topics.map((t) => [t.topic, t.consumed])) };
  document.querySelector("#topics tbody").replaceChildren(...h.topics.map((t) => el("tr", {},
    el("td", { text: t.topic }),
    el("td", { class: "num", text: String(t.consumed) }),
    el("td", { class: "num", text: String(t.stored) }),
    el("td", { class: "num", text: String(t.rejected) }),
    el("td", { class: "num", text: rates[t.topic] === undefined ? "…" : rates[t.topic].toFixed(1) }),
    el("td", { class: "num", text: lagByTopic[t.topic] === undefined ? "-" : String(lagByTopic[t.topic]) }))));
  document.querySelector("#lag tbody").replaceChildren(...(h.lag || []).map((l) => el("tr", {},
    el("td", { text: `${l.topic}/${l.partition}` }), el("td", { class: "num", text: String(l.lag) }))));

  const totalLag = (h.lag || []).reduce((a, l) => a + l.lag, 0);
  const facts = [
    ["consumer lag 积压", h.lag_error ? "unknown: " + h.lag_error : !(h.lag || []).length ? "no partition measured yet" :
      `${totalLag} messages on ${h.lag.length} partitions (measured ${ago(h.lag_measured_at)})`],
    ["last ClickHouse write 最近写入", ago(h.last_clickhouse_write) + (h.last_clickhouse_write_error ? " — failing: " + h.last_clickhouse_write_error : "")],
    ["dead letters 死信", h.dead_letters === undefined ? "unknown" : `${h.dead_letters} in total, ${h.dead_letters_24h} in 24 h`],
    ["last daily run 日批", h.daily_run ? `${ago(h.daily_run.at)}, ${(h.daily_run.duration_ns / 1e9).toFixed(1)} s, ` +
      (h.daily_run.error ? "FAILED: " + h.daily_run.error : `${h.daily_run.warnings} warnings`) : "none in this process"],
    ["newest daily warning 最新日批预警", h.latest_daily_warning ? fmtTime(h.latest_daily_warning) : "none"],
  ];
  document.getElementById("health-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
}

// ---- start ----

async function start() {
  for (const a of ["metrics-link", "readyz-link"]) {
    const e = document.getElementById(a);
    e.href = url(e.getAttribute("href"));
  }
  try {
    const list = await getJSON("api/signals");
    const sel = document.querySelector("select[name=signal]");
    list.forEach((s, i) => {
      signals[s.code] = { zh: s.zh, en: s.en, color: PALETTE[i % PALETTE.length] };
      sel.append(el("option", { value: s.code, text: `${s.zh} · ${s.en}` }));
    });
  } catch (e) { console.warn(e); }
  const form = document.getElementById("filters");
  form.addEventListener("change", (e) => { if (e.target.tagName === "SELECT") connect(); });
  form.addEventListener("input", debounce(connect, 500));
  form.addEventListener("reset", () => setTimeout(connect, 0));
  form.addEventListener("submit", (e) => { e.preventDefault(); connect(); });
  document.getElementById("ranges").addEventListener("click", (e) => {
    const b = e.target.closest("button");
    if (!b) return;
    chartRange = b.dataset.range;
    for (const x of document.querySelectorAll("#ranges button")) x.classList.toggle("on", x === b);
    drawChart();
  });
  connect();
  drawChart(); loadTasks(); loadHealth();
  setInterval(drawChart, 30000);
  setInterval(loadTasks, 15000);
  setInterval(loadHealth, 5000);
  const tick = () => { document.getElementById("clock").textContent = fmtTime(new Date()); };
  tick();
  setInterval(tick, 1000);
}

function debounce(fn, ms) {
  let t;
  return (e) => {
    if (e && e.target && e.target.tagName === "SELECT") return; // handled by change
    clearTimeout(t); t = setTimeout(fn, ms);
  };
}

start();

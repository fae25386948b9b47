// The manager workbench pages: subscriber 360 and the manager scorecard.
// Plain JavaScript and SVG drawn here: nothing is loaded from elsewhere.
"use strict";

const params = new URLSearchParams(location.search);
const token = params.get("token");

function url(path, extra) {
  const u = new URL(path, location.href);
  if (token) u.searchParams.set("token", token);
  for (const [k, v] of Object.entries(extra || {})) if (v) u.searchParams.set(k, v);
  return u;
}

async function api(path, extra) {
  const r = await fetch(url(path, extra), { cache: "no-store" });
  const body = await r.json().catch(() => ({ error: r.status + " " + r.statusText }));
  if (!r.ok) throw new Error(body.error || r.status + " " + r.statusText);
  return body;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
}

const tz = document.querySelector('meta[name="churnwatch-timezone"]').content;
const fmtTime = new Intl.DateTimeFormat("zh-CN", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", hour12: false });
const time = (s) => (s && !s.startsWith("0001") ? fmtTime.format(new Date(s)) : "");
const yuan = (fen) => (fen / 100).toFixed(2);

function showError(msg) {
  const p = document.getElementById("error");
  p.textContent = msg;
  p.hidden = !msg;
}

async function showMe() {
  try {
    const me = await api("api/me");
    document.getElementById("me").textContent = me.name + " (" + me.role + (me.team ? ", " + me.team : "") + ")";
  } catch (e) { /* the page works without it */ }
  for (const a of document.querySelectorAll("a[data-nav]")) a.href = url(a.getAttribute("href")).toString();
}

// ---- subscriber 360 ----

function fact(dl, label, value) {
  dl.append(el("dt", {}, label), el("dd", {}, value == null || value === "" ? "—" : value));
}

function tags(list) {
  const span = el("span");
  for (const t of list || []) span.append(el("span", { class: "tag" }, t));
  return (list || []).length ? span : "";
}

function renderProfile(s) {
  const p = s.profile;
  const dl = document.querySelector("#profile dl");
  dl.replaceChildren();
  fact(dl, "号码 MSISDN", s.msisdn);
  fact(dl, "姓名 Name", p.name);
  fact(dl, "等级 Tier", p.tier + (p.profile_tier ? " (CRM)" : p.bill_avg_fen ? " (from bills, avg " + yuan(p.bill_avg_fen) + " 元)" : ""));
  fact(dl, "状态 Status", p.status);
  fact(dl, "区域 Region", p.region);
  fact(dl, "客户经理 Account manager", p.account_manager);
  fact(dl, "电话经理 Phone manager", p.phone_manager);
  fact(dl, "生日 Birthday", p.birthday);
  fact(dl, "入网 Joined", p.join_date);
  fact(dl, "网龄 Network age", p.network_age_months == null ? "" : p.network_age_months + " months 个月");
  fact(dl, "活动到期 Promotion ends", p.promo_end);
  fact(dl, "集团 Group", p.group_name || p.group_id ? [p.group_name, p.group_id && "(" + p.group_id + ")", p.group_level && "level " + p.group_level].filter(Boolean).join(" ") : "");
  fact(dl, "兴趣 Interests", tags(p.interests));
  fact(dl, "粘性产品 Products", tags(p.products));
  document.getElementById("score-now").textContent = "评分 score " + s.score_now;
}

function rows(tbody, list, cells) {
  tbody.replaceChildren();
  for (const x of list) tbody.append(el("tr", {}, ...cells(x).map(([v, cls]) => el("td", cls ? { class: cls } : {}, v))));
  if (!list.length) tbody.append(el("tr", {}, el("td", { colspan: 9, class: "muted" }, "none 无")));
}

function renderMoney(s) {
  rows(document.querySelector("#bills tbody"), s.bills, (b) => [[b.month], [yuan(b.amount_fen), "num"]]);
  rows(document.querySelector("#payments tbody"), s.payments, (p) => [[time(p.ts)], [yuan(p.amount_fen), "num"], [p.channel]]);
  rows(document.querySelector("#tiers tbody"), s.tier_history, (t) => [[t.month], [t.tier], [yuan(t.bill_avg_fen), "num"], [t.status]]);
}

// usageChart draws calls (bars), minutes (line), off-net share (dashed line,
// right axis 0-100%) and hotline calls (red dots) per day.
function usageChart(days) {
  const W = 1200, H = 240, L = 40, R = 40, T = 10, B = 28;
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img", "aria-label": "daily usage" });
  const n = days.length, step = (W - L - R) / n;
  const maxCalls = Math.max(1, ...days.map((d) => d.calls + d.hotline_calls));
  const maxMin = Math.max(1, ...days.map((d) => d.minutes));
  const y = (v, max) => H - B - (v / max) * (H - T - B);
  s.append(svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
  s.append(svg("text", { x: 2, y: T + 8 }, maxCalls + " calls"), svg("text", { x: W - R + 4, y: T + 8 }, "100%"));
  let minutes = "", share = "";
  days.forEach((d, i) => {
    const x = L + i * step;
    s.append(svg("rect", { class: "calls", x: x + 1, y: y(d.calls, maxCalls), width: Math.max(1, step - 2),
      height: H - B - y(d.calls, maxCalls), fill: "#9db7e0" }, null));
    if (d.hotline_calls > 0) s.append(svg("circle", { class: "hotline", cx: x + step / 2, cy: y(d.hotline_calls, maxCalls), r: 4, fill: "#a50e0e" }));
    minutes += (i ? " L" : "M") + (x + step / 2).toFixed(1) + " " + y(d.minutes, maxMin).toFixed(1);
    share += (i ? " L" : "M") + (x + step / 2).toFixed(1) + " " + y(d.offnet_share, 1).toFixed(1);
    if (i % 10 === 0 || i === n - 1) s.append(svg("text", { x: x, y: H - 10 }, d.day.slice(5)));
  });
  s.append(svg("path", { class: "minutes", d: minutes, fill: "none", stroke: "#1f5fbf", "stroke-width": 2 }));
  s.append(svg("path", { class: "offnet", d: share, fill: "none", stroke: "#c2410c", "stroke-width": 1.5, "stroke-dasharray": "4 3" }));
  s.append(svg("text", { x: 2, y: T + 22 }, Math.round(maxMin) + " min"));
  return s;
}

function scoreChart(points, now, scoreNow) {
  const W = 600, H = 160, L = 30, R = 10, T = 10, B = 24;
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img", "aria-label": "churn score" });
  const pts = points.map((p) => [new Date(p.at).getTime(), p.score]).concat([[new Date(now).getTime(), scoreNow]]);
  const t0 = pts[0][0], t1 = Math.max(pts[pts.length - 1][0], t0 + 1);
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R), y = (v) => H - B - (v / 100) * (H - T - B);
  s.append(svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }), svg("text", { x: 2, y: T + 8 }, "100"),
    svg("text", { x: 2, y: H - B }, "0"));
  s.append(svg("path", { class: "score-line", d: pts.map((p, i) => (i ? "L" : "M") + x(p[0]).toFixed(1) + " " + y(p[1]).toFixed(1)).join(" "),
    fill: "none", stroke: "#a50e0e", "stroke-width": 2 }));
  for (const p of pts) s.append(svg("circle", { cx: x(p[0]), cy: y(p[1]), r: 3, fill: "#a50e0e" }));
  s.append(svg("text", { x: L, y: H - 6 }, time(new Date(t0).toISOString())), svg("text", { x: W - R - 90, y: H - 6 }, time(now)));
  return s;
}

function renderWarnings(s) {
  rows(document.querySelector("#sub-warnings tbody"), s.warnings.slice().reverse(), (w) => [
    [time(w.detected_at)], [w.severity, "sev " + w.severity], [w.signal_zh + " " + w.signal_en], [w.score, "num"], [w.evidence, "evidence"]]);
}

function renderTasks(s) {
  const box = document.getElementById("sub-tasks");
  box.replaceChildren();
  if (!s.tasks.length) box.append(el("p", { class: "muted" }, "no task 无任务"));
  for (const t of s.tasks.slice().reverse()) {
    const tbody = el("tbody");
    rows(tbody, t.versions, (v) => [[v.version, "num"], [time(v.updated_at)], [v.status], [v.assignee + " (" + v.assignee_role + ")"],
      [v.updated_by], [v.note, "note"], [v.cause.startsWith("update|") ? "ticketing" : v.cause === "escalation" ? "escalation 升级" : "warning 预警"]]);
    box.append(el("div", { class: "task", "data-task": t.task_id },
      el("h3", {}, t.status + " · " + t.assignee + " · created " + time(t.created_at) + " · due " + time(t.due_at)),
      el("p", { class: "muted" }, t.summary),
      el("table", {}, el("thead", {}, el("tr", {}, ...["v", "时间 When", "状态 Status", "处理人 Assignee", "记录人 By", "走访记录 Note", "原因 Cause"].map((h) => el("th", {}, h)))), tbody)));
  }
}

async function lookUp(msisdn) {
  for (const id of ["profile", "money", "usage", "score", "warnings-panel", "tasks-panel"]) document.getElementById(id).hidden = true;
  if (!msisdn) return;
  try {
    const s = await api("api/subscriber", { msisdn });
    showError("");
    renderProfile(s);
    renderMoney(s);
    document.getElementById("usage-chart").replaceChildren(usageChart(s.usage));
    document.getElementById("score-chart").replaceChildren(scoreChart(s.score, s.as_of, s.score_now));
    renderWarnings(s);
    renderTasks(s);
    for (const id of ["profile", "money", "usage", "score", "warnings-panel", "tasks-panel"]) document.getElementById(id).hidden = false;
    document.body.dataset.loaded = s.msisdn;
  } catch (e) {
    showError(e.message);
    document.body.dataset.loaded = "error";
  }
}

// ---- scorecard ----

async function showScorecard(month) {
  try {
    const sc = await api("api/scorecard", { month });
    showError("");
    document.querySelector("#month-form input").value = sc.month;
    document.getElementById("csv").href = url("api/scorecard", { month: sc.month, format: "csv" }).toString();
    const p = sc.points;
    document.getElementById("scheme").textContent = `+${p.ContactedInTime} per task contacted in time, +${p.RetainedHighValue} per retained high-value subscriber, ${p.Escalation} per escalation`;
    const tbody = document.querySelector("#scorecard tbody");
    rows(tbody, sc.rows, (r) => [[r.region], [r.team], [r.rank, "num"], [r.manager], [r.points, "num"], [r.tasks_received, "num"],
      [r.contacted_in_time, "num"], [r.escalated, "num"], [r.retained, "num"], [r.retained_high_value, "num"], [r.lost, "num"],
      [r.median_response_seconds == null ? "—" : (r.median_response_seconds / 3600).toFixed(1), "num"]]);
    document.body.dataset.loaded = sc.month;
  } catch (e) {
    showError(e.message);
    document.body.dataset.loaded = "error";
  }
}

// showOpenTasks lists the open tasks the user sees: their own (a manager),
// their team's (a supervisor), every one (an admin); overdue ones marked.
async function showOpenTasks() {
  try {
    const [me, list] = await Promise.all([api("api/me"), api("api/tasks/list", { status: "open" })]);
    const scope = me.role === "admin" ? "all 全部" : me.role === "supervisor" ? "team 团队 " + me.team : "yours 我的";
    document.getElementById("open-scope").textContent = scope + " · " + list.length;
    rows(document.querySelector("#open-tasks tbody"), list, (t) => [[time(t.due_at)],
      [t.overdue ? t.status + " · overdue 超时" : t.status, t.overdue ? "sev critical" : ""], [t.assignee],
      [el("a", { href: url("subscriber", { msisdn: t.msisdn }).toString() }, t.msisdn)], [t.tier], [t.region], [t.score, "num"], [t.summary]]);
    document.body.dataset.tasks = "loaded";
  } catch (e) {
    showError(e.message);
    document.body.dataset.tasks = "error";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  showMe();
  if (document.body.id === "subscriber-page") {
    const form = document.getElementById("lookup");
    form.msisdn.value = params.get("msisdn") || "";
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const u = url("subscriber", { msisdn: form.msisdn.value.trim() });
      history.replaceState(null, "", u);
      lookUp(form.msisdn.value.trim());
    });
    lookUp(params.get("msisdn"));
  } else {
    const form = document.getElementById("month-form");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      showScorecard(form.month.value);
    });
    showScorecard(params.get("month"));
    showOpenTasks();
  }
});

// churnwatch signal outcomes: the signal_outcomes view from /api/outcomes,
// one row per signal and rule version. Every text is set with textContent.
"use strict";

const token = new URLSearchParams(location.search).get("token");

function url(path) {
  const u = new URL(path, location.href);
  if (token) u.searchParams.set("token", token);
  return u.toString();
}

function pct(x) { return x === null || x === undefined ? "–" : (100 * x).toFixed(1) + "%"; }
function num(x, d) { return x === null || x === undefined ? "–" : x.toFixed(d); }

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

async function load() {
  const err = document.getElementById("error");
  try {
    const r = await fetch(url("api/outcomes"), { cache: "no-store" });
    if (!r.ok) throw new Error("api/outcomes: HTTP " + r.status);
    const data = await r.json();
    const v = document.getElementById("version");
    v.textContent = "rules " + (data.rule_version || "?");
    v.dataset.state = data.rule_version ? "ok" : "unknown";
    const body = document.querySelector("#outcomes tbody");
    body.replaceChildren();
    for (const o of data.signals) {
      const tr = document.createElement("tr");
      const current = o.rule_version === data.rule_version ? "● " : "";
      tr.append(cell(o.signal), cell(current + (o.rule_version || "(before versions)")),
        cell(String(o.warnings), "num"), cell(String(o.subscribers), "num"),
        cell(o.churned_30d + " / " + o.churned_60d + " / " + o.churned_90d, "num"),
        cell(pct(o.precision_90d), "num"), cell(pct(o.base_rate), "num"), cell(num(o.lift_90d, 2), "num"),
        cell(pct(o.recall_90d), "num"), cell(num(o.median_lead_days, 1), "num"),
        cell(o.with_task_kept + " of " + o.with_task + " (" + pct(o.retention_with_task) + ")", "num"),
        cell(o.without_task_kept + " of " + o.without_task + " (" + pct(o.retention_without_task) + ")", "num"),
        cell(o.tasks_retained + " / " + o.tasks_lost, "num"));
      body.append(tr);
    }
    document.getElementById("empty").hidden = data.signals.length > 0;
    for (const a of document.querySelectorAll("a[data-nav]")) a.href = url(a.getAttribute("href"));
    err.hidden = true;
  } catch (e) {
    err.textContent = "could not load the outcomes: " + e.message;
    err.hidden = false;
  }
}

load();
setInterval(load, 60000);

// chime's status page, its view helpers: elements, times (the viewer's zone, UTC on hover, "in
// 4 min"), outcomes (a mark and a word each, so nothing depends on colour), durations, and the
// 24-hour strip of a job's runs. page.js fetches and places; this file only builds elements.
"use strict";

const MARK = { success: "✓", failure: "✗", timeout: "⏱", lease_lost: "⚠", stopped: "■", abandoned: "?", running: "▶" };
const TONE = { success: "ok", failure: "bad", timeout: "bad", lease_lost: "bad", abandoned: "bad", stopped: "warn" };
const WORDS = { lease_lost: "lease lost", store_unavailable: "store unavailable" };
// Outcomes from worst to best: a strip slot shows the worst of its runs.
const WORST = ["failure", "timeout", "lease_lost", "abandoned", "stopped", "running", "success"];
const BAD = ["failure", "timeout", "lease_lost", "abandoned"];
const QUARTER = 15 * 60 * 1000;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) node.append(c);
  }
  return node;
}

function words(s) {
  return WORDS[s] || String(s).replace(/_/g, " ");
}

function relative(ms) {
  const s = Math.round(Math.abs(ms) / 1000);
  const text = s < 60 ? `${s} s` : s < 3600 ? `${Math.round(s / 60)} min` : s < 172800 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86400)} d`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

// A time in the viewer's zone, with UTC on hover and the relative time beside it.
function when(value, withRelative = true) {
  if (value === null || value === undefined) return el("span", { class: "muted", text: "—" });
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return el("span", { text: String(value) });
  const utc = d.toISOString().replace(".000Z", "Z");
  // Today's times without the date: the relative time beside them says the rest.
  const today = d.toDateString() === new Date().toDateString();
  const t = el("time", { datetime: utc, title: `UTC ${utc}`, text: today ? d.toLocaleTimeString() : d.toLocaleString() });
  if (!withRelative) return t;
  return el("span", {}, t, el("span", { class: "muted", text: ` (${relative(d.getTime() - Date.now())})` }));
}

function outcome(o) {
  if (!o) return el("span", { class: "muted", text: "never ran" });
  return el("span", { class: TONE[o] || "", "data-outcome": o, text: `${MARK[o] || "•"} ${words(o)}` });
}

function duration(ms) {
  if (ms === null || ms === undefined) return "";
  return ms < 1000 ? `${ms} ms` : ms < 120000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 60000)} min`;
}

// The slot (15 minutes) the strip ends with: the one now is in.
function lastQuarter() {
  return Math.floor(Date.now() / QUARTER) * QUARTER;
}

// 96 slots of 15 minutes, oldest first; each titled with its runs and shaded by its worst outcome
// (failures striped, timeouts and lost leases dotted, successes solid, no runs empty).
function strip(timeline, end) {
  const start = end - 95 * QUARTER;
  const quarters = new Map();
  for (const b of timeline.buckets) {
    if (b.start_ms < start) continue;
    const q = quarters.get(b.start_ms) || {};
    q[b.outcome] = (q[b.outcome] || 0) + b.count;
    quarters.set(b.start_ms, q);
  }
  const cells = [];
  let runs = 0;
  let bad = 0;
  for (let at = start; at <= end; at += QUARTER) {
    const q = quarters.get(at) || {};
    const worst = WORST.find((o) => q[o]) || "none";
    const parts = Object.entries(q).map(([o, n]) => `${n} ${words(o)}`);
    const from = new Date(at);
    const label = `${from.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}: ${parts.length ? parts.join(", ") : "no runs"}`;
    runs += Object.values(q).reduce((a, n) => a + n, 0);
    bad += BAD.reduce((a, o) => a + (q[o] || 0), 0);
    cells.push(el("span", { class: worst, title: label }));
  }
  const summary = `Last 24 hours, in 15-minute slots: ${runs} runs, ${bad} failed`;
  return el("div", {},
    el("div", { class: "strip", role: "img", "aria-label": summary, title: summary }, cells),
    el("div", { class: "legend muted" }, summary, ".",
      el("span", { class: "key success" }), "success",
      el("span", { class: "key failure" }), "failure (striped)",
      el("span", { class: "key timeout" }), "timeout, lost lease, stopped (dotted)",
      el("span", { class: "key" }), "no runs"),
  );
}

// A job's recent runs: tick, fence, replica, trigger, outcome, duration, the tail of its output.
function runsTable(runs) {
  if (!runs.length) return el("p", { class: "muted", text: "No runs yet." });
  const head = el("tr", {}, ["Tick", "Fence", "Replica", "Trigger", "Outcome", "Duration", "Output (tail)"].map((h) => el("th", { scope: "col", text: h })));
  const lines = runs.map((r) => el("tr", { "data-run": r.run_id },
    el("td", {}, when(r.tick, false)),
    el("td", { class: "num", text: String(r.fence) }),
    el("td", {}, el("code", { text: r.replica })),
    el("td", { text: r.trigger }),
    el("td", {}, outcome(r.outcome), r.error ? el("div", { class: "muted", text: r.error }) : ""),
    el("td", { class: "num", text: duration(r.duration_ms) }),
    el("td", {}, r.output ? el("pre", { text: r.output.slice(-600) }) : el("span", { class: "muted", text: "—" })),
  ));
  return el("div", { class: "scroll" }, el("table", { class: "runs" }, el("thead", {}, head), el("tbody", {}, lines)));
}

// A durable timer in the "next due" or "failed" list.
function timerItem(t) {
  return el("li", { "data-timer": t.key },
    el("code", { text: t.key }), ` · ${t.kind} · due `, when(t.due),
    t.attempt ? ` · attempt ${t.attempt}` : "",
    t.error ? el("div", { class: t.state === "failed" ? "bad" : "muted", text: t.error }) : "");
}

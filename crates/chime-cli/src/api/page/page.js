// chime's status page: reads the daemon's own API every 2 s and updates the page in place (rows
// are kept by job name, so focus and open panels survive a refresh). Changes (run now, pause,
// resume) send the bearer token typed into the page; without CHIME_TOKEN on the daemon the page
// shows no buttons at all.
"use strict";

const $ = (id) => document.getElementById(id);
const page = {
  writable: false,
  token: sessionStorage.getItem("chime-token") || "",
  open: new Set(),
  rows: new Map(),
};
const MARK = { success: "✓", failure: "✗", timeout: "⏱", lease_lost: "⚠", stopped: "■", abandoned: "?", running: "▶" };
const TONE = { success: "ok", failure: "bad", timeout: "bad", lease_lost: "bad", abandoned: "bad", stopped: "warn" };
const WORDS = { lease_lost: "lease lost", store_unavailable: "store unavailable" };
const WORST = ["failure", "timeout", "lease_lost", "abandoned", "stopped", "running", "success"];
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
  const d = typeof value === "number" ? new Date(value) : new Date(value);
  if (Number.isNaN(d.getTime())) return el("span", { text: String(value) });
  const utc = d.toISOString().replace(".000Z", "Z");
  const t = el("time", { datetime: utc, title: `UTC ${utc}`, text: d.toLocaleString() });
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

function say(text) {
  $("message").textContent = text || "";
}

async function get(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

async function post(path) {
  if (!page.token) {
    say("Enter the token (CHIME_TOKEN) first.");
    $("token").focus();
    return false;
  }
  const r = await fetch(path, { method: "POST", headers: { Authorization: `Bearer ${page.token}` } });
  if (r.ok) {
    say("");
    return true;
  }
  let why = `HTTP ${r.status}`;
  try { why = (await r.json()).error || why; } catch (_) { /* not JSON */ }
  say(`Refused: ${why}`);
  return false;
}

function renderStatus(status) {
  page.writable = Boolean(status.writable);
  $("replica").textContent = `· replica ${status.replica} · v${status.version}`;
  const store = status.store;
  $("health").replaceChildren(
    el("span", { class: store.up ? "ok" : "bad", text: store.up ? "✓ store up" : "✗ store unreachable" }),
    ` · ${store.backend} · ${status.jobs} jobs · ${status.running_here} running here`,
    status.stopping ? el("span", { class: "warn", text: " · stopping" }) : "",
  );
  $("store").replaceChildren(
    "Store: ", el("code", { text: store.url }), " ",
    el("span", { class: store.up ? "ok" : "bad", text: store.up ? "✓ answering" : "✗ not answering" }),
  );
  $("auth").hidden = !page.writable;
  $("mode").textContent = page.writable
    ? (page.token ? "Changes use the token entered in this tab." : "Changes (run now, pause, resume) need the token.")
    : "Read-only: the daemon was started without CHIME_TOKEN.";
  const t = status.timers || {};
  if (!t.available) {
    $("timers-summary").textContent = `Unavailable${t.error ? `: ${t.error}` : ""}`;
  } else {
    $("timers-summary").replaceChildren(
      `${t.pending}${t.pending_at_least ? "+" : ""} pending · ${t.running} running · `,
      el("span", { class: t.failed ? "bad" : "", text: `${t.failed} failed` }),
      " · next due ", when(t.next_due),
    );
  }
}

function jobRow(name) {
  let row = page.rows.get(name);
  if (row) return row;
  const tr = el("tr", { "data-job": name });
  const cells = {};
  const labels = { name: "Job", schedule: "Schedule", next: "Next run", last: "Last run", replica: "Replica", missed: "Missed", state: "State", actions: "Actions" };
  for (const field of Object.keys(labels)) {
    cells[field] = el(field === "name" ? "th" : "td", { "data-field": field, "data-label": labels[field], scope: field === "name" ? "row" : null });
    if (field === "replica") cells[field].classList.add("wide");
    tr.append(cells[field]);
  }
  const more = el("tr", { class: "more", hidden: true, "data-more": name });
  const panel = el("td", { colspan: "8" });
  more.append(panel);
  row = { tr, more, cells, panel };
  page.rows.set(name, row);
  return row;
}

function renderJobs(list, holders) {
  const body = $("jobs").tBodies[0];
  const filter = $("filter").value.trim().toLowerCase();
  const seen = new Set();
  let shown = 0;
  for (const job of list.jobs) {
    seen.add(job.name);
    const row = jobRow(job.name);
    const c = row.cells;
    const last = job.last_run;
    const missed = job.missed || { total: 0 };
    const failing = last && ["failure", "timeout", "lease_lost", "abandoned"].includes(last.outcome);
    row.tr.classList.toggle("problem", Boolean(failing || missed.total));
    c.name.replaceChildren(
      el("span", { text: job.name }),
      el("div", { class: "muted", text: `${job.kind} · ${job.scope} · ${job.source}` }),
    );
    c.schedule.replaceChildren(el("code", { text: job.schedule }), el("div", { class: "muted", text: job.timezone }));
    c.next.replaceChildren(job.paused ? el("span", { class: "warn", text: "paused" }) : when(job.next_run));
    c.last.replaceChildren(
      outcome(last && last.outcome),
      last ? el("div", {}, when(last.started_ms), last.duration_ms !== null && last.duration_ms !== undefined ? ` · ${duration(last.duration_ms)}` : "") : "",
    );
    c.replica.replaceChildren(last ? el("code", { text: last.replica }) : "");
    c.missed.replaceChildren(
      missed.total
        ? el("span", { class: "warn", text: `⚠ ${missed.total} missed` })
        : el("span", { class: "muted", text: "none" }),
      missed.last ? el("div", { class: "muted" }, `last: ${words(missed.last.reason)}, tick `, when(missed.last.tick, false)) : "",
    );
    c.state.replaceChildren(
      job.paused ? el("span", { class: "warn", text: "⏸ paused" }) : el("span", { text: "active" }),
      (holders.get(job.name) || []).map((h) => el("div", {}, "▶ running on ", el("code", { text: h }))),
    );
    const open = page.open.has(job.name);
    const buttons = [el("button", { type: "button", "data-action": "runs", "aria-expanded": String(open), text: open ? "Hide runs" : "Runs" })];
    if (page.writable) {
      buttons.push(el("button", { type: "button", "data-action": "run", text: "Run now" }));
      buttons.push(el("button", { type: "button", "data-action": job.paused ? "resume" : "pause", text: job.paused ? "Resume" : "Pause" }));
    }
    const focused = document.activeElement && row.tr.contains(document.activeElement) ? document.activeElement.dataset.action : null;
    c.actions.replaceChildren(...buttons);
    if (focused) {
      const again = c.actions.querySelector(`[data-action="${focused}"]`);
      if (again) again.focus();
    }
    const visible = !filter || job.name.toLowerCase().includes(filter);
    row.tr.hidden = !visible;
    row.more.hidden = !visible || !open;
    if (visible) shown += 1;
    body.append(row.tr, row.more);
  }
  for (const [name, row] of page.rows) {
    if (!seen.has(name)) {
      row.tr.remove();
      row.more.remove();
      page.rows.delete(name);
      page.open.delete(name);
    }
  }
  $("jobs-count").textContent = filter ? `(${shown} of ${list.jobs.length})` : `(${list.jobs.length})`;
}

function strip(timeline) {
  const end = Math.floor(Date.now() / QUARTER) * QUARTER;
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
    bad += (q.failure || 0) + (q.timeout || 0) + (q.lease_lost || 0) + (q.abandoned || 0);
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

async function renderMore(name) {
  const row = page.rows.get(name);
  if (!row) return;
  const path = `/v1/jobs/${encodeURIComponent(name)}`;
  const [runs, timeline] = await Promise.all([get(`${path}/runs?limit=10`), get(`${path}/timeline`)]);
  const head = el("tr", {}, ["Tick", "Fence", "Replica", "Trigger", "Outcome", "Duration", "Output (tail)"].map((h) => el("th", { scope: "col", text: h })));
  const lines = runs.runs.map((r) => el("tr", { "data-run": r.run_id },
    el("td", {}, when(r.tick, false)),
    el("td", { class: "num", text: String(r.fence) }),
    el("td", {}, el("code", { text: r.replica })),
    el("td", { text: r.trigger }),
    el("td", {}, outcome(r.outcome), r.error ? el("div", { class: "muted", text: r.error }) : ""),
    el("td", { class: "num", text: duration(r.duration_ms) }),
    el("td", {}, r.output ? el("pre", { text: r.output.slice(-600) }) : el("span", { class: "muted", text: "—" })),
  ));
  row.panel.replaceChildren(
    el("h3", { text: `${name}: the last 24 hours` }),
    strip(timeline),
    el("h3", { text: "Recent runs" }),
    lines.length
      ? el("div", { class: "scroll" }, el("table", { class: "runs" }, el("thead", {}, head), el("tbody", {}, lines)))
      : el("p", { class: "muted", text: "No runs yet." }),
  );
}

function renderReplicas(list) {
  const body = $("replicas").tBodies[0];
  body.replaceChildren(...list.replicas.map((r) => el("tr", { "data-replica": r.id },
    el("th", { scope: "row" }, el("code", { text: r.id }), r.self ? el("span", { class: "muted", text: " (this page's)" }) : ""),
    el("td", {}, el("span", { class: r.alive ? "ok" : "bad", text: r.alive ? "✓ alive " : "✗ silent " }), when(r.heartbeat)),
    el("td", { class: "wide" }, el("code", { text: r.listen })),
    el("td", {}, r.leases.length
      ? el("ul", { class: "plain" }, r.leases.map((l) => el("li", {}, el("code", { text: l.job }), ` fence ${l.fence}, since `, when(l.since))))
      : el("span", { class: "muted", text: "none" })),
  )));
}

function renderTimers(next, failed) {
  const item = (t) => el("li", { "data-timer": t.key },
    el("code", { text: t.key }), ` · ${t.kind} · due `, when(t.due),
    t.attempt ? ` · attempt ${t.attempt}` : "",
    t.error ? el("div", { class: t.state === "failed" ? "bad" : "muted", text: t.error }) : "");
  $("timers-next").replaceChildren(...(next.timers.length ? next.timers.map(item) : [el("li", { class: "muted", text: "none" })]));
  $("timers-failed").replaceChildren(...(failed.timers.length ? failed.timers.map(item) : [el("li", { class: "muted", text: "none" })]));
}

let busy = false;
async function refresh() {
  if (busy) return;
  busy = true;
  try {
    const [status, jobs, replicas, next, failed] = await Promise.all([
      get("/v1/status"), get("/v1/jobs"), get("/v1/replicas"),
      get("/v1/timers?state=pending&limit=5"), get("/v1/timers?state=failed&limit=20"),
    ]);
    renderStatus(status);
    const holders = new Map();
    for (const r of replicas.replicas) {
      for (const l of r.leases) holders.set(l.job, [...(holders.get(l.job) || []), r.id]);
    }
    renderJobs(jobs, holders);
    renderReplicas(replicas);
    renderTimers(next, failed);
    await Promise.all([...page.open].map(renderMore));
    $("updated").replaceChildren(when(Date.now(), false));
  } catch (e) {
    $("health").replaceChildren(el("span", { class: "bad", text: `✗ cannot reach the daemon: ${e.message}` }));
  } finally {
    busy = false;
  }
}

$("jobs").addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const name = button.closest("tr").dataset.job;
  const action = button.dataset.action;
  if (action === "runs") {
    if (page.open.has(name)) page.open.delete(name); else page.open.add(name);
  } else {
    button.disabled = true;
    const done = await post(`/v1/jobs/${encodeURIComponent(name)}/${action}`);
    if (done) say("");
  }
  await refresh();
});

$("auth").addEventListener("submit", (event) => {
  event.preventDefault();
  page.token = $("token").value.trim();
  if (page.token) sessionStorage.setItem("chime-token", page.token); else sessionStorage.removeItem("chime-token");
  $("token").value = "";
  say("");
  refresh();
});

$("filter").addEventListener("input", () => refresh());

refresh();
setInterval(refresh, 2000);

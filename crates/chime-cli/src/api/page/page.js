// chime's status page: reads the daemon's own API every 2 s and updates the page in place. Rows
// are kept by job name and moved only when the order changes, and a row's buttons are rebuilt only
// when what they offer changes, so keyboard focus and a click in progress survive a refresh.
// Changes (run now, pause, resume) send the bearer token typed into the page (kept for this tab
// only); without CHIME_TOKEN on the daemon the page shows no buttons at all. view.js builds the
// elements.
"use strict";

const $ = (id) => document.getElementById(id);
const EVERY = 2000;
const page = {
  writable: false,
  token: sessionStorage.getItem("chime-token") || "",
  open: new Set(),
  rows: new Map(),
};

function say(text) {
  $("message").textContent = text || "";
}

async function get(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

function setToken(token) {
  page.token = token;
  if (token) sessionStorage.setItem("chime-token", token); else sessionStorage.removeItem("chime-token");
}

// A change through the API with the token; says why when it is refused.
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
  if (r.status === 401) {
    setToken("");
    say(`Refused: ${why}. Enter the token again.`);
    $("token").focus();
  } else {
    say(`Refused: ${why}`);
  }
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

const LABELS = { name: "Job", schedule: "Schedule", next: "Next run", last: "Last run", missed: "Missed", state: "State", actions: "Actions" };

function jobRow(name) {
  let row = page.rows.get(name);
  if (row) return row;
  const tr = el("tr", { "data-job": name });
  const cells = {};
  for (const [field, label] of Object.entries(LABELS)) {
    cells[field] = el(field === "name" ? "th" : "td", { "data-field": field, "data-label": label, scope: field === "name" ? "row" : null });
    tr.append(cells[field]);
  }
  const more = el("tr", { class: "more", hidden: true, "data-more": name });
  const panel = el("td", { colspan: String(Object.keys(LABELS).length) });
  more.append(panel);
  row = { tr, more, cells, panel, offer: "", shown: "" };
  page.rows.set(name, row);
  return row;
}

// Puts `node` at `index` among `body`'s rows, moving it only when it is elsewhere.
function place(body, node, index) {
  if (body.children[index] !== node) body.insertBefore(node, body.children[index] || null);
}

// The buttons of a job's row, rebuilt only when what they offer changes.
function renderActions(row, job, open) {
  const offer = `${page.writable}/${job.paused}/${open}`;
  if (row.offer === offer) return;
  row.offer = offer;
  const c = row.cells.actions;
  const focused = c.contains(document.activeElement) ? document.activeElement.dataset.action : null;
  const buttons = [el("button", { type: "button", "data-action": "runs", "aria-expanded": String(open), text: open ? "Hide runs" : "Runs" })];
  if (page.writable) {
    buttons.push(el("button", { type: "button", "data-action": "run", text: "Run now" }));
    buttons.push(el("button", { type: "button", "data-action": job.paused ? "resume" : "pause", text: job.paused ? "Resume" : "Pause" }));
  }
  c.replaceChildren(...buttons);
  if (focused) {
    const same = { pause: "resume", resume: "pause" }[focused];
    const again = c.querySelector(`[data-action="${focused}"]`) || c.querySelector(`[data-action="${same}"]`);
    if (again) again.focus();
  }
}

function renderJobs(list, holders) {
  const body = $("jobs").tBodies[0];
  const filter = $("filter").value.trim().toLowerCase();
  const seen = new Set();
  let shown = 0;
  list.jobs.forEach((job, i) => {
    seen.add(job.name);
    const row = jobRow(job.name);
    const c = row.cells;
    const last = job.last_run;
    const missed = job.missed || { total: 0 };
    row.tr.classList.toggle("problem", Boolean((last && BAD.includes(last.outcome)) || missed.total));
    c.name.replaceChildren(
      el("span", { text: job.name }),
      el("div", { class: "muted", text: `${job.kind} · ${job.scope} · ${job.source}` }),
    );
    c.schedule.replaceChildren(el("code", { text: job.schedule }), el("div", { class: "muted", text: job.timezone }));
    c.next.replaceChildren(job.paused ? el("span", { class: "warn", text: "paused" }) : when(job.next_run));
    c.last.replaceChildren(
      outcome(last && last.outcome),
      last ? el("div", {}, when(last.started_ms), last.duration_ms !== null && last.duration_ms !== undefined ? ` · ${duration(last.duration_ms)}` : "") : "",
      last ? el("div", {}, "on ", el("code", { class: "replica", text: last.replica })) : "",
    );
    c.missed.replaceChildren(
      missed.total
        ? el("span", { class: "warn", text: `⚠ ${missed.total} missed` })
        : el("span", { class: "muted", text: "none" }),
      missed.last ? el("div", { class: "muted" }, `last: ${words(missed.last.reason)}, tick `, when(missed.last.tick, false)) : "",
    );
    c.state.replaceChildren(
      job.paused ? el("span", { class: "warn", text: "⏸ paused" }) : el("span", { text: "active" }),
      ...(holders.get(job.name) || []).map((h) => el("div", {}, "▶ running on ", el("code", { text: h }))),
    );
    const open = page.open.has(job.name);
    renderActions(row, job, open);
    const visible = !filter || job.name.toLowerCase().includes(filter);
    row.tr.hidden = !visible;
    row.more.hidden = !visible || !open;
    if (visible) shown += 1;
    place(body, row.tr, 2 * i);
    place(body, row.more, 2 * i + 1);
  });
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

// A job's open panel: its 24-hour strip and recent runs, rebuilt only when they changed.
async function renderMore(name) {
  const row = page.rows.get(name);
  if (!row) return;
  const path = `/v1/jobs/${encodeURIComponent(name)}`;
  const [runs, timeline] = await Promise.all([get(`${path}/runs?limit=10`), get(`${path}/timeline`)]);
  const end = lastQuarter();
  const shown = JSON.stringify([runs.runs, timeline.buckets, end]);
  if (row.shown === shown) return;
  row.shown = shown;
  row.panel.replaceChildren(
    el("h3", { text: `${name}: the last 24 hours` }),
    strip(timeline, end),
    el("h3", { text: "Recent runs" }),
    runsTable(runs.runs),
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
  const none = () => el("li", { class: "muted", text: "none" });
  $("timers-next").replaceChildren(...(next.timers.length ? next.timers.map(timerItem) : [none()]));
  $("timers-failed").replaceChildren(...(failed.timers.length ? failed.timers.map(timerItem) : [none()]));
}

// One refresh at a time; one asked for meanwhile (after a click) runs when it ends.
let busy = false;
let again = false;
async function refresh() {
  if (busy) {
    again = true;
    return;
  }
  busy = true;
  again = false;
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
  if (again) await refresh();
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
    try {
      await post(`/v1/jobs/${encodeURIComponent(name)}/${action}`);
    } finally {
      button.disabled = false;
    }
  }
  await refresh();
});

$("auth").addEventListener("submit", (event) => {
  event.preventDefault();
  setToken($("token").value.trim());
  $("token").value = "";
  say("");
  refresh();
});

$("filter").addEventListener("input", () => refresh());

$("zone").textContent = Intl.DateTimeFormat().resolvedOptions().timeZone || "unknown";
refresh();
setInterval(refresh, EVERY);

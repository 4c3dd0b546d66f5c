//! The status page at `/`, in a real browser (headless chromium through chromedriver): a daemon on a
//! temporary store shows its jobs, their next runs (in the viewer's zone, UTC on hover), a completed
//! run and a job that misses ticks; with a token configured, "Run now" is refused until the right
//! token is typed into the page, then a new run appears without a reload; pause and resume work
//! from the page; without a token the page has no buttons and the API refuses; against three
//! replicas on one store the page shows which replica ran what and which holds a lease.
//! Screenshots (1280 px and phone width) go to `target/tmp/status-page/`. Without chromium the
//! browser tests print `SKIPPED` and pass; the page's files are checked without a browser too.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::browser::{self, Browser};
use common::{Daemon, TOKEN, TempDir, get_json, http};

/// One browser at a time: they are heavy for a 2-core machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Generous: CI runs these on 2 loaded cores.
const WAIT: Duration = Duration::from_secs(30);

/// The viewer's zone in the browser: 5 h 45 min from UTC, so a time shown in it cannot be UTC's.
const ZONE: &str = "Asia/Kathmandu";

fn schedule(dir: &TempDir) -> std::path::PathBuf {
    dir.write(
        "schedule.toml",
        r#"
[store]
url = "sqlite://store.db"
[server]
shutdown_timeout = "2s"
[defaults]
lease = "3s"
[timers]
attempts = 1
[[job]]
name = "heartbeat"
schedule = "@every 2s"
command = ["sh", "-c", "echo beat $CHIME_FENCE"]
[[job]]
name = "report"
schedule = "30 2 * * *"
timezone = "Europe/Berlin"
command = "echo report written"
# Runs for 2 s every second: every other tick is missed (overlap).
[[job]]
name = "busy"
schedule = "@every 1s"
command = ["sleep", "2"]
[[job]]
name = "long"
schedule = "@yearly"
command = ["sleep", "30"]
kill_grace = "1s"
"#,
    )
}

fn job(field: &str, name: &str) -> String {
    format!("tr[data-job=\"{name}\"] [data-field=\"{field}\"]")
}

#[test]
fn the_page_and_its_files_come_from_the_binary() {
    let dir = TempDir::new("page-files");
    let mut daemon = Daemon::start(&dir, &schedule(&dir), &[]);
    let page = http().get(daemon.url("/")).send().unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(policy.contains("default-src 'self'") && policy.contains("script-src 'self'"), "{policy}");
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().unwrap();
    let mut files = vec![("/", html.clone())];
    for (path, kind) in
        [("/ui/page.css", "text/css"), ("/ui/view.js", "text/javascript"), ("/ui/page.js", "text/javascript")]
    {
        assert!(html.contains(&format!("\"{path}\"")), "the page loads {path}");
        let answer = http().get(daemon.url(path)).send().unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        assert!(answer.headers()["content-type"].to_str().unwrap().starts_with(kind), "{path}");
        files.push((path, answer.text().unwrap()));
    }
    // Nothing from elsewhere: no absolute URL, no protocol-relative one, no inline script.
    for (path, text) in &files {
        for outside in ["http://", "https://", "src=\"//", "href=\"//", "url(", "@import"] {
            assert!(!text.contains(outside), "{path} refers to `{outside}`");
        }
    }
    assert_eq!(
        html.matches("<script").count(),
        html.matches("<script src=\"/ui/").count(),
        "no inline script"
    );
    // The page learns whether it may offer changes from /v1/status.
    assert_eq!(get_json(&daemon.url("/v1/status"))["writable"], true);
    assert_eq!(daemon.stop(WAIT).code(), Some(0));
}

#[test]
fn the_page_shows_jobs_and_runs_a_job_now_with_the_token() {
    if !browser::available("the_page_shows_jobs_and_runs_a_job_now_with_the_token") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let began = Instant::now();
    let dir = TempDir::new("page");
    let mut daemon = Daemon::start(&dir, &schedule(&dir), &[]);
    let browser = Browser::start(1280, 900, ZONE);
    browser.go(&daemon.url("/"));

    // Every job, a completed run with its replica, the next runs in the viewer's zone.
    browser.wait_for(
        WAIT,
        "a completed heartbeat run",
        &format!("{} [data-outcome=\"success\"]", job("last", "heartbeat")),
    );
    assert_eq!(
        browser.texts("#jobs th[data-field=\"name\"] > span"),
        ["busy", "heartbeat", "long", "report"],
        "by name"
    );
    assert_eq!(
        browser.texts(&format!("{} code.replica", job("last", "heartbeat"))),
        [daemon.replica.clone()]
    );
    assert_eq!(browser.texts(&job("last", "report")), ["never ran"]);
    assert!(browser.has(&format!("{} time", job("next", "heartbeat"))), "heartbeat's next run");
    let jobs = get_json(&daemon.url("/v1/jobs"));
    let report = jobs["jobs"].as_array().unwrap().iter().find(|j| j["name"] == "report").unwrap();
    let api_next: jiff::Timestamp = report["next_run"].as_str().unwrap().parse().unwrap();
    let next = browser.js(&format!(
        "const t = document.querySelector('{} time'); return [t.getAttribute('datetime'), t.title, t.textContent, t.parentNode.textContent]",
        job("next", "report")
    ));
    let shown: jiff::Timestamp = next[0].as_str().unwrap().parse().unwrap();
    assert_eq!(shown, api_next, "{next}");
    assert_eq!(next[1].as_str().unwrap(), format!("UTC {api_next}"), "UTC on hover");
    // 02:30 in Berlin is hh:15 in Kathmandu.
    let local = api_next.to_zoned(jiff::tz::TimeZone::get(ZONE).unwrap());
    assert_eq!(local.minute(), 15);
    assert!(next[2].as_str().unwrap().contains(":15:00"), "in the viewer's zone: {next}");
    assert!(next[3].as_str().unwrap().contains("(in "), "relative: {next}");
    // (ICU may name it by its older spelling.)
    let zone = &browser.texts("#zone")[0];
    assert!([ZONE, "Asia/Katmandu"].contains(&zone.as_str()), "the viewer's zone named: {zone}");
    assert!(browser.texts(&job("schedule", "report"))[0].contains("Europe/Berlin"));

    // A job that misses ticks stands out, with the reason.
    browser.wait(
        WAIT,
        "busy's missed ticks",
        &format!(
            "return document.querySelector('{}')?.textContent.includes('overlap') || null",
            job("missed", "busy")
        ),
    );
    assert!(
        browser.has("tr.problem[data-job=\"busy\"]") && !browser.has("tr.problem[data-job=\"heartbeat\"]")
    );
    let running = format!(
        "return document.querySelector('{}').textContent.includes('running on {}') || null",
        job("state", "busy"),
        daemon.replica
    );
    browser.wait(WAIT, "busy shown running on the daemon", &running);

    // Run now: asks for the token, refuses a wrong one; with the right one a run appears, no reload.
    browser.js("window.notReloaded = true; return null");
    let run = "tr[data-job=\"report\"] button[data-action=\"run\"]";
    browser.click(run);
    browser.wait(
        WAIT,
        "the request for the token",
        "return document.getElementById('message').textContent.includes('Enter the token') || null",
    );
    browser.type_into("#token", "not-the-token");
    browser.click("#auth button");
    browser.click(run);
    browser.wait(
        WAIT,
        "the refusal",
        "return document.getElementById('message').textContent.includes('wrong bearer token') || null",
    );
    assert_eq!(get_json(&daemon.url("/v1/jobs/report/runs"))["runs"], serde_json::json!([]), "nothing ran");
    browser.type_into("#token", TOKEN);
    browser.click("#auth button");
    browser.wait_for(WAIT, "the run-now button enabled", &format!("{run}:not([disabled])"));
    browser.click(run);
    browser.wait_for(
        WAIT,
        "the manual run of report",
        &format!("{} [data-outcome=\"success\"]", job("last", "report")),
    );
    assert_eq!(browser.js("return window.notReloaded === true"), true, "the page was not reloaded");
    assert_eq!(browser.texts("#message"), [""]);
    let runs = get_json(&daemon.url("/v1/jobs/report/runs"));
    assert_eq!(runs["runs"][0]["trigger"], "manual", "{runs}");

    // A job's recent runs and its 24-hour strip, with the output's tail.
    browser.click("tr[data-job=\"report\"] button[data-action=\"runs\"]");
    browser.wait_for(WAIT, "the runs of report", "tr[data-more=\"report\"] tr[data-run] pre");
    assert!(browser.texts("tr[data-more=\"report\"] tr[data-run] pre")[0].contains("report written"));
    let row = browser.texts("tr[data-more=\"report\"] tr[data-run] td");
    assert_eq!(row[1], runs["runs"][0]["fence"].to_string(), "the fence: {row:?}");
    assert_eq!(row[2], daemon.replica, "the replica: {row:?}");
    assert!(row[4].contains("success"), "the outcome in words: {row:?}");
    let strip = browser.js("return [document.querySelectorAll('tr[data-more=\"report\"] .strip span').length, document.querySelectorAll('tr[data-more=\"report\"] .strip span.success').length]");
    assert_eq!(
        (strip[0].as_u64(), strip[1].as_u64()),
        (Some(96), Some(1)),
        "96 quarters, one with a success: {strip}"
    );

    // Pause and resume from the page: the API agrees.
    browser.click("tr[data-job=\"heartbeat\"] button[data-action=\"pause\"]");
    browser.wait_for(WAIT, "heartbeat paused", "tr[data-job=\"heartbeat\"] button[data-action=\"resume\"]");
    assert_eq!(get_json(&daemon.url("/v1/jobs/heartbeat"))["paused"], true);
    assert!(browser.texts(&job("state", "heartbeat"))[0].contains("paused"));
    browser.click("tr[data-job=\"heartbeat\"] button[data-action=\"resume\"]");
    browser.wait_for(WAIT, "heartbeat resumed", "tr[data-job=\"heartbeat\"] button[data-action=\"pause\"]");
    assert_eq!(get_json(&daemon.url("/v1/jobs/heartbeat"))["paused"], false);
    // 1280 px: the jobs' table fits, nothing scrolls sideways.
    let overflow = browser.js("const s = document.querySelector('#jobs').parentNode; return [s.scrollWidth, s.clientWidth, document.documentElement.scrollWidth, window.innerWidth]");
    assert!(
        overflow[0].as_i64() <= overflow[1].as_i64() && overflow[2].as_i64() <= overflow[3].as_i64(),
        "wider than 1280 px: {overflow}"
    );
    browser.screenshot(&browser::output("one-daemon-1280.png"));

    // Phone width: nothing wider than the window; jobs as labelled cards.
    browser.size(390, 844);
    browser.wait(
        WAIT,
        "the page to fit a phone",
        "return document.documentElement.scrollWidth <= window.innerWidth + 1 || null",
    );
    let label = browser.js(&format!(
        "return getComputedStyle(document.querySelector('{}'), '::before').content",
        job("next", "report")
    ));
    assert_eq!(label, "\"Next run: \"", "phone width: jobs as labelled cards");
    browser.screenshot(&browser::output("one-daemon-phone.png"));
    drop(browser);
    assert_eq!(daemon.stop(WAIT).code(), Some(0));
    eprintln!("the page with one daemon: {:.1} s", began.elapsed().as_secs_f64());
}

#[test]
fn without_a_token_the_page_is_read_only() {
    if !browser::available("without_a_token_the_page_is_read_only") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let began = Instant::now();
    let dir = TempDir::new("page-read-only");
    let mut daemon = Daemon::start_with(&dir, &schedule(&dir), &[], &[]);
    let browser = Browser::start(1280, 900, ZONE);
    browser.go(&daemon.url("/"));
    browser.wait(WAIT, "the jobs", "return document.querySelectorAll('tr[data-job]').length === 4 || null");
    browser.wait_for(WAIT, "the read-only notice", "#mode:not(:empty)");
    assert_eq!(browser.js("return document.querySelectorAll('button[data-action=\"run\"], button[data-action=\"pause\"], button[data-action=\"resume\"]').length"), 0);
    assert!(browser.has("tr[data-job=\"report\"] button[data-action=\"runs\"]"), "reading stays possible");
    assert_eq!(browser.js("return document.getElementById('auth').hidden"), true);
    assert!(browser.texts("#mode")[0].starts_with("Read-only"));
    // The API refuses what the page would send, whatever the token.
    let status = browser.js("const x = new XMLHttpRequest(); x.open('POST', '/v1/jobs/report/run', false); x.setRequestHeader('Authorization', 'Bearer guess'); x.send(); return x.status");
    assert_eq!(status, 403);
    drop(browser);
    assert_eq!(daemon.stop(WAIT).code(), Some(0));
    eprintln!("the read-only page: {:.1} s", began.elapsed().as_secs_f64());
}

#[test]
fn three_replicas_show_which_ran_what() {
    if !browser::available("three_replicas_show_which_ran_what") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let began = Instant::now();
    let dir = TempDir::new("page-replicas");
    let file = schedule(&dir);
    let mut replicas: Vec<Daemon> = (0..3).map(|_| Daemon::start(&dir, &file, &[])).collect();
    // A manual run of `report` on each replica, one after the other; `long` held by the second.
    for daemon in &replicas {
        let id = common::run_now(daemon, "report");
        common::finished_run(daemon, "report", &id, WAIT);
    }
    common::run_now(&replicas[1], "long");
    // Durable timers: one due in an hour, one that fails at once (no retry: `attempts = 1`).
    for (key, body) in [
        ("cleanup", r#"{"after": "1h", "command": ["echo", "cleaned"]}"#),
        ("broken", r#"{"after": "1ms", "command": ["sh", "-c", "echo disk full; exit 3"]}"#),
    ] {
        let created = http()
            .put(replicas[2].url(&format!("/v1/timers/{key}")))
            .header("Authorization", format!("Bearer {TOKEN}"))
            .body(body)
            .send()
            .unwrap();
        assert_eq!(created.status(), 201, "{key}");
    }
    let browser = Browser::start(1280, 1300, ZONE);
    browser.go(&replicas[0].url("/"));
    browser.wait(
        WAIT,
        "three live replicas",
        "return document.querySelectorAll('#replicas tr[data-replica]').length === 3 || null",
    );
    assert!(
        browser.texts("#replicas tr[data-replica] td:nth-child(2)").iter().all(|t| t.starts_with("✓ alive"))
    );
    let this = browser.texts("#replicas tr[data-replica] th");
    assert_eq!(this.iter().filter(|t| t.ends_with("(this page's)")).count(), 1, "{this:?}");
    assert!(this.contains(&format!("{} (this page's)", replicas[0].replica)), "{this:?}");
    browser.wait_for(WAIT, "the failed timer", "#timers-failed li[data-timer=\"broken\"]");
    assert!(browser.texts("#timers-failed li")[0].contains("disk full"), "its output or error shown");
    assert!(browser.has("#timers-next li[data-timer=\"cleanup\"] time"), "the pending timer, due");
    browser.wait(WAIT, "the timers' counts", "return document.getElementById('timers-summary').textContent.includes('1 pending · 0 running · 1 failed') || null");
    let second = &replicas[1].replica;
    let lease = format!(
        "return document.querySelector('#replicas tr[data-replica=\"{second}\"]')?.textContent.includes('long') || null"
    );
    browser.wait(WAIT, "the lease of long on the second replica", &lease);
    let holder = format!(
        "return document.querySelector('{}').textContent.includes('running on {second}') || null",
        job("state", "long")
    );
    browser.wait(WAIT, "long shown running on the second replica", &holder);
    // The last run of report is the third replica's; its runs name all three.
    assert_eq!(
        browser.texts(&format!("{} code.replica", job("last", "report"))),
        [replicas[2].replica.clone()]
    );
    browser.click("tr[data-job=\"report\"] button[data-action=\"runs\"]");
    browser.wait(
        WAIT,
        "three runs of report",
        "return document.querySelectorAll('tr[data-more=\"report\"] tr[data-run]').length >= 3 || null",
    );
    let ran_on = browser.texts("tr[data-more=\"report\"] tr[data-run] td:nth-child(3)");
    let newest_first: Vec<String> = replicas.iter().rev().map(|d| d.replica.clone()).collect();
    assert_eq!(ran_on, newest_first, "each replica's run, newest first");
    browser.screenshot(&browser::output("three-replicas-1280.png"));
    drop(browser);
    for daemon in &replicas {
        daemon.signal(rustix::process::Signal::TERM);
    }
    for daemon in &mut replicas {
        assert_eq!(daemon.wait(WAIT).code(), Some(0));
    }
    eprintln!("the page with three replicas: {:.1} s", began.elapsed().as_secs_f64());
}

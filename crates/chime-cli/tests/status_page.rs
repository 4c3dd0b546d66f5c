//! The status page at `/`, in a real browser (headless chromium through chromedriver): a daemon on a
//! temporary store with two jobs shows both, their next runs and a completed run; with a token
//! configured, "Run now" (after typing the token) makes a new run appear without a reload; without
//! one the page has no buttons and the API refuses; against three replicas on one store the page
//! shows which replica ran what and which holds a lease. Screenshots (1280 px and phone width) go
//! to `target/tmp/status-page/`.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::browser::{self, Browser};
use common::{Daemon, TOKEN, TempDir, get_json, http};

/// One browser at a time: they are heavy for a 2-core machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const WAIT: Duration = Duration::from_secs(30);

fn schedule(dir: &TempDir) -> std::path::PathBuf {
    dir.write(
        "schedule.toml",
        "[store]\nurl = \"sqlite://store.db\"\n[defaults]\nlease = \"3s\"\n\
         [[job]]\nname = \"heartbeat\"\nschedule = \"@every 2s\"\ncommand = [\"sh\", \"-c\", \"echo beat $CHIME_FENCE\"]\n\
         [[job]]\nname = \"report\"\nschedule = \"30 2 * * *\"\ntimezone = \"Europe/Berlin\"\ncommand = \"echo report written\"\n\
         [[job]]\nname = \"long\"\nschedule = \"@yearly\"\ncommand = [\"sleep\", \"30\"]\nkill_grace = \"1s\"\n",
    )
}

fn rows_of(browser: &Browser, css: &str) -> Vec<String> {
    let script = format!("return [...document.querySelectorAll('{css}')].map(e => e.textContent.trim())");
    browser.js(&script).as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

#[test]
fn the_page_shows_jobs_and_runs_a_job_now_with_the_token() {
    if !browser::available("the_page_shows_jobs_and_runs_a_job_now_with_the_token") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("page");
    let daemon = Daemon::start(&dir, &schedule(&dir), &[]);
    let browser = Browser::start();
    browser.size(1280, 900);
    browser.go(&daemon.url("/"));

    // Both jobs, their next runs (local time, UTC on hover, as the API says), a completed run.
    browser.wait(WAIT, "a completed heartbeat run", "return document.querySelector('tr[data-job=\"heartbeat\"] [data-field=\"last\"] [data-outcome=\"success\"]') !== null");
    let jobs = get_json(&daemon.url("/v1/jobs"));
    let report = jobs["jobs"].as_array().unwrap().iter().find(|j| j["name"] == "report").unwrap();
    let next = browser.js("const t = document.querySelector('tr[data-job=\"report\"] [data-field=\"next\"] time'); return [t.getAttribute('datetime'), t.title, t.textContent]");
    let api_next: jiff::Timestamp = report["next_run"].as_str().unwrap().parse().unwrap();
    let shown: jiff::Timestamp = next[0].as_str().unwrap().parse().unwrap();
    assert_eq!(shown, api_next, "{next}");
    assert!(next[1].as_str().unwrap().starts_with("UTC "), "{next}");
    assert!(!next[2].as_str().unwrap().is_empty());
    assert_eq!(rows_of(&browser, "tr[data-job=\"report\"] [data-field=\"last\"]"), ["never ran"]);
    assert!(rows_of(&browser, "tr[data-job=\"heartbeat\"] [data-field=\"replica\"]")[0].contains(&daemon.replica));

    // Run now: refused without the token typed in; with it, a run appears without a reload.
    browser.js("window.notReloaded = true; return null");
    browser.click("tr[data-job=\"report\"] button[data-action=\"run\"]");
    browser.wait(WAIT, "the request for the token", "return document.getElementById('message').textContent.includes('token') || null");
    browser.type_into("#token", TOKEN);
    browser.click("#auth button");
    browser.wait(WAIT, "the run-now button again", "return document.querySelector('tr[data-job=\"report\"] button[data-action=\"run\"]:not([disabled])') !== null");
    browser.click("tr[data-job=\"report\"] button[data-action=\"run\"]");
    browser.wait(WAIT, "the manual run of report", "return document.querySelector('tr[data-job=\"report\"] [data-field=\"last\"] [data-outcome=\"success\"]') !== null");
    assert_eq!(browser.js("return window.notReloaded === true"), true, "the page was not reloaded");
    let runs = get_json(&daemon.url("/v1/jobs/report/runs"));
    assert_eq!(runs["runs"][0]["trigger"], "manual", "{runs}");

    // A job's recent runs and its 24-hour strip, with the output's tail.
    browser.click("tr[data-job=\"report\"] button[data-action=\"runs\"]");
    browser.wait(WAIT, "the runs of report", "return document.querySelector('tr[data-more=\"report\"] tr[data-run] pre') !== null");
    assert!(rows_of(&browser, "tr[data-more=\"report\"] tr[data-run] pre")[0].contains("report written"));
    let strip = browser.js("return [document.querySelectorAll('tr[data-more=\"report\"] .strip span').length, document.querySelectorAll('tr[data-more=\"report\"] .strip span.success').length]");
    assert_eq!((strip[0].as_u64(), strip[1].as_u64()), (Some(96), Some(1)), "96 quarters, one with a success: {strip}");
    // Pause from the page: the API agrees.
    browser.click("tr[data-job=\"heartbeat\"] button[data-action=\"pause\"]");
    browser.wait(WAIT, "heartbeat paused", "return document.querySelector('tr[data-job=\"heartbeat\"] button[data-action=\"resume\"]') !== null");
    assert_eq!(get_json(&daemon.url("/v1/jobs/heartbeat"))["paused"], true);
    browser.click("tr[data-job=\"heartbeat\"] button[data-action=\"resume\"]");
    browser.wait(WAIT, "heartbeat resumed", "return document.querySelector('tr[data-job=\"heartbeat\"] button[data-action=\"pause\"]') !== null");
    browser.screenshot(&browser::output("one-daemon-1280.png"));

    // Phone width: nothing wider than the window but the tables' own scroll areas.
    browser.size(390, 844);
    let overflow = browser.js("return document.documentElement.scrollWidth - window.innerWidth");
    assert!(overflow.as_i64().unwrap() <= 1, "the page is wider than a phone: {overflow}");
    let label = browser.js("return getComputedStyle(document.querySelector('tr[data-job=\"report\"] [data-field=\"next\"]'), '::before').content");
    assert_eq!(label, "\"Next run: \"", "phone width: jobs as labelled cards");
    browser.screenshot(&browser::output("one-daemon-phone.png"));
}

#[test]
fn without_a_token_the_page_is_read_only() {
    if !browser::available("without_a_token_the_page_is_read_only") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("page-read-only");
    let daemon = Daemon::start_with(&dir, &schedule(&dir), &[], &[]);
    let browser = Browser::start();
    browser.go(&daemon.url("/"));
    browser.wait(WAIT, "the jobs", "return document.querySelectorAll('tr[data-job]').length === 3 || null");
    assert_eq!(browser.js("return document.querySelectorAll('button[data-action=\"run\"], button[data-action=\"pause\"], button[data-action=\"resume\"]').length"), 0);
    assert_eq!(browser.js("return document.getElementById('auth').hidden"), true);
    assert!(rows_of(&browser, "#mode")[0].starts_with("Read-only"));
    // The API refuses what the page would send.
    let status = browser.js("const x = new XMLHttpRequest(); x.open('POST', '/v1/jobs/report/run', false); x.setRequestHeader('Authorization', 'Bearer guess'); x.send(); return x.status");
    assert_eq!(status, 403);
}

#[test]
fn three_replicas_show_which_ran_what() {
    if !browser::available("three_replicas_show_which_ran_what") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("page-replicas");
    let file = schedule(&dir);
    let replicas: Vec<Daemon> = (0..3).map(|_| Daemon::start(&dir, &file, &[])).collect();
    // A manual run of `report` on each replica; `long` held by the second one.
    for daemon in &replicas {
        common::run_now(daemon, "report");
        common::eventually(WAIT, "the manual run to end", || {
            let runs = get_json(&daemon.url("/v1/jobs/report/runs"));
            runs["runs"].as_array().unwrap().iter().all(|r| r["outcome"] != "running").then_some(())
        });
    }
    common::run_now(&replicas[1], "long");
    let browser = Browser::start();
    browser.size(1280, 1500);
    browser.go(&replicas[0].url("/"));
    browser.wait(WAIT, "three live replicas", "return document.querySelectorAll('#replicas tr[data-replica]').length === 3 || null");
    let lease = format!("return document.querySelector('#replicas tr[data-replica=\"{}\"]')?.textContent.includes('long') || null", replicas[1].replica);
    browser.wait(WAIT, "the lease of long on the second replica", &lease);
    browser.click("tr[data-job=\"report\"] button[data-action=\"runs\"]");
    browser.wait(WAIT, "three runs of report", "return document.querySelectorAll('tr[data-more=\"report\"] tr[data-run]').length >= 3 || null");
    let ran_on = rows_of(&browser, "tr[data-more=\"report\"] tr[data-run] td:nth-child(3)");
    let holder = format!("return document.querySelector('tr[data-job=\"long\"] [data-field=\"state\"]').textContent.includes('running on {}') || null", replicas[1].replica);
    browser.wait(WAIT, "long shown running on the second replica", &holder);
    for daemon in &replicas {
        assert!(ran_on.iter().any(|r| r == &daemon.replica), "{} ran report: {ran_on:?}", daemon.replica);
    }
    assert!(rows_of(&browser, "#replicas tr[data-replica] td:nth-child(2)").iter().all(|t| t.starts_with("✓ alive")));
    browser.screenshot(&browser::output("three-replicas-1280.png"));
    let _ = http().get(replicas[0].url("/healthz")).send();
}

//! `chime run --crontab FILE`: a supercronic crontab, its jobs named `line-N` or by `# name:`,
//! its environment lines applied, its commands run by the shell, each tick once across replicas.

mod common;

use std::time::Duration;

use common::{Daemon, TempDir, eventually, get_json, lines};

#[test]
fn a_crontab_runs_once_per_tick_across_two_replicas() {
    let dir = TempDir::new("crontab");
    let log = dir.path("runs.log");
    let crontab = dir.write(
        "crontab",
        &format!(
            "# every second (seven fields: seconds first, a year last)\nWHO=crontab\n* * * * * * * echo $WHO $CHIME_JOB $CHIME_TICK >> {log}\n\
             # name: greeter\n*/1 * * * * * * echo greeter $CHIME_JOB $CHIME_TICK >> {log}\n",
            log = log.display()
        ),
    );
    let store = format!("sqlite://{}", dir.path("store.db").display());
    let a = Daemon::start(&dir, &crontab, &["--crontab", "--store", &store]);
    let _b = Daemon::start(&dir, &crontab, &["--crontab", "--store", &store]);
    let jobs = get_json(&a.url("/v1/jobs"));
    let names: Vec<&str> =
        jobs["jobs"].as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["greeter", "line-3"]);
    assert!(jobs["jobs"].as_array().unwrap().iter().all(|j| j["source"] == "crontab"));
    eventually(Duration::from_secs(10), "runs of both jobs", || {
        let runs = lines(&log);
        (runs.iter().filter(|l| l[1] == "line-3").count() >= 3 && runs.iter().any(|l| l[1] == "greeter"))
            .then_some(())
    });
    let runs = lines(&log);
    assert!(
        runs.iter().filter(|l| l[1] == "line-3").all(|l| l[0] == "crontab"),
        "WHO came from the crontab: {runs:?}"
    );
    let mut ticks: Vec<(&str, &str)> = runs.iter().map(|l| (l[1].as_str(), l[2].as_str())).collect();
    let all = ticks.len();
    ticks.sort();
    ticks.dedup();
    assert_eq!(ticks.len(), all, "each tick ran once across the two replicas: {runs:?}");
}

//! `chime check` and `chime run` on valid and invalid files: exit status 2 and `FILE:LINE:COLUMN:
//! message` for every problem, nothing started; the next runs of each job in its own zone.

mod common;

use common::{TempDir, chime};

fn output(args: &[&str]) -> (i32, String, String) {
    let out = chime().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn check_prints_the_next_five_runs_in_each_zone() {
    let dir = TempDir::new("check");
    let file = dir.write(
        "s.toml",
        "[[job]]\nname = \"nightly\"\nschedule = \"30 2 * * *\"\ntimezone = \"Europe/Berlin\"\ncommand = [\"true\"]\n\
         [[job]]\nname = \"often\"\nschedule = \"@every 90s\"\nhttp = { url = \"http://127.0.0.1:1/x\", method = \"POST\" }\n",
    );
    let (code, stdout, stderr) = output(&["check", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("valid, 2 jobs"), "{stdout}");
    assert!(
        stdout.contains("nightly  `30 2 * * *` in Europe/Berlin  (cluster, overlap skip)  true"),
        "{stdout}"
    );
    assert!(
        stdout.contains("often  `@every 90s` in UTC  (cluster, overlap skip)  POST http://127.0.0.1:1/x"),
        "{stdout}"
    );
    let nightly: Vec<&str> = stdout.lines().filter(|l| l.contains(" 02:30:00 CE")).collect();
    assert_eq!(nightly.len(), 5, "{stdout}");
}

#[test]
fn invalid_files_exit_2_with_located_messages_and_start_nothing() {
    let dir = TempDir::new("invalid");
    let file = dir.write(
        "bad.toml",
        "[store]\nurl = \"sqlite://never-created.db\"\n[[job]]\nname = \"a\"\nscheduel = \"* * * * *\"\n",
    );
    let path = file.to_str().unwrap();
    for verb in ["check", "run"] {
        let (code, stdout, stderr) = output(&[verb, path]);
        assert_eq!(code, 2, "{verb}: {stdout}{stderr}");
        assert_eq!(
            stderr,
            format!("{path}:5:1: unknown key `scheduel` in [[job]]; did you mean `schedule`?\n"),
            "{verb}"
        );
    }
    assert!(!dir.path("never-created.db").exists(), "nothing started");

    let file = dir.write(
        "many.toml",
        "[[job]]\nname = \"a\"\nschedule = \"@every 1m\"\ncommand = \"x\"\ntimezone = \"Mars/Olympus\"\n\
         [[job]]\nname = \"b\"\nschedule = \"* * *\"\ncommand = \"x\"\noverlap = \"replase\"\n",
    );
    let (code, _, stderr) = output(&["check", file.to_str().unwrap()]);
    assert_eq!(code, 2);
    let p = file.to_str().unwrap();
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            format!("{p}:5:12: unknown time zone `Mars/Olympus`"),
            format!(
                "{p}:8:12: invalid schedule `* * *`: a cron pattern has 5 fields (minute hour day month weekday) or 6 (seconds first), not 3"
            ),
            format!(
                "{p}:10:11: unknown overlap policy `replase`; did you mean `replace`? (expected one of `skip`, `allow`, `replace`, `queue`)"
            ),
        ]
    );
}

#[test]
fn unreadable_files_and_bad_flags() {
    let dir = TempDir::new("flags");
    let missing = dir.path("missing.toml");
    let (code, _, stderr) = output(&["check", missing.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.starts_with(&format!("{}:1:1: cannot read the file: ", missing.display())), "{stderr}");
    let file = dir.write("ok.toml", "");
    let (code, _, stderr) = output(&["run", file.to_str().unwrap(), "--store", "mysql://db"]);
    assert_eq!(
        (code, stderr.trim()),
        (
            2,
            "--store: unsupported store URL `mysql://db`: use sqlite://FILE, redis://HOST or postgres://HOST/DB"
        )
    );
    let (code, _, stderr) = output(&["run", file.to_str().unwrap(), "--listen", "nowhere"]);
    assert_eq!(
        (code, stderr.trim()),
        (2, "--listen: invalid listen address `nowhere`: expected IP:PORT, e.g. `127.0.0.1:9090`")
    );
    let (code, _, _) = output(&["run", file.to_str().unwrap(), "--log-format", "xml"]);
    assert_eq!(code, 2);
}

#[test]
fn a_crontab_checks_like_supercronic_reads_it() {
    let dir = TempDir::new("crontab-check");
    let file = dir.write("crontab", "# name: greet\n*/5 * * * * echo hello\n61 * * * * echo never\n");
    let (code, _, stderr) = output(&["check", "--crontab", file.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr.trim(),
        format!(
            "{}:3:1: invalid schedule `61 * * * *`: Component error: Number out of bounds.",
            file.display()
        )
    );
    let file = dir.write("crontab2", "# name: greet\n*/5 * * * * echo hello\n@daily date\n");
    let (code, stdout, _) = output(&["check", "--crontab", file.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(stdout.contains("greet  `*/5 * * * *`") && stdout.contains("line-3  `@daily`"), "{stdout}");
}

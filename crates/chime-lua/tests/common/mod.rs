//! Runs chime-lua's own Lua test scripts (`tests/lua/*.lua`) with the built binary, as a real
//! process.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The `chime-lua` binary cargo built for these tests.
pub(crate) fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chime-lua"))
}

pub(crate) fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("lua").join(name)
}

/// Runs a test script; panics with its output unless it exits 0 and prints its closing line.
pub(crate) fn run_script(name: &str) -> String {
    let output = binary().arg(script(name)).output().expect("chime-lua runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stem = name.trim_end_matches(".lua");
    assert!(
        output.status.success() && stdout.contains(&format!("{stem}: ")),
        "{name} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    stdout
}

/// Runs `chime-lua -e chunk`.
pub(crate) fn run_chunk(chunk: &str) -> Output {
    binary().args(["-e", chunk]).output().expect("chime-lua runs")
}

/// Runs a test script with `chime-lua` options before it (and optionally text on its stdin);
/// panics with its output unless it exits 0 and prints its closing line. Returns (stdout, stderr).
pub(crate) fn run_script_with(options: &[&str], name: &str, stdin: Option<&[u8]>) -> (String, String) {
    use std::io::Write;
    let mut child = binary()
        .args(options)
        .arg(script(name))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("chime-lua runs");
    let mut input = child.stdin.take().expect("piped");
    let data = stdin.map(<[u8]>::to_vec);
    let writer = std::thread::spawn(move || {
        if let Some(data) = data {
            let _ = input.write_all(&data);
            // keep it open a little, so the script sees the data before the end of file
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        drop(input);
    });
    let output = child.wait_with_output().expect("chime-lua ends");
    let _ = writer.join();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let stem = name.trim_end_matches(".lua");
    assert!(
        output.status.success() && stdout.contains(&format!("{stem}: ")),
        "{name} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    (stdout, stderr)
}

/// Writes `source` to a fresh file in a temporary directory of this test process.
pub(crate) fn temp_script(name: &str, source: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chime-lua-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, source).unwrap();
    path
}

/// Whether a line has nginx's error-log shape: `YYYY/MM/DD HH:MM:SS [level] PID#0: ...`.
pub(crate) fn nginx_shaped(line: &str, level: &str) -> bool {
    let b = line.as_bytes();
    line.len() > 20
        && b[4] == b'/'
        && b[7] == b'/'
        && b[10] == b' '
        && b[13] == b':'
        && b[16] == b':'
        && line[19..].starts_with(&format!(" [{level}] "))
        && line[19..]
            .split_once("#0: ")
            .is_some_and(|(pid, _)| pid.trim_start_matches(&format!(" [{level}] ")).parse::<u32>().is_ok())
}

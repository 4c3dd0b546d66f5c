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

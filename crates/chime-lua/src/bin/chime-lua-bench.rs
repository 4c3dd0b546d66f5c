//! `chime-lua-bench`: chime-lua's timers against `lua-luv` (libuv from Lua) on the same Lua, each
//! workload in a fresh child process, printed as ratios with the CPU model.
//!
//! ```text
//! cargo run --release -p chime-lua --bin chime-lua-bench [-- --quick] [--luajit PATH] [--luv-cpath PATTERN]
//! ```
//!
//! Workloads (SPEC section 4, chime-lua row): `arm_cancel`, N timers armed then cancelled (CPU per
//! timer); `pending`, N timers pending (resident bytes per timer); `expire`, N timers expiring within
//! 200 ms (CPU per timer). chime-lua runs `chime.after` / `chime.cancel`; luv runs `uv.new_timer`,
//! `timer:start`, `timer:stop` + `timer:close`. The Knot-style workloads (`knot_*`, issue 12) run
//! the same on Knot Resolver's API: `event.after` / `event.cancel` on chime-lua, and on luv what
//! Knot's `event.c` does on libuv (a handle per event kept by id, closed when cancelled or fired). N is 1M (100k with `--quick`). The luv side runs on
//! Debian's `luajit` with Debian's `lua-luv` (its Lua 5.1 build), the chime-lua side on chime-lua's
//! vendored LuaJIT: both LuaJIT 2.1.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

const COMMON: &str = include_str!("../../bench/common.lua");
const CHIME: &str = include_str!("../../bench/chime.lua");
const LUV: &str = include_str!("../../bench/luv.lua");
const KNOT: &str = include_str!("../../bench/knot.lua");
const LUV_KNOT: &str = include_str!("../../bench/luv_knot.lua");

struct Args {
    quick: bool,
    luajit: String,
    luv_cpath: String,
}

fn parse() -> Result<Args, String> {
    let mut args = Args { quick: false, luajit: "luajit".to_string(), luv_cpath: default_luv_cpath() };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--luajit" => args.luajit = it.next().ok_or("--luajit needs a path")?,
            "--luv-cpath" => args.luv_cpath = it.next().ok_or("--luv-cpath needs a pattern")?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// Where Debian's lua-luv puts its Lua 5.1 (LuaJIT) build: `/usr/lib/<triplet>/lua/5.1/luv.so`.
fn default_luv_cpath() -> String {
    let found = std::fs::read_dir("/usr/lib").ok().and_then(|dirs| {
        dirs.flatten().map(|d| d.path().join("lua/5.1")).find(|dir| dir.join("luv.so").exists())
    });
    match found {
        Some(dir) => format!("{}/?.so", dir.display()),
        None => "/usr/lib/x86_64-linux-gnu/lua/5.1/?.so".to_string(),
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string())
}

/// Runs one side of one workload; returns (cpu seconds, bytes).
fn run(mut cmd: Command, script: &str, workload: &str, n: usize) -> Result<(f64, f64), String> {
    let source = format!("BENCH_COMMON = {COMMON:?}\n{script}");
    let mut child = cmd
        .args(["-", workload, &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    child.stdin.take().expect("piped").write_all(source.as_bytes()).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| l.starts_with("result ")).ok_or_else(|| {
        format!("{workload} failed: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr))
    })?;
    let f: Vec<&str> = line.split_whitespace().collect();
    let cpu = f.get(3).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
    let bytes = f.get(4).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
    Ok((cpu, bytes))
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("chime-lua-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let n = if args.quick { 100_000 } else { 1_000_000 };
    let chime_lua = std::env::current_exe()
        .map(|p| p.with_file_name("chime-lua"))
        .unwrap_or_else(|_| PathBuf::from("chime-lua"));
    if !chime_lua.exists() {
        eprintln!(
            "chime-lua-bench: {} is missing: build both binaries first, with \
             `cargo build --release -p chime-lua --bins`",
            chime_lua.display()
        );
        return ExitCode::FAILURE;
    }
    println!("chime-lua vs lua-luv, {n} timers per workload, one child process per figure");
    println!("CPU: {}", cpu_model());
    println!("{:<16} {:>14} {:>14} {:>8}  goal", "workload", "chime-lua", "luv", "ratio");
    let mut failed = false;
    let workloads = [
        ("arm_cancel", "ns/timer"),
        ("pending", "B/timer"),
        ("expire", "ns/timer"),
        ("knot_arm_cancel", "ns/timer"),
        ("knot_pending", "B/timer"),
        ("knot_expire", "ns/timer"),
    ];
    for (workload, unit) in workloads {
        let knot = workload.starts_with("knot_");
        let chime = run(Command::new(&chime_lua), if knot { KNOT } else { CHIME }, workload, n);
        let mut luajit = Command::new(&args.luajit);
        luajit.env("LUA_CPATH", format!("{};;", args.luv_cpath));
        let luv = run(luajit, if knot { LUV_KNOT } else { LUV }, workload, n);
        match (chime, luv) {
            (Ok(c), Ok(l)) => {
                let pick = |(cpu, bytes): (f64, f64)| {
                    if workload.ends_with("pending") { bytes / n as f64 } else { cpu * 1e9 / n as f64 }
                };
                let (c, l) = (pick(c), pick(l));
                // ratio: how many times better chime-lua is (luv / chime-lua: > 1 means chime-lua wins)
                let ratio = l / c;
                let goal = if workload.ends_with("pending") {
                    "less memory (ratio > 1)"
                } else {
                    "at least as fast (ratio >= 1)"
                };
                println!("{workload:<16} {:>9.1} {unit:<4} {:>9.1} {unit:<4} {ratio:>7.2}x  {goal}", c, l);
            }
            (c, l) => {
                failed = true;
                if let Err(e) = c {
                    eprintln!("chime-lua side: {e}");
                }
                if let Err(e) = l {
                    eprintln!("luv side: {e}");
                }
            }
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

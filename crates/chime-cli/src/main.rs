//! The `chime` binary: see the `chime_cli` library.

fn main() -> std::process::ExitCode {
    chime_cli::main(std::env::args_os().collect())
}

//! `chime-lua`: a `lua`/`luajit`-like interpreter whose scheduler is chime.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = match chime_lua::Runtime::builder().exit_process(true).build() {
        Ok(rt) => rt,
        Err(e) => { eprintln!("chime-lua: {e}"); std::process::exit(1) }
    };
    if let Err(e) = rt.exec_file(&args[0], &args[1..]) { eprintln!("chime-lua: {e}"); std::process::exit(1) }
}

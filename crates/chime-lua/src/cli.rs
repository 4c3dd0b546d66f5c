//! The `chime-lua` command line, parsed as `lua` parses its own: options up to the script name,
//! `-e` and `-l` run in the order given, everything after the script is the script's.

use std::ffi::OsString;

/// One `-e` or `-l`, in command-line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// `-e stat`: run this chunk.
    Exec(String),
    /// `-l mod`: `mod = require("mod")`.
    Require(String),
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Options {
    pub(crate) actions: Vec<Action>,
    /// `-v`: print the version.
    pub(crate) version: bool,
    /// The script (`-` for standard input) and its arguments.
    pub(crate) script: Option<String>,
    pub(crate) args: Vec<String>,
    /// Every argument before the script, for `arg`'s negative indices.
    pub(crate) before: Vec<String>,
    /// `--openresty` or `--knot`.
    pub(crate) mode: chime_lua::Mode,
    /// `--workers N`.
    pub(crate) workers: Option<u32>,
    /// `--store URL`.
    pub(crate) store: Option<chime_lua::StoreUrl>,
    /// `--shdict NAME[=SIZE]`, in order.
    pub(crate) shdicts: Vec<(String, u64)>,
}

pub(crate) const USAGE: &str = "usage: chime-lua [options] [script [args]]
Available options are:
  -e stat   execute string 'stat'
  -l mod    require library 'mod' into global 'mod'
  -v        show version information
  --        stop handling options
  -         stop handling options and execute stdin
  --openresty        run the script as an OpenResty request handler (ngx, resty.timer)
  --knot             run the script as a Knot Resolver configuration (event, worker, map)
  --workers N        run N worker processes of the script (ids 0..N-1), sharing a store
  --store URL        the workers' cluster store: sqlite:PATH, redis://..., postgres://...
                     (default: an SQLite file in a temporary directory of the run)
  --shdict NAME[=SIZE]
                     declare ngx.shared.NAME, shared by the workers (SIZE as nginx: 8m; default 1m)
chime-lua has no interactive mode (-i).";

/// Parses the arguments after the program name; `Err` carries the message for stderr.
pub(crate) fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Options, String> {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.into_string().map_err(|a| format!("argument is not UTF-8: {}", a.to_string_lossy())))
        .collect::<Result<_, _>>()?;
    let mut options = Options::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        match arg.as_str() {
            "--" => {
                options.before.push(arg.clone());
                i += 1;
                break;
            }
            "-" => break,
            "-v" => options.version = true,
            "--openresty" => options.mode = chime_lua::Mode::OpenResty,
            "--knot" => options.mode = chime_lua::Mode::Knot,
            "--workers" | "--store" | "--shdict" => {
                let value = args.get(i + 1).ok_or_else(|| format!("'{arg}' needs argument"))?;
                match arg.as_str() {
                    "--workers" => options.workers = Some(parse_workers(value)?),
                    "--store" => options.store = Some(chime_lua::StoreUrl::parse(value)?),
                    _ => options.shdicts.push(parse_shdict(value)?),
                }
                options.before.push(arg.clone());
                options.before.push(value.clone());
                i += 2;
                continue;
            }
            "-e" | "-l" => {
                let value = args.get(i + 1).ok_or_else(|| format!("'{arg}' needs argument"))?;
                options.before.push(arg.clone());
                options.before.push(value.clone());
                options.actions.push(if arg == "-e" {
                    Action::Exec(value.clone())
                } else {
                    Action::Require(value.clone())
                });
                i += 2;
                continue;
            }
            a if a.starts_with("-e") => options.actions.push(Action::Exec(a[2..].to_string())),
            a if a.starts_with("-l") => options.actions.push(Action::Require(a[2..].to_string())),
            "-i" => return Err("interactive mode (-i) is not supported".to_string()),
            a if a.starts_with('-') => return Err(format!("unrecognized option '{a}'")),
            _ => break,
        }
        options.before.push(arg.clone());
        i += 1;
    }
    if i < args.len() {
        options.script = Some(args[i].clone());
        options.args = args[i + 1..].to_vec();
    }
    Ok(options)
}

fn parse_workers(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err(format!("--workers {value:?}: expected a number of workers from 1 to 1024")),
    }
}

fn parse_shdict(value: &str) -> Result<(String, u64), String> {
    let (name, size) = value.split_once('=').unwrap_or((value, "1m"));
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(format!("--shdict {value:?}: a dictionary name is letters, digits, '_' and '-'"));
    }
    let size = chime_lua::parse_size(size).map_err(|e| format!("--shdict {value:?}: {e}"))?;
    Ok((name.to_string(), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Options, String> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn options_stop_at_the_script() {
        let o = p(&["-e", "x=1", "-lcopas", "s.lua", "-e", "a"]).unwrap();
        assert_eq!(o.actions, vec![Action::Exec("x=1".into()), Action::Require("copas".into())]);
        assert_eq!(o.script.as_deref(), Some("s.lua"));
        assert_eq!(o.args, vec!["-e", "a"]);
        assert_eq!(o.before, vec!["-e", "x=1", "-lcopas"]);
    }

    #[test]
    fn bad_options_are_refused() {
        assert_eq!(p(&["-e"]).unwrap_err(), "'-e' needs argument");
        assert_eq!(p(&["-x"]).unwrap_err(), "unrecognized option '-x'");
        assert!(p(&["-i"]).is_err());
    }

    #[test]
    fn node_options() {
        let o = p(&[
            "--workers",
            "3",
            "--shdict",
            "a=8m",
            "--shdict",
            "b",
            "--store",
            "sqlite:/x",
            "--knot",
            "s.lua",
        ])
        .unwrap();
        assert_eq!(o.workers, Some(3));
        assert_eq!(o.shdicts, vec![("a".to_string(), 8 << 20), ("b".to_string(), 1 << 20)]);
        assert_eq!(o.store, Some(chime_lua::StoreUrl::Sqlite("/x".into())));
        assert_eq!(o.mode, chime_lua::Mode::Knot);
        assert_eq!(o.script.as_deref(), Some("s.lua"));
        assert!(p(&["--workers", "0"]).unwrap_err().contains("from 1 to 1024"));
        assert!(p(&["--shdict", "a=8x"]).unwrap_err().contains("invalid size"));
        assert!(p(&["--store", "ftp://x"]).unwrap_err().contains("expected sqlite:PATH"));
    }

    #[test]
    fn dash_is_stdin_and_double_dash_ends_options() {
        assert_eq!(p(&["-"]).unwrap().script.as_deref(), Some("-"));
        let o = p(&["--", "-v"]).unwrap();
        assert_eq!((o.version, o.script.as_deref()), (false, Some("-v")));
    }
}

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
}

pub(crate) const USAGE: &str = "usage: chime-lua [options] [script [args]]
Available options are:
  -e stat   execute string 'stat'
  -l mod    require library 'mod' into global 'mod'
  -v        show version information
  --        stop handling options
  -         stop handling options and execute stdin
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
    fn dash_is_stdin_and_double_dash_ends_options() {
        assert_eq!(p(&["-"]).unwrap().script.as_deref(), Some("-"));
        let o = p(&["--", "-v"]).unwrap();
        assert_eq!((o.version, o.script.as_deref()), (false, Some("-v")));
    }
}

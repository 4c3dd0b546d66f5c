//! What a job does, validated: a command (an array executed directly, or a shell string) or an
//! HTTP request.

use std::collections::BTreeMap;

use toml::Spanned;

use super::ctx::Ctx;
use super::raw::HttpToml;
use crate::job::{Command, HttpTarget};

pub(crate) fn command(value: &toml::Value) -> Result<Command, String> {
    match value {
        toml::Value::String(s) if s.trim().is_empty() => Err("`command` must not be empty".into()),
        toml::Value::String(s) => Ok(Command::Shell(s.clone())),
        toml::Value::Array(items) => {
            let argv: Option<Vec<String>> = items.iter().map(|v| v.as_str().map(str::to_string)).collect();
            match argv {
                None => Err("`command` must be an array of strings or a string".into()),
                Some(argv) if argv.first().is_none_or(|p| p.is_empty()) => {
                    Err("`command` must name a program: its first element is empty or missing".into())
                }
                Some(argv) => Ok(Command::Argv(argv)),
            }
        }
        _ => Err("`command` must be an array of strings or a string".into()),
    }
}

pub(crate) fn http(ctx: &mut Ctx<'_>, field: &Spanned<HttpToml>) -> Option<HttpTarget> {
    let raw = field.get_ref();
    let Some(url) = raw.url.as_ref() else {
        ctx.report(field.span(), "`http` has no `url`");
        return None;
    };
    let url = ctx.check(url, |u| match reqwest::Url::parse(u) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(u.clone()),
        Ok(_) => Err(format!("`url` must be http:// or https://, not `{u}`")),
        Err(e) => Err(format!("invalid `url` `{u}`: {e}")),
    });
    let method = match &raw.method {
        Some(m) => ctx.check(m, |m| {
            let upper = m.to_ascii_uppercase();
            reqwest::Method::from_bytes(upper.as_bytes())
                .map(|_| upper)
                .map_err(|_| format!("invalid HTTP method `{m}`"))
        }),
        None => Some("GET".to_string()),
    };
    let mut expect = Vec::new();
    if let Some(codes) = &raw.expect {
        for code in codes.get_ref() {
            if let Some(c) = ctx.check(code, |&c| {
                u16::try_from(c)
                    .ok()
                    .filter(|c| (100..=599).contains(c))
                    .ok_or_else(|| format!("`expect` holds HTTP status codes (100 to 599), not {c}"))
            }) {
                expect.push(c);
            }
        }
    }
    let headers = match &raw.headers {
        Some(h) => ctx.check(h, |headers| {
            for (name, value) in headers {
                reqwest::header::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("invalid header name `{name}`"))?;
                reqwest::header::HeaderValue::from_str(value)
                    .map_err(|_| format!("invalid value for header `{name}`"))?;
            }
            Ok(headers.clone())
        })?,
        None => BTreeMap::new(),
    };
    Some(HttpTarget {
        method: method?,
        url: url?,
        expect,
        headers,
        body: raw.body.as_ref().map(|b| b.get_ref().clone()),
    })
}

//! Jobs upserted through the API: their JSON turned into a one-job TOML document and validated like
//! a file's, so both take exactly the same keys and give the same messages (here naming the key
//! rather than a location).

use std::path::PathBuf;

use super::Problem;
use super::ctx::Ctx;
use super::raw::FileToml;
use super::validate::{Defaults, job, toml_problem};
use crate::job::{JobSpec, Source};

/// A job from the API's JSON: turned into a one-job TOML document and validated like a file's, so
/// both take exactly the same keys and give the same messages (here with the key, not a location).
pub(crate) fn api_job(name: &str, body: &serde_json::Value, defaults: &Defaults) -> Result<JobSpec, String> {
    let serde_json::Value::Object(fields) = body else {
        return Err("the body must be a JSON object with the keys of a [[job]] table".into());
    };
    let mut table = toml::Table::new();
    for (key, value) in fields {
        if let Some(v) = json_to_toml(value) {
            table.insert(key.clone(), v);
        }
    }
    match table.get("name") {
        Some(toml::Value::String(n)) if n != name => {
            return Err(format!("`name` is `{n}` but the path names `{name}`"));
        }
        _ => {
            table.insert("name".into(), toml::Value::String(name.to_string()));
        }
    }
    let mut doc = toml::Table::new();
    doc.insert("job".into(), toml::Value::Array(vec![toml::Value::Table(table)]));
    let text = toml::to_string(&doc).map_err(|e| format!("the job cannot be read: {e}"))?;
    let located = |p: &Problem| match key_at(&text, p.offset) {
        Some(key) if !p.message.contains(&format!("`{key}`")) => format!("`{key}`: {}", p.message),
        _ => p.message.clone(),
    };
    let file: FileToml = toml::from_str(&text).map_err(|e| located(&toml_problem(&text, &e)))?;
    let mut ctx = Ctx { text: &text, problems: Vec::new() };
    let raw = file.job.first().ok_or("no job in the body")?;
    let base = defaults.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    match job(&mut ctx, raw, defaults, &base, Source::Api) {
        Some(spec) => Ok(spec),
        None => Err(ctx.problems.iter().map(located).collect::<Vec<_>>().join("; ")),
    }
}

/// The key written on the line of `offset` in a document this module generated.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let start = text[..offset.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    Some(key.trim().trim_matches('"').to_string())
}

fn json_to_toml(value: &serde_json::Value) -> Option<toml::Value> {
    Some(match value {
        serde_json::Value::Null => return None,
        serde_json::Value::Bool(b) => toml::Value::Boolean(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        serde_json::Value::String(s) => toml::Value::String(s.clone()),
        serde_json::Value::Array(items) => {
            toml::Value::Array(items.iter().filter_map(json_to_toml).collect())
        }
        serde_json::Value::Object(map) => {
            toml::Value::Table(map.iter().filter_map(|(k, v)| Some((k.clone(), json_to_toml(v)?))).collect())
        }
    })
}

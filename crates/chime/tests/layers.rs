//! The house's layers run one way. Each module of `src/` belongs to a layer; a module may use
//! modules of its own layer or below, never above, and the modules of one layer use each other
//! without a cycle. This test reads the sources (`crate::` paths in code, not in comments; root
//! re-exports resolved through `lib.rs`) and fails naming the offending file and path. Unit tests
//! inside `src/` (files named `tests.rs` or `*_tests.rs`, and `#[cfg(test)]` blocks) may use
//! anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first (the same list opens `src/lib.rs`).
const LAYERS: &[&[&str]] = &[
    &["wheel"],
    &["clock", "error", "id", "sync", "unwind"],
    &["record"],
    &["driver"],
    &["scheduler", "sleep", "ticker"],
    &["worker", "watch", "cluster"],
    &["events", "timer"],
    &["durable"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file: comments stripped, `#[cfg(test)]` blocks and what follows them cut.
fn code(text: &str) -> String {
    let mut code = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        if line.starts_with("//") {
            continue;
        }
        code.push_str(line.split(" //").next().unwrap_or(line));
        code.push('\n');
    }
    code
}

/// Names `lib.rs` re-exports at the root, with the module each comes from.
fn root_names(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for item in lib.split(';') {
        let Some(rest) = item.trim().strip_prefix("pub use ") else { continue };
        let (module, list) = rest.split_once("::").expect("pub use module::...");
        let list = list.trim_start_matches('{').trim_end_matches('}');
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            names.insert(name.to_string(), module.to_string());
        }
    }
    names
}

/// The top-level modules a file's code names through `crate::` paths.
fn uses(code: &str, roots: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let after = &code[i + "crate::".len()..];
        let names: Vec<&str> = if let Some(group) = after.strip_prefix('{') {
            group.split('}').next().unwrap_or("").split(',').collect()
        } else {
            vec![after]
        };
        for name in names {
            let name: String = name.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if name.is_empty() {
                continue;
            }
            let module = roots.get(&name).cloned().unwrap_or(name);
            used.insert(module);
        }
    }
    used
}

#[test]
fn layers_run_one_way_and_have_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let roots = root_names(&code(&std::fs::read_to_string(src.join("lib.rs")).unwrap()));
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut upward = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let stem = file.file_stem().unwrap().to_string_lossy();
        if relative == Path::new("lib.rs") || stem == "tests" || stem.ends_with("_tests") {
            continue;
        }
        let first = relative.components().next().unwrap().as_os_str().to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        let Some(layer) = layer_of(&module) else {
            panic!("{} is in module `{module}`, which no layer lists: add it to LAYERS", relative.display());
        };
        for used in uses(&code(&std::fs::read_to_string(&file).unwrap()), &roots) {
            if used == module {
                continue;
            }
            let Some(used_layer) = layer_of(&used) else {
                panic!("{} uses `crate::{used}`, which no layer lists", relative.display());
            };
            if used_layer > layer {
                upward
                    .push(format!("{} (layer {layer}) uses {used} (layer {used_layer})", relative.display()));
            }
            graph.entry(module.clone()).or_default().insert(used);
        }
    }
    assert!(upward.is_empty(), "imports that run up the layers:\n{}", upward.join("\n"));
    // Within a layer, modules may use each other, but never in a circle.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|n| n == node) {
            panic!("a cycle of modules: {} -> {node}", path[at..].join(" -> "));
        }
        if !done.insert(node.to_string()) {
            return;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_checker_sees_grouped_and_re_exported_paths() {
    let roots = root_names("pub use scheduler::{Lifecycle, Scheduler}; pub use error::Error;");
    let used = uses(
        &code(
            "use crate::{Error, wheel::Key};\n// crate::timer is a comment\nlet x = crate::driver::Driver::new();",
        ),
        &roots,
    );
    assert_eq!(used.into_iter().collect::<Vec<_>>(), vec!["driver", "error", "wheel"]);
}

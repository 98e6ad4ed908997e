//! Imports point down the layers and no module imports another that imports
//! it back: read from the source, so a new import that breaks the order fails
//! here rather than in review.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, top first: a module may import only from layers below its own.
/// Modules of one layer do not import each other.
const LAYERS: &[&[&str]] = &[
    &["main", "lib"],
    &["cli"],
    &["daemon"],
    &["inbound", "outbound"],
    &["ingest"],
    &["notify"],
    &["store"],
    &["blobs", "config", "credentials", "host", "outage", "tls"],
    &["mail"],
];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` is in no layer: add it to LAYERS"))
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The module path of a file: `src/ingest/decide.rs` → ["ingest", "decide"].
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let relative = file
        .strip_prefix(src)
        .expect("under src")
        .with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The code of a file without comments and without its unit tests.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Paths named after `prefix` (`crate::` or `super::`): their first two segments.
fn named_after(code: &str, prefix: &str) -> Vec<(String, Option<String>)> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[at + prefix.len()..];
        let segment = |s: &str| -> String {
            s.chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect()
        };
        let first = segment(rest);
        if first.is_empty() {
            continue;
        }
        let after = &rest[first.len()..];
        let second = after
            .strip_prefix("::")
            .map(segment)
            .filter(|s| !s.is_empty());
        found.push((first, second));
    }
    found
}

struct Graph {
    /// Top-level module → the top-level modules it imports.
    top: BTreeMap<String, BTreeSet<String>>,
    /// Inside one top-level module: child → siblings it imports.
    inner: BTreeMap<String, BTreeSet<String>>,
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let is_module = |top: &str, child: &str| {
        src.join(top).join(format!("{child}.rs")).exists() || src.join(top).join(child).is_dir()
    };
    let mut graph = Graph {
        top: BTreeMap::new(),
        inner: BTreeMap::new(),
    };
    for file in files {
        let path = module_path(&src, &file);
        let Some(top) = path.first().cloned() else {
            continue;
        };
        let child = path.get(1).cloned();
        let text = code(&std::fs::read_to_string(&file).expect("read source"));
        graph.top.entry(top.clone()).or_default();
        for (first, second) in named_after(&text, "crate::") {
            if first != top {
                graph.top.entry(top.clone()).or_default().insert(first);
            } else if let (Some(child), Some(second)) = (&child, second)
                && second != *child
                && is_module(&top, &second)
            {
                graph
                    .inner
                    .entry(format!("{top}::{child}"))
                    .or_default()
                    .insert(format!("{top}::{second}"));
            }
        }
        if path.len() == 2
            && let Some(child) = &child
        {
            for (first, _) in named_after(&text, "super::") {
                if first != *child && is_module(&top, &first) {
                    graph
                        .inner
                        .entry(format!("{top}::{child}"))
                        .or_default()
                        .insert(format!("{top}::{first}"));
                }
            }
        }
    }
    graph
}

/// A cycle in `edges`, if there is one, as the list of modules along it.
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut found = path[start..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, edges, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

#[test]
fn imports_point_down_the_layers() {
    let graph = graph();
    let mut wrong = Vec::new();
    for (module, imports) in &graph.top {
        for imported in imports {
            if layer_of(imported) <= layer_of(module) {
                wrong.push(format!("{module} imports {imported}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = graph();
    assert_eq!(cycle(&graph.top), None, "a cycle between top-level modules");
    assert_eq!(cycle(&graph.inner), None, "a cycle inside a module");
}

#[test]
fn the_checks_see_a_cycle_and_an_upward_import() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges.entry("a".into()).or_default().insert("b".into());
    edges.entry("b".into()).or_default().insert("c".into());
    assert_eq!(cycle(&edges), None);
    edges.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        cycle(&edges),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert!(layer_of("store") > layer_of("notify"));
    let text = code("use crate::ingest::thread::X;\n// use crate::cli::Y;\nsuper::decide::Z");
    assert_eq!(
        named_after(&text, "crate::"),
        vec![("ingest".to_string(), Some("thread".to_string()))]
    );
    assert_eq!(
        named_after(&text, "super::"),
        vec![("decide".to_string(), None)]
    );
}

/// Every public function of the layers others build on says its contract.
#[test]
fn public_functions_of_ingest_notify_and_store_say_their_contract() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for layer in ["ingest", "notify", "store"] {
        sources(&src.join(layer), &mut files);
    }
    let mut undocumented = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read source");
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let code = line.trim_start();
            let public_fn = ["pub fn ", "pub async fn ", "pub const fn "]
                .iter()
                .any(|p| code.starts_with(p));
            if !public_fn {
                continue;
            }
            let documented = lines[..i]
                .iter()
                .rev()
                .map(|l| l.trim_start())
                .find(|l| !l.starts_with("#["))
                .is_some_and(|l| l.starts_with("///"));
            if !documented {
                undocumented.push(format!("{}:{}: {}", file.display(), i + 1, code));
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "public functions without a /// line:\n{}",
        undocumented.join("\n")
    );
}

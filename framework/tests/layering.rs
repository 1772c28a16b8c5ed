//! The framework's top-level modules form a layered graph: no module reaches back into one that depends on it.
//! This scans `src/**.rs` for `crate::<module>` and `super::` paths outside comments and test modules and fails
//! on any cycle, naming its modules and the lines that close it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Uses that point up the layers, each to be removed by moving the shared type down; the test fails once one
/// of them is gone, so the list only shrinks. None remain: evaluation (`eval`, `metrics`, `oracle`) reads an
/// `eval_context::EvalContext`, which `train` builds from its run.
const KNOWN_BACK_EDGES: &[(&str, &str)] = &[];

/// Where a use of another top-level module was found.
type Edges = BTreeMap<(String, String), Vec<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_stem().is_some_and(|s| s != "tests")
        {
            // `tests.rs` files are test modules: what they import is no layer's dependency.
            out.push(path);
        }
    }
}

/// The module path of a source file: `components/mod.rs` → `[components]`, `nn/linear.rs` → `[nn, linear]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level module a path names, given the path's segments after `crate::`.
fn top_level(segment: &str, modules: &BTreeSet<String>) -> Option<String> {
    let seg = match segment {
        "Error" | "Result" => "error",
        "register_component" | "register_method" => "registry",
        s => s,
    };
    modules.contains(seg).then(|| seg.to_string())
}

fn edges(src: &Path, modules: &BTreeSet<String>) -> Edges {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut edges = Edges::new();
    for file in files {
        let path = module_path(src, &file);
        let Some(from) = path.first().cloned() else {
            continue; // lib.rs: the crate root re-exports, it is no layer
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            let code = line.split("//").next().unwrap_or("");
            let mut targets = Vec::new();
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + "crate::".len()..];
                // `$crate::` inside macros resolves the same way.
                targets.extend(top_level(ident_at(rest), modules));
            }
            let mut rest = code;
            while let Some(i) = rest.find("super::") {
                let preceded = rest[..i].ends_with("super::");
                rest = &rest[i + "super::".len()..];
                if preceded {
                    continue;
                }
                let mut ups = 1;
                let mut tail = rest;
                while let Some(t) = tail.strip_prefix("super::") {
                    ups += 1;
                    tail = t;
                }
                if ups < path.len() {
                    continue; // stays inside this top-level module
                }
                if ups == path.len() {
                    targets.extend(top_level(ident_at(tail), modules));
                }
            }
            for to in targets {
                if to != from {
                    edges.entry((from.clone(), to)).or_default().push(format!(
                        "src/{}:{}",
                        file.strip_prefix(src).unwrap().display(),
                        n + 1
                    ));
                }
            }
        }
    }
    edges
}

/// A shortest path `from` → … → `to` over `edges`, if any.
fn path_between(edges: &Edges, from: &str, to: &str) -> Option<Vec<String>> {
    let mut prev: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from.to_string()]);
    let mut seen = BTreeSet::from([from.to_string()]);
    while let Some(m) = queue.pop_front() {
        if m == to {
            let mut p = vec![m.clone()];
            let mut cur = m;
            while let Some(q) = prev.get(&cur) {
                p.push(q.clone());
                cur = q.clone();
            }
            p.reverse();
            return Some(p);
        }
        for (a, b) in edges.keys() {
            if *a == m && seen.insert(b.clone()) {
                prev.insert(b.clone(), a.clone());
                queue.push_back(b.clone());
            }
        }
    }
    None
}

/// Modules in the same strongly connected component as `m` (those it reaches and that reach it).
fn component(edges: &Edges, m: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    modules
        .iter()
        .filter(|o| {
            o.as_str() == m
                || (path_between(edges, m, o).is_some() && path_between(edges, o, m).is_some())
        })
        .cloned()
        .collect()
}

#[test]
fn top_level_modules_have_no_import_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules: BTreeSet<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|m| m != "lib")
        .collect();
    let mut edges = edges(&src, &modules);
    let mut stale = Vec::new();
    for &(a, b) in KNOWN_BACK_EDGES {
        if edges.remove(&(a.to_string(), b.to_string())).is_none() {
            stale.push(format!("{a} → {b}"));
        }
    }
    assert!(
        stale.is_empty(),
        "no longer used, drop from KNOWN_BACK_EDGES: {}",
        stale.join(", ")
    );
    let mut reported = BTreeSet::new();
    let mut cycles = Vec::new();
    for m in &modules {
        let scc = component(&edges, m, &modules);
        if scc.len() < 2 || !reported.insert(scc.clone()) {
            continue;
        }
        let inside: Vec<String> = edges
            .iter()
            .filter(|((a, b), _)| scc.contains(a) && scc.contains(b))
            .map(|((a, b), at)| format!("{a} → {b} at {}", at.join(", ")))
            .collect();
        let names: Vec<&str> = scc.iter().map(String::as_str).collect();
        cycles.push(format!(
            "cycle among {}:\n    {}",
            names.join(", "),
            inside.join("\n    ")
        ));
    }
    assert!(
        cycles.is_empty(),
        "import cycle(s) between framework modules (layers, bottom up: core types, nn / dist / scm, components, method, evaluation, train):\n{}",
        cycles.join("\n")
    );
}

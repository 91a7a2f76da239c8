//! The layering of `harness/src` (docs/ARCHITECTURE.md#scenarios), checked on the source
//! text: no import cycle between its top-level modules, and the scenario folders and the
//! metric leaf stay below the modules that use them.
//!
//! Receives the crate's own source files (read from `CARGO_MANIFEST_DIR/src`). Emits test
//! failures naming the offending module and file.
//! Must not: count test-only files (`tests.rs`, `tests/`), whose imports do not shape the
//! layers; it reads `crate::NAME` paths, comments included, as `tools`-style checks do.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file below `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn test_only(path: &Path) -> bool {
    let s = path.to_string_lossy();
    s.contains("/tests") || s.ends_with("tests.rs")
}

/// The names following `crate::` in `text`.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // `$crate::` and `some_crate::` are not this crate.
        let before = text[..i].chars().last();
        if !name.is_empty()
            && !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        {
            names.insert(name);
        }
    }
    names
}

/// Top-level module -> the top-level modules its non-test files name, with one file each.
fn edges() -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let root = src();
    let mut modules: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(&root).expect("read src") {
        let path = entry.expect("entry").path();
        let name = path
            .file_stem()
            .expect("name")
            .to_string_lossy()
            .to_string();
        if path.is_dir() {
            let mut files = Vec::new();
            rust_files(&path, &mut files);
            modules.entry(name).or_default().extend(files);
        } else if path.extension().is_some_and(|e| e == "rs") && name != "lib" && name != "main" {
            modules.entry(name).or_default().push(path);
        }
    }
    let mut edges = BTreeMap::new();
    for (m, files) in &modules {
        let mut to: BTreeMap<String, PathBuf> = BTreeMap::new();
        for f in files.iter().filter(|f| !test_only(f)) {
            let text = std::fs::read_to_string(f).expect("read source");
            for t in crate_paths(&text) {
                if modules.contains_key(&t) && &t != m {
                    to.entry(t).or_insert_with(|| f.clone());
                }
            }
        }
        edges.insert(m.clone(), to);
    }
    edges
}

/// Whether `to` is reachable from `from`, and by which path.
fn path_between(
    edges: &BTreeMap<String, BTreeMap<String, PathBuf>>,
    from: &str,
    to: &str,
) -> Option<Vec<String>> {
    let mut stack = vec![vec![from.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().expect("non-empty").clone();
        if !seen.insert(last.clone()) {
            continue;
        }
        for next in edges.get(&last).into_iter().flat_map(|e| e.keys()) {
            let mut p = path.clone();
            p.push(next.clone());
            if next == to {
                return Some(p);
            }
            stack.push(p);
        }
    }
    None
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let edges = edges();
    assert!(edges.contains_key("scenario") && edges.contains_key("recorder"));
    let mut cycles = Vec::new();
    for (m, to) in &edges {
        for (t, file) in to {
            if let Some(back) = path_between(&edges, t, m) {
                cycles.push(format!(
                    "{m} -> {} (from {}), and back: {}",
                    t,
                    file.display(),
                    back.join(" -> ")
                ));
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn scenarios_and_metrics_stay_below_their_users() {
    let edges = edges();
    let rules: [(&str, &[&str]); 2] = [
        (
            "scenario",
            &["recorder", "driver", "run", "cli", "swarm", "commands"],
        ),
        (
            "metric",
            &["recorder", "scenario", "driver", "plan", "run", "cli"],
        ),
    ];
    let mut wrong = Vec::new();
    for (module, forbidden) in rules {
        let to = edges.get(module).expect("module exists");
        for f in forbidden {
            if let Some(file) = to.get(*f) {
                wrong.push(format!("{module} imports {f} ({})", file.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The users do import them: the layering is real, not vacuous.
    for (user, used) in [
        ("recorder", "scenario"),
        ("recorder", "metric"),
        ("driver", "scenario"),
    ] {
        assert!(
            edges[user].contains_key(used),
            "{user} no longer imports {used}"
        );
    }
}

#[test]
fn crate_paths_reads_only_this_crate() {
    let names = crate_paths("use crate::plan::Plan; $crate::x; other_crate::y; [`crate::metric`]");
    assert_eq!(
        names,
        BTreeSet::from(["plan".to_string(), "metric".to_string()])
    );
}

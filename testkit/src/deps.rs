//! The one rule for test dependencies (docs/ARCHITECTURE.md, "Test kit").
//!
//! A *runtime* a test needs (the `node` binary, the Python virtualenv of
//! `interop/python/.venv`) may be absent on a developer's machine: the test then prints
//! `SKIPPED <test>: <why>` and returns, **unless the environment variable `CI` is set
//! (non-empty), in which case it fails**, so a CI run never passes by skipping. What
//! `scripts/test.sh` installs for a runtime that is there (the `npm ci` packages of
//! `interop/`, Debian's Chromium) is a setup step, not an optional tool: missing, the test
//! fails with or without `CI` and says how to install it.
//!
//! Every test crate goes through the functions here; nothing else reads `CI`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Debian's Chromium, driven by playwright-core (the tests never download a browser).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Why a test cannot run without Node.js.
pub const NO_NODE: &str = "`node` is not on PATH (install Node.js 20, then run scripts/test.sh)";

/// Why a test cannot run without python-socketio.
pub const NO_PYTHON: &str = "interop/python/.venv is missing (scripts/test.sh makes it)";

/// The environment variable `CI` is set and not empty.
pub fn ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// A runtime dependency of `test` is missing (`why` says which and how to install it).
/// Under `CI` the test fails here; otherwise this prints `SKIPPED <test>: <why>` and the
/// caller returns.
pub fn missing_dependency(test: &str, why: &str) {
    if ci() {
        panic!("{test}: {why}; CI is set, so a missing test dependency fails the test");
    }
    eprintln!("SKIPPED {test}: {why}");
}

/// The repository's `interop/` folder (Node and Python peers).
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("interop")
}

/// `node --version` runs.
pub fn node_on_path() -> bool {
    Command::new("node")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True when `test` can use Node.js with the `interop/node_modules` packages `packages`.
/// Without `node`: [`missing_dependency`] (fails under `CI`, else skipped, returns false).
/// With `node` but without one of the packages: fails (run `npm ci` in interop/).
pub fn node_ready(test: &str, packages: &[&str]) -> bool {
    if !node_on_path() {
        missing_dependency(test, NO_NODE);
        return false;
    }
    let modules = interop_dir().join("node_modules");
    for package in packages {
        assert!(
            modules.join(package).is_dir(),
            "{test}: {} is missing `{package}`: run `npm ci` in interop/ (scripts/test.sh does it)",
            modules.display()
        );
    }
    true
}

/// True when `test` can drive Chromium: [`node_ready`] with playwright-core and `packages`,
/// and [`CHROMIUM`] present (missing, a failure: scripts/test.sh installs it with apt-get).
pub fn browser_ready(test: &str, packages: &[&str]) -> bool {
    let mut all = vec!["playwright-core"];
    all.extend_from_slice(packages);
    if !node_ready(test, &all) {
        return false;
    }
    assert!(
        Path::new(CHROMIUM).exists(),
        "{test}: {CHROMIUM} is missing: install Debian's chromium (scripts/test.sh does it with apt-get)"
    );
    true
}

/// The interpreter of `interop/python/.venv` (python-socketio) when it exists; otherwise
/// [`missing_dependency`] for `test` (fails under `CI`, else skipped) and `None`.
pub fn python_ready(test: &str) -> Option<PathBuf> {
    let python = interop_dir().join("python/.venv/bin/python");
    if python.exists() {
        Some(python)
    } else {
        missing_dependency(test, NO_PYTHON);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interop_dir_is_the_repository_folder() {
        // The peers the tests start live there; a wrong path would fail every interop test
        // with a confusing "npm ci" message.
        assert!(interop_dir().join("package.json").is_file());
    }
}

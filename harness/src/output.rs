//! Writes a finished run's files into its output folder.
//!
//! Receives the folder and the [`RunFile`] (the recorder has already written
//! `histograms.hlog` there); emits `results.json` first, then `report.html`, and returns
//! their paths.
//! Must not: lose data: `results.json` is written (atomically) before anything that could
//! fail later, and a report that cannot be rendered leaves `results.json` in place; every
//! file is written atomically (temporary file + rename), so a reader never sees half of one.
//! [`prepare_out_dir`] makes sure a reused folder holds no earlier run's files.

use std::io;
use std::path::{Path, PathBuf};

use reports::RunFile;

/// Where a run's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub dir: PathBuf,
    pub results: PathBuf,
    pub report: PathBuf,
    /// The interval log, when it exists.
    pub hlog: Option<PathBuf>,
}

/// Creates `dir` and writes `results.json` and `report.html` into it.
pub fn write_outputs(dir: &Path, run: &RunFile) -> io::Result<Paths> {
    let paths = write_results(dir, run)?;
    let html = reports::html::render_html(run).map_err(|e| {
        io::Error::other(format!(
            "{e} (results.json was written: {})",
            paths.results.display()
        ))
    })?;
    reports::file::write_atomic(&paths.report, html.as_bytes())?;
    Ok(paths)
}

/// Creates `dir` and writes `results.json` only (a worker's: its coordinator renders the
/// report of the merged run); `report` names where the report would go.
pub fn write_results(dir: &Path, run: &RunFile) -> io::Result<Paths> {
    std::fs::create_dir_all(dir)?;
    let results = dir.join("results.json");
    run.write(&results)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let report = dir.join("report.html");
    let hlog = dir.join("histograms.hlog");
    Ok(Paths {
        dir: dir.to_owned(),
        results,
        report,
        hlog: hlog.exists().then_some(hlog),
    })
}

/// The files a run writes into its folder (and their temporary names while being written).
const RUN_FILES: [&str; 3] = ["results.json", "histograms.hlog", "report.html"];

/// A worker's own results of a run of several processes, kept beside the merged ones
/// (`worker-<index>.results.json`, `worker-<index>.histograms.hlog`; cluster/coordinator.rs).
pub fn is_worker_file(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("worker-") else {
        return false;
    };
    let Some((index, kind)) = rest.split_once('.') else {
        return false;
    };
    !index.is_empty()
        && index.len() <= 4
        && index.bytes().all(|b| b.is_ascii_digit())
        && matches!(kind, "results.json" | "histograms.hlog")
}

/// What [`prepare_out_dir`] did with an existing folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// The folder did not exist, or was empty.
    Fresh,
    /// The folder held an earlier run's files, which were removed (their names).
    Cleared(Vec<String>),
}

/// Makes `dir` ready for a new run: creates it when missing; when it holds only an earlier
/// run's files (`results.json`, `histograms.hlog`, `report.html` and their temporary
/// `.NAME.tmp` forms, and a run of several processes' `worker-N.*` files), removes them, so no file of the old run can be read beside the new
/// one; when it holds anything else, refuses (nothing is removed) and names what is there.
pub fn prepare_out_dir(dir: &Path) -> Result<Prepared, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut ours = Vec::new();
    let mut other = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        let run_file = RUN_FILES
            .iter()
            .any(|f| name == *f || name == format!(".{f}.tmp"))
            || is_worker_file(&name);
        if is_file && run_file {
            ours.push(name);
        } else {
            other.push(name);
        }
    }
    if !other.is_empty() {
        other.sort();
        let shown: Vec<&str> = other.iter().take(5).map(String::as_str).collect();
        return Err(format!(
            "the output folder is not empty and holds files that are not a swarm run's ({}{}); \
             give a new or empty folder with --out (an earlier run's results.json, \
             histograms.hlog and report.html alone are cleared)",
            shown.join(", "),
            if other.len() > shown.len() {
                ", ..."
            } else {
                ""
            }
        ));
    }
    if ours.is_empty() {
        return Ok(Prepared::Fresh);
    }
    ours.sort();
    for name in &ours {
        std::fs::remove_file(dir.join(name)).map_err(|e| format!("cannot remove {name}: {e}"))?;
    }
    Ok(Prepared::Cleared(ours))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_results_and_report_into_a_new_folder() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("nested/run-1");
        let run = reports::fixture::example_run(20);
        let paths = write_outputs(&dir, &run).expect("write");
        assert_eq!(RunFile::read(&paths.results).expect("read back"), run);
        let html = std::fs::read_to_string(&paths.report).expect("report");
        assert!(html.contains("steady"));
        assert_eq!(paths.hlog, None);
    }

    #[test]
    fn unwritable_folder_is_an_error_not_a_panic() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("a-file");
        std::fs::write(&file, b"x").expect("file");
        let run = reports::fixture::example_run(1);
        assert!(write_outputs(&file.join("sub"), &run).is_err());
    }

    #[test]
    fn a_reused_folder_loses_the_earlier_runs_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("run");
        assert_eq!(prepare_out_dir(&dir), Ok(Prepared::Fresh));
        for f in ["results.json", "histograms.hlog", ".report.html.tmp"] {
            std::fs::write(dir.join(f), b"old").expect("write");
        }
        assert_eq!(
            prepare_out_dir(&dir),
            Ok(Prepared::Cleared(vec![
                ".report.html.tmp".into(),
                "histograms.hlog".into(),
                "results.json".into()
            ]))
        );
        assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 0);
        assert_eq!(prepare_out_dir(&dir), Ok(Prepared::Fresh));
    }

    #[test]
    fn a_folder_with_other_files_is_refused_and_left_alone() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::write(tmp.path().join("results.json"), b"old").expect("write");
        std::fs::write(tmp.path().join("notes.txt"), b"mine").expect("write");
        let err = prepare_out_dir(tmp.path()).expect_err("refused");
        assert!(err.contains("notes.txt"), "{err}");
        assert!(tmp.path().join("results.json").exists());
        assert!(tmp.path().join("notes.txt").exists());
    }

    #[test]
    fn atomic_write_replaces_whole_and_leaves_no_temporary() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("report.html");
        std::fs::write(&path, b"old").expect("write");
        reports::file::write_atomic(&path, b"new contents").expect("atomic");
        assert_eq!(std::fs::read(&path).expect("read"), b"new contents");
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("report.html")]);
        // A folder that cannot take the file: an error, and `path` is untouched.
        assert!(reports::file::write_atomic(&tmp.path().join("missing/x"), b"x").is_err());
    }
}

//! Writes a finished run's files into its output folder.
//!
//! Receives the folder and the [`RunFile`] (the recorder has already written
//! `histograms.hlog` there); emits `results.json` first, then `report.html`, and returns
//! their paths.
//! Must not: lose data: `results.json` is written (atomically) before anything that could
//! fail later, and a report that cannot be rendered leaves `results.json` in place.

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
    std::fs::create_dir_all(dir)?;
    let results = dir.join("results.json");
    run.write(&results)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let report = dir.join("report.html");
    let html = reports::html::render_html(run).map_err(|e| {
        io::Error::other(format!(
            "{e} (results.json was written: {})",
            results.display()
        ))
    })?;
    std::fs::write(&report, html)?;
    let hlog = dir.join("histograms.hlog");
    Ok(Paths {
        dir: dir.to_owned(),
        results,
        report,
        hlog: hlog.exists().then_some(hlog),
    })
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
}

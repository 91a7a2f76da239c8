//! The thresholds of a run as a JUnit XML report (`--out junit=PATH`), for CI systems that
//! read JUnit: one test suite, one test case per threshold (docs/results-format.md#junit).
//!
//! Receives a [`RunFile`] whose thresholds were evaluated; emits the XML text. A failed
//! threshold is a `<failure>` whose message gives the observed value (or why there was
//! none); a run stopped by `--abort-on-fail` says so in the suite's `<system-out>`.
//! Must not: write unescaped text from the run file into the XML (expressions hold `<`).

use std::fmt::Write as _;

use crate::schema::{RunFile, RunStatus};

/// Escapes text for an XML attribute or element.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The JUnit XML of `run`'s thresholds.
pub fn render_junit(run: &RunFile) -> String {
    let failures = run.thresholds.iter().filter(|t| !t.pass).count();
    let secs = run.run.duration_ms as f64 / 1000.0;
    let name = format!("swarm thresholds (run {})", run.meta.run_id);
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"swarm\" tests=\"{}\" failures=\"{failures}\" time=\"{secs:.3}\">",
        run.thresholds.len()
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{secs:.3}\">",
        esc(&name),
        run.thresholds.len()
    );
    for t in &run.thresholds {
        let _ = write!(
            x,
            "    <testcase classname=\"swarm.thresholds\" name=\"{}\" time=\"{secs:.3}\"",
            esc(&t.expr)
        );
        if t.pass {
            x.push_str("/>\n");
            continue;
        }
        let observed = match (t.observed, &t.note) {
            (Some(v), _) => format!("observed {v}{}", t.unit),
            (None, Some(n)) => n.clone(),
            (None, None) => "no value".into(),
        };
        let detail = match (t.observed, &t.note) {
            (Some(_), Some(n)) => format!("{observed}; {n}"),
            _ => observed.clone(),
        };
        let _ = write!(
            x,
            ">\n      <failure message=\"{}\" type=\"threshold\">{}</failure>\n    </testcase>\n",
            esc(&format!("{}: {observed}", t.expr)),
            esc(&detail)
        );
    }
    let mut out = format!("status: {:?}", run.meta.status).to_lowercase();
    if run.meta.status == RunStatus::Aborted
        && let Some(d) = &run.meta.status_detail
    {
        out.push_str(": ");
        out.push_str(d);
    }
    let _ = writeln!(x, "    <system-out>{}</system-out>", esc(&out));
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ThresholdResult;

    /// Expressions with `<` and `&` are escaped; a failure carries its observed value.
    #[test]
    fn escapes_and_reports_failures() {
        let mut run = crate::fixture::example_run(10);
        run.thresholds = vec![
            ThresholdResult {
                expr: "echo.latency.p99 < 50ms".into(),
                observed: Some(230.5),
                unit: "ms".into(),
                pass: false,
                note: None,
            },
            ThresholdResult {
                expr: "connect.failed == 0 && echo.timeouts < 1".into(),
                observed: None,
                unit: String::new(),
                pass: true,
                note: None,
            },
        ];
        let x = render_junit(&run);
        assert!(x.contains("name=\"echo.latency.p99 &lt; 50ms\""), "{x}");
        assert!(x.contains("&amp;&amp;"), "{x}");
        assert!(x.contains("observed 230.5ms"), "{x}");
        assert!(x.contains("tests=\"2\" failures=\"1\""), "{x}");
        assert!(!x.contains("< 50ms"), "{x}");
    }
}

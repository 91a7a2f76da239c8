//! Section "Flows": per flow step, how many runs ended which way, and the latency of those
//! that ended ok.
//!
//! Receives a [`RunFile`]; emits the `flow` [`Section`], or none when no flow step ran.
//! Must not: show anything but step names and figures (no captured or data value is in
//! the run file to show).

use super::Section;
use super::common::{DIST_HEAD, Table, dist_row};
use crate::format::count;
use crate::schema::RunFile;

pub fn section(run: &RunFile) -> Option<Section> {
    let f = run.run.flow.as_ref()?;
    let mut s = Section::new("flow", "Flows");
    let runs: u64 = f.steps.iter().fold(0u64, |a, x| a.saturating_add(x.runs));
    let failed: u64 = f
        .steps
        .iter()
        .fold(0u64, |a, x| a.saturating_add(x.errors()));
    s.lead.push(format!(
        "{} flow step runs over {} steps; {} did not end ok. Latency is from each step's \
         intended start to its done instant (ok runs only).",
        count(runs),
        count(f.steps.len() as u64),
        count(failed)
    ));
    let mut t = Table::new(
        "Step runs by outcome",
        &[
            "step",
            "runs",
            "ok",
            "timeouts",
            "unmatched",
            "bad path",
            "server errors",
            "disconnected",
            "unanswered at stop",
        ],
    );
    for st in &f.steps {
        t.push(vec![
            st.name.clone(),
            count(st.runs),
            count(st.ok),
            count(st.timeouts),
            count(st.unmatched),
            count(st.bad_path),
            count(st.server_errors),
            count(st.disconnected),
            count(st.unanswered_at_stop),
        ]);
    }
    s.tables.push(t);
    let mut l = Table::new("Step latency (ok runs)", &DIST_HEAD);
    for st in &f.steps {
        l.push(dist_row(&st.name, &st.latency));
    }
    s.tables.push(l);
    Some(s)
}

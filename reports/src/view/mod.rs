//! The report's view-model: everything a report shows, decided once, as display-ready data.
//!
//! Receives a [`RunFile`]; emits a [`ReportModel`] that both the HTML and the Markdown
//! renderings read (and that snapshot tests pin). Top to bottom it follows the reader's
//! questions: the verdict (did it pass; one line per scenario), key figures (how fast, how
//! many, what broke, was the swarm the bottleneck), then sections in a fixed order: the run,
//! connections, latency, broadcast, heartbeat, disconnects and errors, swarm health. A
//! section with no data is absent, not empty.
//! Must not: hold markup (strings here are plain text, escaped by the templates), or panic
//! on a hostile run file (undecodable histograms become notes, sums saturate).

mod broadcast;
mod capacity;
mod common;
mod connect;
mod failures;
mod flow;
mod health;
mod heartbeat;
mod latency;
mod run_info;
mod verdict;

use serde::Serialize;

use crate::chart::{self, Body, Chart};

/// Most points drawn per line.
pub const MAX_POINTS: usize = 1_200;
/// Most phase markers on a time axis.
pub const MAX_MARKERS: usize = 40;
/// Most categories of a bar chart.
pub const MAX_BARS: usize = 24;
/// Most rows of a table.
pub const MAX_ROWS: usize = 200;
use crate::schema::{RunFile, Scenario};

pub use common::Table;
pub use verdict::{Banner, Figure, ThresholdRow, Verdict};

/// Everything a report shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportModel {
    pub title: String,
    /// Did it pass, and one line per scenario.
    pub verdict: Verdict,
    /// The first screen's tiles: how many, how fast, what broke, the swarm's load.
    pub figures: Vec<Figure>,
    /// The sections below the first screen, in report order; sections without data are
    /// left out.
    pub sections: Vec<Section>,
}

/// One section of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Section {
    /// Stable identifier (`data-section` in the HTML): `run`, `connections`, `latency`,
    /// `broadcast`, `heartbeat`, `flow`, `failures`, `health`.
    pub id: &'static str,
    pub title: String,
    /// One or two sentences that sum the section up.
    pub lead: Vec<String>,
    pub charts: Vec<Chart>,
    pub tables: Vec<Table>,
    /// Things the reader should know (e.g. a histogram that could not be decoded).
    pub notes: Vec<String>,
}

impl Section {
    fn new(id: &'static str, title: &str) -> Section {
        Section {
            id,
            title: title.to_string(),
            lead: Vec::new(),
            charts: Vec::new(),
            tables: Vec::new(),
            notes: Vec::new(),
        }
    }
}

impl ReportModel {
    /// Builds the view-model of `run`.
    pub fn new(run: &RunFile) -> ReportModel {
        let m = &run.meta;
        let title = format!(
            "swarm {} against {}",
            if m.scenarios.is_empty() {
                "run".to_string()
            } else {
                Scenario::join(&m.scenarios, " + ")
            },
            m.target_url
        );
        let sections = [
            capacity::section(run),
            Some(run_info::section(run)),
            connect::section(run),
            latency::section(run),
            broadcast::section(run),
            heartbeat::section(run),
            flow::section(run),
            failures::section(run),
            health::section(run),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut model = ReportModel {
            title,
            verdict: verdict::verdict(run),
            figures: verdict::figures(run),
            sections,
        };
        model.bound();
        model
    }

    /// Keeps a report of a huge or hostile run readable and small: at most [`MAX_POINTS`]
    /// points per line (min/max per bucket, so spikes stay), [`MAX_MARKERS`] phase markers,
    /// [`MAX_BARS`] bar categories and [`MAX_ROWS`] table rows; what was cut is said.
    fn bound(&mut self) {
        for s in &mut self.sections {
            for c in &mut s.charts {
                c.markers.truncate(MAX_MARKERS);
                match &mut c.body {
                    Body::Lines { series } => {
                        for line in series.iter_mut() {
                            line.points =
                                chart::decimate(std::mem::take(&mut line.points), MAX_POINTS);
                        }
                    }
                    Body::Bars { categories, series } if categories.len() > MAX_BARS => {
                        c.caption = format!(
                            "{} (the first {MAX_BARS} of {} are shown)",
                            c.caption,
                            categories.len()
                        );
                        categories.truncate(MAX_BARS);
                        for b in series.iter_mut() {
                            b.values.truncate(MAX_BARS);
                        }
                    }
                    _ => {}
                }
            }
            for t in &mut s.tables {
                if t.rows.len() > MAX_ROWS {
                    let more = t.rows.len() - MAX_ROWS;
                    t.rows.truncate(MAX_ROWS);
                    let mut last = vec![String::new(); t.head.len().max(2)];
                    last[0] = format!("… {more} more rows (see results.json)");
                    t.rows.push(last);
                }
            }
        }
    }

    /// Every chart of the report, in order.
    pub fn charts(&self) -> impl Iterator<Item = &Chart> {
        self.sections.iter().flat_map(|s| s.charts.iter())
    }
}

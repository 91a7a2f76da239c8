//! The Markdown summary of a run, for a CI comment or a job summary.
//!
//! Receives a [`RunFile`]; renders the same [`ReportModel`] as the HTML report through
//! `templates/report.md`: the verdict, the key figures, then each section's sentences and
//! tables (no charts). Every value is escaped for Markdown
//! ([`crate::templates::markdown_escape`]).
//! Must not: let a string of the run create markup, links or mentions.

use crate::html::RenderError;
use crate::schema::RunFile;
use crate::templates;
use crate::view::ReportModel;

/// Renders `run` as GitHub-flavoured Markdown.
pub fn render_markdown(run: &RunFile) -> Result<String, RenderError> {
    let model = ReportModel::new(run);
    let env = templates::environment()?;
    let md = env.get_template("report.md")?.render(minijinja::context! {
        r => model,
        footer => format!(
            "swarmbench {} · {} · {}",
            run.meta.swarm_version,
            run.meta.target_url,
            crate::format::unix_ms_to_utc(run.meta.started_at_unix_ms)
        ),
    })?;
    Ok(md)
}

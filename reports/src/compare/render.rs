//! Renders a [`Comparison`] as a self-contained HTML page or as Markdown.
//!
//! Receives a [`Comparison`]; emits text through `templates/compare.html` (charts drawn by
//! [`crate::chart::svg`]) or `templates/compare.md`, with the same escaping as reports.
//! Must not: assemble markup with `format!`.

use super::Comparison;
use crate::html::{RenderError, draw_charts};
use crate::templates;

/// The comparison as one HTML page.
pub fn render_html(c: &Comparison) -> Result<String, RenderError> {
    let env = templates::environment()?;
    let drawn = draw_charts(c.charts.iter(), &env);
    Ok(env
        .get_template("compare.html")?
        .render(minijinja::context! { c => c, drawn => drawn })?)
}

/// The comparison as GitHub-flavoured Markdown (for a pull request comment).
pub fn render_markdown(c: &Comparison) -> Result<String, RenderError> {
    let env = templates::environment()?;
    Ok(env
        .get_template("compare.md")?
        .render(minijinja::context! { c => c })?)
}

//! The HTML report: one self-contained `report.html`.
//!
//! Receives a [`RunFile`] (or its [`ReportModel`]); draws every chart of the model as inline
//! SVG ([`crate::chart::svg`]) and renders `templates/report.html` with HTML auto-escaping.
//! The page loads nothing: no script, style, font or image from anywhere (the favicon is an
//! inline `data:` URL), so it works offline and from a CI artefact.
//! Must not: assemble HTML with `format!`, emit any string of the run unescaped, or fail the
//! whole report because one chart could not be drawn (that chart shows why instead).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::chart::svg;
use crate::format;
use crate::schema::RunFile;
use crate::templates;
pub use crate::view::ReportModel;

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("cannot render the report: {0}")]
pub struct RenderError(#[from] minijinja::Error);

/// A chart as the template receives it: its SVG, or why it could not be drawn.
#[derive(Debug, Clone, Serialize)]
pub struct Drawn {
    pub svg: Option<String>,
    pub error: Option<String>,
}

/// Draws every chart of `model`, by chart id.
pub fn draw_charts<'a>(
    charts: impl IntoIterator<Item = &'a crate::chart::Chart>,
    env: &minijinja::Environment<'_>,
) -> BTreeMap<String, Drawn> {
    charts
        .into_iter()
        .map(|c| {
            let drawn = match svg::render(c, env) {
                Ok(s) => Drawn {
                    svg: Some(s),
                    error: None,
                },
                Err(e) => {
                    tracing::warn!(chart = %c.id, error = %e, "chart not drawn");
                    Drawn {
                        svg: None,
                        error: Some(e.to_string()),
                    }
                }
            };
            (c.id.clone(), drawn)
        })
        .collect()
}

/// One line under the title: target, start, length.
pub fn subtitle(run: &RunFile) -> String {
    let m = &run.meta;
    format!(
        "{} · {} over {} · started {} · {} · swarm {}",
        m.target_url,
        m.protocol,
        m.transport,
        format::unix_ms_to_utc(m.started_at_unix_ms),
        format::seconds(m.ended_at_unix_ms.saturating_sub(m.started_at_unix_ms) as f64 / 1000.0),
        m.swarm_version
    )
}

/// Renders `run` as a self-contained HTML page.
pub fn render_html(run: &RunFile) -> Result<String, RenderError> {
    let model = ReportModel::new(run);
    let env = templates::environment()?;
    let drawn = draw_charts(model.charts(), &env);
    let html = env
        .get_template("report.html")?
        .render(minijinja::context! {
            r => model,
            drawn => drawn,
            sub => subtitle(run),
            schema_version => run.schema_version,
        })?;
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::example_run;

    #[test]
    fn renders_every_section_with_charts() {
        let html = render_html(&example_run(50)).expect("render");
        assert!(html.starts_with("<!doctype html>"), "{}", &html[..40]);
        for needle in [
            "data-section=\"run\"",
            "data-section=\"connections\"",
            "data-section=\"latency\"",
            "data-section=\"failures\"",
            "data-section=\"health\"",
            "data-chart=\"latency-spectrum\"",
            "2023-11-14 22:13:20 UTC",
        ] {
            assert!(html.contains(needle), "missing {needle}");
        }
        assert!(
            !html.contains("data-section=\"broadcast\""),
            "no broadcast data"
        );
        assert!(!html.contains("<script"), "no script");
        assert!(!html.contains("class=\"chart-error\""), "every chart drawn");
        assert!(html.matches("<svg").count() >= 8);
        assert!(html.contains("<title>p99: "), "hover titles on points");
    }

    #[test]
    fn hostile_strings_are_escaped() {
        let mut run = example_run(5);
        run.meta.target_url = "http://x/<script>alert(1)</script>".into();
        run.run
            .disconnects
            .insert("<img src=x onerror=alert(1)>".into(), 1);
        run.run
            .errors
            .insert("</title><script>x()</script>".into(), 2);
        run.phases[0].name = "\"><b>".into();
        run.meta.plan[0].name = "<svg onload=alert(1)>".into();
        let html = render_html(&run).expect("render");
        assert!(!html.contains("<script>"), "script tag escaped");
        assert!(!html.contains("<img src=x"), "img tag escaped");
        assert!(!html.contains("\"><b>"), "quotes escaped");
        assert!(!html.contains("<svg onload"), "svg text escaped");
        assert!(html.contains("&lt;script&gt;"));
    }

    #[test]
    fn saturation_banner_and_threshold_verdict() {
        let mut run = example_run(5);
        run.health.summary.saturated = true;
        run.health.summary.saturated_seconds = 4;
        run.health.summary.saturated_by = vec!["cpu".into()];
        run.thresholds.push(crate::ThresholdResult {
            expr: "connect.failed == 0".into(),
            observed: Some(2.0),
            unit: String::new(),
            pass: false,
            note: None,
        });
        let html = render_html(&run).expect("render");
        assert!(html.contains("class=\"banner warn\" data-banner"));
        assert!(html.contains("describe the swarm, not the server"));
        assert!(html.contains("FAIL: 1 of 1 thresholds failed"));
        assert!(html.contains("connect.failed == 0"));
    }
}

//! Draws a [`Chart`] as inline SVG with plotters, plus a layer of hover targets.
//!
//! Receives a chart specification and the template environment; emits one `<svg>` element
//! as a string. plotters (SVG backend, no `ttf` feature: the browser lays out the text)
//! draws axes, lines, bars and labels and escapes every text it writes. plotters cannot
//! attach a `<title>` to what it draws, so after it is done a transparent hover target with
//! a `<title>` (the value, as the axis would print it) is added over each point and bar,
//! rendered by the `hits.svg` template (auto-escaped) and placed before `</svg>`.
//! Must not: write markup with `format!`, or let a drawing failure abort the whole report
//! (the caller shows the error in place of the chart).

use std::ops::Range;

use minijinja::Environment;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Serialize;

use super::{
    Axis, BarSeries, Bin, Body, Chart, Scale, Series, Ticks, Unit, transform, untransform,
};

/// Size of every chart in SVG user units (the page scales it to its column).
pub const SIZE: (u32, u32) = (720, 300);

/// Points per series up to which each point gets a visible dot.
const DOTS_UP_TO: usize = 120;

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("cannot draw chart `{id}`: {why}")]
    Draw { id: String, why: String },
    #[error("cannot render the hover layer of chart `{id}`: {source}")]
    Hits {
        id: String,
        source: minijinja::Error,
    },
}

/// One hover target in SVG pixels: a circle (`r > 0`) or a rectangle.
#[derive(Debug, Clone, Serialize)]
struct Hit {
    x: i32,
    y: i32,
    r: u32,
    w: i32,
    h: i32,
    title: String,
}

fn color(hex: &str) -> RGBColor {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap_or(0x555555);
    RGBColor((v >> 16) as u8, (v >> 8) as u8, v as u8)
}

/// A linear f64 axis whose ticks are exactly the given positions (plotters' own
/// key-point wrapper cannot take a label formatter).
struct TickedAxis {
    inner: RangedCoordf64,
    at: Vec<f64>,
}

impl TickedAxis {
    fn new(t: &Ticks) -> TickedAxis {
        TickedAxis {
            inner: (t.lo..t.hi).into(),
            at: t.at.clone(),
        }
    }
}

impl Ranged for TickedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.at.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

/// A position on an axis for a value; values a log axis cannot place sit at its floor.
fn place(scale: Scale, t: &Ticks, v: f64) -> f64 {
    transform(scale, v).unwrap_or(t.lo).clamp(t.lo, t.hi)
}

fn all_y(chart: &Chart) -> Vec<f64> {
    let mut ys: Vec<f64> = match &chart.body {
        Body::Lines { series } => series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .collect(),
        Body::Bars { series, .. } => series
            .iter()
            .flat_map(|s| s.values.iter().flatten().copied())
            .collect(),
        Body::Histogram { bins, .. } => bins.iter().map(|b| b.count as f64).collect(),
    };
    ys.extend(chart.guides.iter().map(|g| g.at));
    ys.retain(|v| v.is_finite());
    ys
}

fn x_ticks(chart: &Chart) -> Ticks {
    match &chart.body {
        Body::Lines { series } => {
            let mut xs: Vec<f64> = series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.0))
                .collect();
            xs.extend(chart.markers.iter().map(|m| m.at));
            xs.retain(|v| v.is_finite());
            chart.x.ticks(xs, chart.x.unit == Unit::Seconds)
        }
        Body::Bars { categories, .. } => {
            let n = categories.len().max(1);
            Ticks {
                lo: 0.0,
                hi: n as f64,
                at: (0..n).map(|i| i as f64 + 0.5).collect(),
            }
        }
        Body::Histogram { bins, .. } => {
            let xs = bins.iter().flat_map(|b| [b.lo, b.hi]);
            chart
                .x
                .ticks(xs.chain(chart.markers.iter().map(|m| m.at)), false)
        }
    }
}

fn label_of(axis: &Axis, categories: &[String], t: f64) -> String {
    if axis.unit == Unit::Category {
        let i = t.floor().max(0.0) as usize;
        let name = categories.get(i).map(String::as_str).unwrap_or("");
        let short: String = name.chars().take(18).collect();
        if short.len() < name.len() {
            format!("{short}…")
        } else {
            short
        }
    } else {
        axis.tick_text(untransform(axis.scale, t))
    }
}

fn err(chart: &Chart) -> impl Fn(String) -> ChartError + '_ {
    move |why| ChartError::Draw {
        id: chart.id.clone(),
        why,
    }
}

/// Draws `chart`; returns one `<svg>` element.
pub fn render(chart: &Chart, env: &Environment<'_>) -> Result<String, ChartError> {
    let xt = x_ticks(chart);
    let yt = chart.y.ticks(all_y(chart), chart.y.scale == Scale::Linear);
    let mut buf = String::new();
    let hits = draw(chart, &xt, &yt, &mut buf).map_err(err(chart))?;
    let layer = env
        .get_template("hits.svg")
        .and_then(|t| t.render(minijinja::context! { hits => hits }))
        .map_err(|source| ChartError::Hits {
            id: chart.id.clone(),
            source,
        })?;
    let end = buf
        .rfind("</svg>")
        .ok_or_else(|| err(chart)("plotters wrote no closing </svg>".into()))?;
    buf.insert_str(end, &layer);
    Ok(buf)
}

fn draw(chart: &Chart, xt: &Ticks, yt: &Ticks, buf: &mut String) -> Result<Vec<Hit>, String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let root = SVGBackend::with_string(buf, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let categories: &[String] = match &chart.body {
        Body::Bars { categories, .. } => categories,
        _ => &[],
    };
    let mut cc = ChartBuilder::on(&root)
        .margin(12)
        .margin_right(24)
        .x_label_area_size(44)
        .y_label_area_size(78)
        .build_cartesian_2d(TickedAxis::new(xt), TickedAxis::new(yt))
        .map_err(|x| e(&x))?;
    let xfmt = |t: &f64| label_of(&chart.x, categories, *t);
    let yfmt = |t: &f64| label_of(&chart.y, categories, *t);
    let grid = RGBColor(225, 225, 225);
    cc.configure_mesh()
        .x_desc(chart.x.label.as_str())
        .y_desc(chart.y.label.as_str())
        .x_label_formatter(&xfmt)
        .y_label_formatter(&yfmt)
        .bold_line_style(grid)
        .light_line_style(TRANSPARENT)
        .axis_style(RGBColor(120, 120, 120))
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .draw()
        .map_err(|x| e(&x))?;
    draw_guides(&mut cc, chart, xt, yt)?;
    let hits = match &chart.body {
        Body::Lines { series } => draw_lines(&mut cc, chart, xt, yt, series)?,
        Body::Bars { categories, series } => draw_bars(&mut cc, chart, yt, categories, series)?,
        Body::Histogram { name, bins } => draw_histogram(&mut cc, chart, xt, yt, name, bins)?,
    };
    drop(cc);
    root.present().map_err(|x| e(&x))?;
    Ok(hits)
}

/// The chart's coordinate system: both axes ticked by [`Ticks`].
type Plot<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<TickedAxis, TickedAxis>>;

/// Phase markers (vertical, grey) and guides (horizontal, orange), each with its label.
fn draw_guides(cc: &mut Plot<'_, '_>, chart: &Chart, xt: &Ticks, yt: &Ticks) -> Result<(), String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let grey = RGBColor(110, 110, 110);
    for m in &chart.markers {
        let x = place(chart.x.scale, xt, m.at);
        cc.draw_series(DashedLineSeries::new(
            [(x, yt.lo), (x, yt.hi)],
            4,
            4,
            grey.stroke_width(1),
        ))
        .map_err(|x| e(&x))?;
        cc.draw_series(std::iter::once(Text::new(
            m.label.clone(),
            (x, yt.hi),
            ("sans-serif", 12)
                .into_font()
                .color(&grey)
                .pos(Pos::new(HPos::Left, VPos::Top)),
        )))
        .map_err(|x| e(&x))?;
    }
    let warn = RGBColor(200, 120, 0);
    for g in &chart.guides {
        let y = place(chart.y.scale, yt, g.at);
        cc.draw_series(DashedLineSeries::new(
            [(xt.lo, y), (xt.hi, y)],
            6,
            4,
            warn.stroke_width(1),
        ))
        .map_err(|x| e(&x))?;
        cc.draw_series(std::iter::once(Text::new(
            g.label.clone(),
            (xt.hi, y),
            ("sans-serif", 12)
                .into_font()
                .color(&warn)
                .pos(Pos::new(HPos::Right, VPos::Bottom)),
        )))
        .map_err(|x| e(&x))?;
    }
    Ok(())
}

/// Lines (dashed when asked, dotted points when few), with a hover target per point.
fn draw_lines(
    cc: &mut Plot<'_, '_>,
    chart: &Chart,
    xt: &Ticks,
    yt: &Ticks,
    series: &[Series],
) -> Result<Vec<Hit>, String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let px = |cc: &Plot<'_, '_>, x: f64, y: f64| cc.backend_coord(&(x, y));
    let mut hits = Vec::new();
    for s in series {
        let c = color(s.color);
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| (place(chart.x.scale, xt, x), place(chart.y.scale, yt, y)))
            .collect();
        if s.dashed {
            cc.draw_series(DashedLineSeries::new(pts.clone(), 8, 5, c.stroke_width(2)))
                .map_err(|x| e(&x))?;
        } else {
            cc.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(|x| e(&x))?;
        }
        if pts.len() <= DOTS_UP_TO {
            cc.draw_series(pts.iter().map(|p| Circle::new(*p, 2, c.filled())))
                .map_err(|x| e(&x))?;
        }
        for (&(x, y), &(tx, ty)) in s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .zip(&pts)
        {
            let (cx, cy) = px(cc, tx, ty);
            hits.push(Hit {
                x: cx,
                y: cy,
                r: 5,
                w: 0,
                h: 0,
                title: format!(
                    "{}: {} ({} {})",
                    s.name,
                    chart.y.text(y),
                    chart.x.label,
                    chart.x.text(x)
                ),
            });
        }
    }
    Ok(hits)
}

/// Grouped bars, one group per category, with a hover target per bar.
fn draw_bars(
    cc: &mut Plot<'_, '_>,
    chart: &Chart,
    yt: &Ticks,
    categories: &[String],
    series: &[BarSeries],
) -> Result<Vec<Hit>, String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let px = |cc: &Plot<'_, '_>, x: f64, y: f64| cc.backend_coord(&(x, y));
    let mut hits = Vec::new();
    let n = series.len().max(1) as f64;
    let width = 0.8 / n;
    for (g, s) in series.iter().enumerate() {
        let c = color(s.color);
        for (i, v) in s.values.iter().enumerate() {
            let Some(v) = v.filter(|v| v.is_finite()) else {
                continue;
            };
            let x0 = i as f64 + 0.1 + width * g as f64;
            let x1 = x0 + width;
            let y1 = place(chart.y.scale, yt, v);
            let y0 = yt.lo.max(place(chart.y.scale, yt, 0.0).min(y1));
            cc.draw_series(std::iter::once(Rectangle::new(
                [(x0, y0), (x1, y1)],
                c.filled(),
            )))
            .map_err(|x| e(&x))?;
            hits.push(rect_hit(
                px(cc, x0, y1),
                px(cc, x1, y0),
                format!(
                    "{} · {}: {}",
                    categories.get(i).map(String::as_str).unwrap_or(""),
                    s.name,
                    chart.y.text(v)
                ),
            ));
        }
    }
    Ok(hits)
}

/// Histogram bins as adjacent bars, with a hover target per bin.
fn draw_histogram(
    cc: &mut Plot<'_, '_>,
    chart: &Chart,
    xt: &Ticks,
    yt: &Ticks,
    name: &str,
    bins: &[Bin],
) -> Result<Vec<Hit>, String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let px = |cc: &Plot<'_, '_>, x: f64, y: f64| cc.backend_coord(&(x, y));
    let mut hits = Vec::new();
    let c = color(super::PALETTE[0]);
    for b in bins {
        let x0 = place(chart.x.scale, xt, b.lo);
        let x1 = place(chart.x.scale, xt, b.hi);
        let y1 = place(chart.y.scale, yt, b.count as f64);
        let y0 = yt.lo;
        cc.draw_series(std::iter::once(Rectangle::new(
            [(x0, y0), (x1, y1)],
            c.mix(0.85).filled(),
        )))
        .map_err(|x| e(&x))?;
        hits.push(rect_hit(
            px(cc, x0, y1),
            px(cc, x1, y0),
            format!(
                "{} – {}: {} {}",
                chart.x.text(b.lo),
                chart.x.text(b.hi),
                crate::format::count(b.count),
                name
            ),
        ));
    }
    Ok(hits)
}

fn rect_hit(top_left: (i32, i32), bottom_right: (i32, i32), title: String) -> Hit {
    let (x0, y0) = top_left;
    let (x1, y1) = bottom_right;
    Hit {
        x: x0.min(x1),
        y: y0.min(y1),
        r: 0,
        w: (x1 - x0).abs().max(2),
        h: (y1 - y0).abs().max(2),
        title,
    }
}

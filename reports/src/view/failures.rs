//! Section "Disconnects and errors": why connections ended, which errors happened, when,
//! (with churn) how drops and reconnects went, and (when connections were lost) the outage:
//! clients away over time and how they came back.
//!
//! Receives a [`RunFile`]; emits the `failures` [`Section`], or none when nothing ended
//! abnormally, nothing failed and no churn ran.
//! Must not: count the swarm's own orderly closes (`client_close`) as failures.

use super::Section;
use super::common::{
    DIST_HEAD, Pick, Table, color, connect_kind, dist_row, phase_markers, sum, time_axis,
};
use crate::chart::{Axis, BarSeries, Body, Chart, Scale, Series, Unit};
use crate::format::{self, count};
use crate::schema::{ChurnStats, OutageStats, RunFile, SecondPoint, Section as Span};

fn bars(
    id: &str,
    title: &str,
    caption: &str,
    what: &str,
    items: &[(String, u64)],
    c: usize,
) -> Chart {
    Chart {
        id: id.into(),
        title: title.into(),
        caption: caption.into(),
        x: Axis::new(what, Unit::Category, Scale::Linear),
        y: Axis::new("count", Unit::Count, Scale::Linear),
        body: Body::Bars {
            categories: items.iter().map(|(k, _)| k.clone()).collect(),
            series: vec![BarSeries {
                name: "count".into(),
                color: color(c),
                values: items.iter().map(|(_, v)| Some(*v as f64)).collect(),
            }],
        },
        markers: Vec::new(),
        guides: Vec::new(),
    }
}

fn sorted(items: impl IntoIterator<Item = (String, u64)>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = items.into_iter().filter(|(_, n)| *n > 0).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

pub fn section(run: &RunFile) -> Option<Section> {
    let r = &run.run;
    let orderly = sum(r
        .disconnects
        .iter()
        .filter(|(k, _)| crate::schema::is_orderly_disconnect(k))
        .map(|(_, v)| v));
    let abnormal = sorted(
        r.disconnects
            .iter()
            .filter(|(k, _)| !crate::schema::is_orderly_disconnect(k))
            .map(|(k, v)| (k.clone(), *v)),
    );
    let errors = sorted(
        r.connect
            .failed_by_kind
            .iter()
            .map(|(k, v)| (connect_kind(k), *v))
            .chain(r.errors.iter().map(|(k, v)| (k.clone(), *v))),
    );
    let over_time = failure_series(run);
    let only_orderly = abnormal.is_empty()
        && errors.is_empty()
        && r.connect.failed == 0
        && r.churn.is_none()
        && r.outage.is_none()
        && !run
            .series
            .iter()
            .any(|p| p.errors > 0 || p.connect_failed > 0 || p.timeouts > 0);
    if only_orderly {
        return None;
    }
    let mut s = Section::new("failures", "Disconnects and errors");
    lead(&mut s, &abnormal, &errors, orderly);
    if !abnormal.is_empty() {
        s.charts.push(bars(
            "disconnects-by-reason",
            "Disconnects by reason",
            "Connections that ended other than by the swarm's own close, by the reason the \
             client observed.",
            "reason",
            &abnormal,
            1,
        ));
    }
    if !errors.is_empty() {
        s.charts.push(bars(
            "errors-by-kind",
            "Errors by kind",
            "Connect failures and errors during the run, by kind.",
            "kind",
            &errors,
            3,
        ));
    }
    if !over_time.is_empty() {
        s.charts.push(Chart {
            id: "failures-over-time".into(),
            title: "Failures over time".into(),
            caption: "Per second: connect failures, echo timeouts, errors and ended connections \
                      (every reason, orderly closes included)."
                .into(),
            x: time_axis(),
            y: Axis::new("per second", Unit::Count, Scale::Linear),
            body: Body::Lines { series: over_time },
            markers: phase_markers(run),
            guides: Vec::new(),
        });
    }
    if let Some(o) = &r.outage {
        outage(&mut s, run, o);
    }
    reason_tables(&mut s, r, &errors);
    if let Some(c) = &r.churn {
        churn_tables(&mut s, c);
    }
    Some(s)
}

/// Per-second failure counts, the kinds that happened at all.
fn failure_series(run: &RunFile) -> Vec<Series> {
    let per_second: [Pick<SecondPoint>; 4] = [
        ("connect failures", |p| p.connect_failed),
        ("timeouts", |p| p.timeouts),
        ("errors", |p| p.errors),
        ("disconnects", |p| p.disconnects),
    ];
    per_second
        .iter()
        .enumerate()
        .filter(|(_, (_, f))| run.series.iter().any(|p| f(p) > 0))
        .map(|(i, (name, f))| Series {
            name: name.to_string(),
            color: color(i + 1),
            points: run
                .series
                .iter()
                .map(|p| (p.second as f64, f(p) as f64))
                .collect(),
            dashed: false,
        })
        .collect()
}

/// How many connections ended abnormally and orderly, and how many errors, by top kinds.
fn lead(s: &mut Section, abnormal: &[(String, u64)], errors: &[(String, u64)], orderly: u64) {
    let total_abnormal = sum(abnormal.iter().map(|(_, v)| v));
    let total_errors = sum(errors.iter().map(|(_, v)| v));
    s.lead.push(format!(
        "{} ended other than by the swarm's own close{}; {} by the swarm's own orderly close.",
        format::plural(total_abnormal, "connection", "connections"),
        if abnormal.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                abnormal
                    .iter()
                    .take(4)
                    .map(|(k, v)| format!("{k} {}", count(*v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        format::plural(orderly, "connection ended", "connections ended")
    ));
    s.lead.push(format!(
        "{} (connect failures included){}.",
        format::plural(total_errors, "error", "errors"),
        if errors.is_empty() {
            String::new()
        } else {
            format!(
                ": {}",
                errors
                    .iter()
                    .take(4)
                    .map(|(k, v)| format!("{k} {}", count(*v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    ));
}

/// Every disconnect reason (orderly ones named as such) and every error kind.
fn reason_tables(s: &mut Section, r: &Span, errors: &[(String, u64)]) {
    let all_ended = sum(r.disconnects.values());
    let mut t = Table::new("Disconnects by reason", &["reason", "connections", "share"]);
    let mut reasons: Vec<(String, u64)> =
        r.disconnects.iter().map(|(k, v)| (k.clone(), *v)).collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (k, v) in reasons {
        let name = if k == "client_close" {
            "client_close (the swarm's own close)".to_string()
        } else if k == "client_drop" {
            "client_drop (the swarm's churn drop)".to_string()
        } else {
            k
        };
        t.push(vec![name, count(v), format::share(v, all_ended)]);
    }
    if !t.rows.is_empty() {
        s.tables.push(t);
    }
    if !errors.is_empty() {
        let mut t = Table::new("Errors by kind", &["kind", "count"]);
        for (k, v) in errors {
            t.push(vec![k.clone(), count(*v)]);
        }
        s.tables.push(t);
    }
}

/// Drops, reconnects and reconnect time.
fn churn_tables(s: &mut Section, c: &ChurnStats) {
    let mut t = Table::new(
        "Churn",
        &[
            "drops",
            "reconnects",
            "reconnect failures",
            "sessions recovered",
            "messages sent while away",
            "most while one client was away",
        ],
    );
    t.push(vec![
        count(c.drops),
        format!(
            "{} ({})",
            count(c.reconnects),
            format::share(c.reconnects, c.drops)
        ),
        count(c.reconnect_failures),
        format!(
            "{} ({})",
            count(c.recovered_sessions),
            format::share(c.recovered_sessions, c.reconnects)
        ),
        count(c.away_messages),
        count(c.away_messages_max),
    ]);
    s.tables.push(t);
    let mut d = Table::new("Reconnect time (drop to re-join ack)", &DIST_HEAD);
    d.push(dist_row("reconnect", &c.reconnect));
    s.tables.push(d);
}

/// The outage: clients away over time (with losses, restores and the echo sends skipped
/// meanwhile), and a table of how clients came back.
fn outage(s: &mut Section, run: &RunFile, o: &OutageStats) {
    let skipped = run.run.echo.as_ref().map_or(0, |e| e.skipped_disconnected);
    let when = match (o.first_loss_offset_ms, o.last_restore_offset_ms) {
        (Some(a), Some(b)) => format!(
            " The first was lost {:.1} s into the run, the last came back at {:.1} s.",
            a as f64 / 1e3,
            b as f64 / 1e3
        ),
        (Some(a), None) => format!(" The first was lost {:.1} s into the run.", a as f64 / 1e3),
        _ => String::new(),
    };
    s.lead.push(format!(
        "Outage: {} lost (the target closed, reset or stopped answering them); {} back, {} \
         not back by the end of their phase; {} sends could not happen while disconnected.{when}",
        format::plural(o.connections_lost, "connection", "connections"),
        count(o.restored),
        count(o.clients_not_restored),
        count(skipped),
    ));
    let per_second: [Pick<SecondPoint>; 4] = [
        ("clients away", |p| p.clients_away),
        ("connections lost", |p| p.connections_lost),
        ("restored", |p| p.restored),
        ("sends skipped", |p| p.skipped_disconnected),
    ];
    let lines: Vec<Series> = per_second
        .iter()
        .enumerate()
        .filter(|(i, (_, f))| *i == 0 || run.series.iter().any(|p| f(p) > 0))
        .map(|(i, (name, f))| Series {
            name: name.to_string(),
            color: color(i + 5),
            points: run
                .series
                .iter()
                .map(|p| {
                    (
                        p.second.saturating_add(u64::from(i == 0)) as f64,
                        f(p) as f64,
                    )
                })
                .collect(),
            dashed: i > 0,
        })
        .collect();
    if !run.series.is_empty() {
        s.charts.push(Chart {
            id: "outage-over-time".into(),
            title: "Outage over time".into(),
            caption: "Clients whose connection was lost and not yet replaced (end of each \
                      second), with connections lost, restored, and echo sends skipped while \
                      disconnected, per second."
                .into(),
            x: time_axis(),
            y: Axis::new("clients / per second", Unit::Count, Scale::Linear),
            body: Body::Lines { series: lines },
            markers: phase_markers(run),
            guides: Vec::new(),
        });
    }
    let mut t = Table::new(
        "Outage",
        &[
            "connections lost",
            "restored",
            "not restored",
            "reconnect attempts",
            "failed attempts",
            "most away at once",
            "sends skipped",
        ],
    );
    t.push(vec![
        count(o.connections_lost),
        format!(
            "{} ({})",
            count(o.restored),
            format::share(o.restored, o.connections_lost)
        ),
        count(o.clients_not_restored),
        count(o.reconnect_attempts),
        count(o.reconnect_failures),
        count(o.peak_clients_away),
        count(skipped),
    ]);
    s.tables.push(t);
    if o.restore.count > 0 {
        let mut d = Table::new("Time to restore (loss to connected again)", &DIST_HEAD);
        d.push(dist_row("restore", &o.restore));
        s.tables.push(d);
    }
}

//! Section "Swarm health": the swarm's own CPU, memory and scheduler lag each second, with
//! the lines past which a second counts as saturated.
//!
//! Receives a [`RunFile`]'s `health`; emits the `health` [`Section`], or none when no
//! health was recorded.
//! Must not: draw saturation lines anywhere but where [`crate::saturation`] puts them.

use super::Section;
use super::common::{Table, color, phase_markers, time_axis};
use crate::chart::{Axis, Body, Chart, Marker, Scale, Series, Unit};
use crate::format::{self, format_bytes, format_us};
use crate::saturation::{CPU_SATURATION_SHARE, LAG_SATURATION_US};
use crate::schema::RunFile;

pub fn section(run: &RunFile) -> Option<Section> {
    let h = &run.health;
    if h.series.is_empty() {
        return None;
    }
    let sm = &h.summary;
    let cores = h.cores.max(1);
    let mut s = Section::new("health", "Swarm health");
    s.lead.push(format!(
        "The swarm used up to {} CPU ({} on average; 100% = one core, {} available), up to {} \
         of memory, and its scheduler ran up to {} late. {}",
        format::percent(sm.cpu_percent_max),
        format::percent(sm.cpu_percent_mean),
        format::plural(u64::from(cores), "core", "cores"),
        format_bytes(sm.rss_bytes_max),
        format_us(sm.sched_lag_max_us),
        if sm.saturated {
            format!(
                "It was saturated for {}: the numbers of this run describe the swarm.",
                format::plural(sm.saturated_seconds, "second", "seconds")
            )
        } else if sm.saturated_seconds > 0 {
            format!(
                "{} crossed a saturation line, too few to matter.",
                format::plural(sm.saturated_seconds, "second", "seconds")
            )
        } else {
            "It was never the bottleneck.".to_string()
        }
    ));
    charts(&mut s, run, cores);
    facts(&mut s, run);
    workers(&mut s, run);
    Some(s)
}

/// A run of several processes: one row per worker (its share, its own health, its clock).
fn workers(s: &mut Section, run: &RunFile) {
    if run.workers.is_empty() {
        return;
    }
    let mut t = Table::new(
        "Worker processes (their own figures; the run's are merged from them)",
        &[
            "worker",
            "host",
            "pid",
            "clients",
            "connects",
            "errors",
            "CPU",
            "peak RSS",
            "scheduler lag max",
            "clock offset",
            "saturated",
            "status",
        ],
    );
    let several = run.workers.iter().any(|w| !w.target.is_empty());
    if several {
        t.head.insert(1, "target".into());
    }
    for w in &run.workers {
        let mut row = vec![
            w.index.to_string(),
            w.host.clone(),
            w.pid.to_string(),
            w.clients.to_string(),
            w.connects.to_string(),
            w.errors.to_string(),
            format!("{:.1} s", w.cpu_seconds),
            format_bytes(w.peak_rss_bytes),
            format_us(w.sched_lag_max_us),
            format!(
                "{:+.0} µs ± {:.0} µs",
                w.clock_offset_us, w.clock_offset_bound_us
            ),
            if w.saturated { "yes" } else { "no" }.to_string(),
            match &w.lost_reason {
                Some(why) => format!("{}: {why}", w.status),
                None => w.status.clone(),
            },
        ];
        if several {
            row.insert(1, w.target.clone());
        }
        t.rows.push(row);
    }
    s.tables.push(t);
}

/// CPU, scheduler lag and memory per second, with the saturation lines.
fn charts(s: &mut Section, run: &RunFile, cores: u32) {
    let h = &run.health;
    let secs = |f: fn(&crate::HealthPoint) -> f64| -> Vec<(f64, f64)> {
        h.series.iter().map(|p| (p.second as f64, f(p))).collect()
    };
    let all_cores = f64::from(cores) * 100.0;
    s.charts.push(Chart {
        id: "health-cpu".into(),
        title: "Swarm CPU".into(),
        caption: "CPU used by the swarm process each second (100% = one core busy); past the \
                  dashed line the swarm is saturated."
            .into(),
        x: time_axis(),
        y: Axis::new("CPU", Unit::Percent, Scale::Linear),
        body: Body::Lines {
            series: vec![Series {
                name: "CPU".into(),
                color: color(0),
                points: secs(|p| p.cpu_percent),
                dashed: false,
            }],
        },
        markers: phase_markers(run),
        guides: vec![Marker {
            at: all_cores * CPU_SATURATION_SHARE,
            label: format!(
                "saturation ({} of {})",
                format::percent(CPU_SATURATION_SHARE * 100.0),
                format::plural(u64::from(cores), "core", "cores")
            ),
        }],
    });
    s.charts.push(Chart {
        id: "health-lag".into(),
        title: "Scheduler lag".into(),
        caption: "How late a 10 ms ticker on the swarm's runtime fired, worst and mean per \
                  second; a late ticker means late sends and late reads."
            .into(),
        x: time_axis(),
        y: Axis::new("lag", Unit::Micros, Scale::Linear),
        body: Body::Lines {
            series: vec![
                Series {
                    name: "max".into(),
                    color: color(1),
                    points: secs(|p| p.sched_lag_max_us as f64),
                    dashed: false,
                },
                Series {
                    name: "mean".into(),
                    color: color(0),
                    points: secs(|p| p.sched_lag_mean_us as f64),
                    dashed: true,
                },
            ],
        },
        markers: phase_markers(run),
        guides: vec![Marker {
            at: LAG_SATURATION_US as f64,
            label: "saturation".into(),
        }],
    });
    s.charts.push(Chart {
        id: "health-rss".into(),
        title: "Swarm memory".into(),
        caption: "Resident memory of the swarm process at the end of each second.".into(),
        x: time_axis(),
        y: Axis::new("RSS", Unit::Bytes, Scale::Linear),
        body: Body::Lines {
            series: vec![Series {
                name: "RSS".into(),
                color: color(2),
                points: secs(|p| p.rss_bytes as f64),
                dashed: false,
            }],
        },
        markers: phase_markers(run),
        guides: Vec::new(),
    });
}

/// The health summary as name/value pairs (send lag and dropped samples when any).
fn facts(s: &mut Section, run: &RunFile) {
    let sm = &run.health.summary;
    let mut t = Table::new("", &[]);
    t.pair(
        "CPU",
        format!(
            "max {}, mean {}",
            format::percent(sm.cpu_percent_max),
            format::percent(sm.cpu_percent_mean)
        ),
    );
    t.pair("RSS", format!("max {}", format_bytes(sm.rss_bytes_max)));
    t.pair(
        "scheduler lag",
        format!(
            "max {}, mean {}",
            format_us(sm.sched_lag_max_us),
            format_us(sm.sched_lag_mean_us)
        ),
    );
    if sm.steal_percent_max > 0.0 {
        t.pair(
            "machine steal",
            format!(
                "max {} of the machine's CPU given by the hypervisor to other guests",
                format::percent(sm.steal_percent_max)
            ),
        );
    }
    t.pair(
        "saturated",
        format!(
            "{} ({}){}",
            if sm.saturated { "yes" } else { "no" },
            format::plural(sm.saturated_seconds, "second", "seconds"),
            if sm.saturated_by.is_empty() {
                String::new()
            } else {
                format!(", by {}", sm.saturated_by.join(" and "))
            }
        ),
    );
    if let Some(d) = run.run.send_lag.as_ref().filter(|d| d.count > 0) {
        t.pair(
            "send lag",
            format!(
                "p50 {}, p99 {}, max {} over {} sends (actual minus intended send instant; \
                 part of every latency, not of service)",
                format_us(d.p50_us),
                format_us(d.p99_us),
                format_us(d.max_us),
                d.count
            ),
        );
    }
    if sm.samples_dropped > 0 {
        t.pair(
            "samples dropped",
            format!(
                "{}: the recorder fell behind; every count of this run is short",
                sm.samples_dropped
            ),
        );
    }
    s.tables.push(t);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A merged run shows a row per worker, with its status and why it was lost.
    #[test]
    fn workers_get_a_table_of_their_own() {
        let mut run = crate::fixture::example_run(20);
        assert!(section(&run).is_some_and(|s| s.tables.len() == 1));
        run.workers = vec![
            crate::schema::WorkerResult {
                index: 0,
                host: "a".into(),
                status: "completed".into(),
                saturated: true,
                ..Default::default()
            },
            crate::schema::WorkerResult {
                index: 1,
                host: "b".into(),
                status: "lost".into(),
                lost_reason: Some("sent nothing for 15 s".into()),
                ..Default::default()
            },
        ];
        let s = section(&run).expect("health section");
        let t = s.tables.last().expect("workers table");
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0][10], "yes");
        assert_eq!(t.rows[1][11], "lost: sent nothing for 15 s");
        assert!(!t.head.iter().any(|h| h == "target"));
        // Several targets: a column names each worker's, and the run section lists them.
        let mut several = run.clone();
        several.workers[0].target = "http://127.0.0.1:1/".into();
        several.workers[1].target = "http://127.0.0.2:1/".into();
        several.targets = vec![crate::schema::TargetResult {
            url: "http://127.0.0.1:1/".into(),
            workers: vec![0],
            clients: 3,
            run: several.run.clone(),
        }];
        let t = section(&several)
            .expect("health")
            .tables
            .pop()
            .expect("workers");
        assert_eq!(
            (t.head[1].as_str(), t.rows[1][1].as_str()),
            ("target", "http://127.0.0.2:1/")
        );
        let info = super::super::run_info::section(&several);
        let targets = info.tables.last().expect("targets table");
        assert!(
            targets.caption.starts_with("Targets"),
            "{}",
            targets.caption
        );
        assert_eq!(targets.rows[0][..3], ["http://127.0.0.1:1/", "0", "3"]);
        // The saturation banner names the saturated worker.
        run.health.summary.saturated = true;
        run.health.summary.saturated_by = vec!["cpu".into()];
        let banner = super::super::verdict::saturation_banner(&run).expect("banner");
        assert!(
            banner.text.contains("Saturated worker(s): 0 on a."),
            "{}",
            banner.text
        );
    }
}

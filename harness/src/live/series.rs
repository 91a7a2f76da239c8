//! The exported series, built once per second from a [`LiveSecond`], and their OpenMetrics
//! text (docs/results-format.md#prometheus-series).
//!
//! Receives the second, the running latency sums ([`Accum`]) and the run's labels. Emits
//! [`Family`]s that the endpoint renders as OpenMetrics text and remote write sends as
//! time series: one list, so a scrape and a push carry the same names, labels and values.
//! Latency is a summary: its quantiles (0.5, 0.9, 0.99, and 1 = max) are those of the last
//! interval's HDR histogram, the same figures as results.json's `series`; `_count` and
//! `_sum` run over the whole run. A second without that latency has NaN quantiles.
//! Must not: write a label value unescaped.

use std::fmt::Write as _;

use super::{LiveSecond, Window};

/// The OpenMetrics type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Summary,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Summary => "summary",
        }
    }
}

/// One sample: its full name (`swarm_messages_sent_total`), its own labels, its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// One metric family.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub kind: Kind,
    pub unit: &'static str,
    pub help: &'static str,
    pub samples: Vec<Sample>,
}

/// Latency observations counted and summed over the run so far (summary `_count`, `_sum`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Accum {
    pub echo: (u64, f64),
    pub broadcast: (u64, f64),
}

impl Accum {
    /// Adds one second's windows.
    pub fn add(&mut self, s: &LiveSecond) {
        for (acc, w) in [
            (&mut self.echo, s.windows.echo),
            (&mut self.broadcast, s.windows.broadcast),
        ] {
            if let Some(w) = w {
                acc.0 += w.count;
                acc.1 += w.sum_us / 1e6;
            }
        }
    }
}

fn one(name: &'static str, kind: Kind, help: &'static str, value: u64) -> Family {
    let sample = match kind {
        Kind::Counter => format!("{name}_total"),
        _ => name.to_string(),
    };
    Family {
        name,
        kind,
        unit: "",
        help,
        samples: vec![Sample {
            name: sample,
            labels: Vec::new(),
            value: value as f64,
        }],
    }
}

fn keyed(
    name: &'static str,
    label: &str,
    help: &'static str,
    map: &std::collections::BTreeMap<String, u64>,
) -> Family {
    Family {
        name,
        kind: Kind::Counter,
        unit: "",
        help,
        samples: map
            .iter()
            .map(|(k, v)| Sample {
                name: format!("{name}_total"),
                labels: vec![(label.to_string(), k.clone())],
                value: *v as f64,
            })
            .collect(),
    }
}

fn summary(name: &'static str, help: &'static str, w: Option<Window>, acc: (u64, f64)) -> Family {
    let q = |v: Option<u64>| v.map_or(f64::NAN, |us| us as f64 / 1e6);
    let mut samples: Vec<Sample> = [
        ("0.5", w.map(|w| w.p50_us)),
        ("0.9", w.map(|w| w.p90_us)),
        ("0.99", w.map(|w| w.p99_us)),
        ("1", w.map(|w| w.max_us)),
    ]
    .into_iter()
    .map(|(quantile, v)| Sample {
        name: name.to_string(),
        labels: vec![("quantile".to_string(), quantile.to_string())],
        value: q(v),
    })
    .collect();
    samples.push(Sample {
        name: format!("{name}_sum"),
        labels: Vec::new(),
        value: acc.1,
    });
    samples.push(Sample {
        name: format!("{name}_count"),
        labels: Vec::new(),
        value: acc.0 as f64,
    });
    Family {
        name,
        kind: Kind::Summary,
        unit: "seconds",
        help,
        samples,
    }
}

/// Every family of one second.
pub fn families(s: &LiveSecond, acc: &Accum, elapsed_s: f64) -> Vec<Family> {
    use Kind::{Counter, Gauge};
    let t = &s.totals;
    let in_flight = t
        .sent
        .saturating_sub(t.received)
        .saturating_sub(t.timeouts)
        .saturating_sub(t.unanswered);
    vec![
        one(
            "swarm_connect_attempts",
            Counter,
            "Connection attempts started.",
            t.attempted,
        ),
        one(
            "swarm_connects",
            Counter,
            "Attempts that completed every connect phase.",
            t.connected,
        ),
        one(
            "swarm_connect_failures",
            Counter,
            "Attempts that failed, any kind (by kind: swarm_connect_failures_by_kind).",
            t.failed,
        ),
        keyed(
            "swarm_connect_failures_by_kind",
            "kind",
            "Failed attempts by error kind.",
            &s.failed_by_kind,
        ),
        one(
            "swarm_messages_sent",
            Counter,
            "Echo messages sent.",
            t.sent,
        ),
        one(
            "swarm_messages_received",
            Counter,
            "Echo replies received in time.",
            t.received,
        ),
        one(
            "swarm_timeouts",
            Counter,
            "Echo messages with no reply within --timeout.",
            t.timeouts,
        ),
        one(
            "swarm_late",
            Counter,
            "Echo replies that came after --timeout.",
            t.late,
        ),
        one(
            "swarm_deliveries",
            Counter,
            "Broadcast first arrivals.",
            t.delivered,
        ),
        one(
            "swarm_lost",
            Counter,
            "Broadcast messages lost (settled when a subscriber's stretch ends).",
            t.broadcast_lost,
        ),
        one(
            "swarm_errors",
            Counter,
            "Client errors (by kind: swarm_errors_by_kind).",
            t.errors,
        ),
        keyed(
            "swarm_errors_by_kind",
            "kind",
            "Client errors by kind.",
            &s.errors_by_kind,
        ),
        keyed(
            "swarm_disconnects",
            "reason",
            "Disconnects by reason (client_close and client_drop are the swarm's own).",
            &s.disconnects_by_reason,
        ),
        one(
            "swarm_connections_lost",
            Counter,
            "Established connections lost (closed, reset or silent).",
            t.connections_lost,
        ),
        one(
            "swarm_clients_connected",
            Gauge,
            "Clients connected at the end of the last second.",
            s.point.connected,
        ),
        one(
            "swarm_in_flight",
            Gauge,
            "Echo messages sent and not yet answered, timed out or written off.",
            in_flight,
        ),
        Family {
            name: "swarm_elapsed_seconds",
            kind: Gauge,
            unit: "seconds",
            help: "Seconds since the run started (end of the last closed second).",
            samples: vec![Sample {
                name: "swarm_elapsed_seconds".into(),
                labels: Vec::new(),
                value: elapsed_s,
            }],
        },
        summary(
            "swarm_echo_latency_seconds",
            "Echo latency from the intended send instant: quantiles of the last second (NaN: no reply in it), count and sum over the run.",
            s.windows.echo,
            acc.echo,
        ),
        summary(
            "swarm_broadcast_latency_seconds",
            "Broadcast one-way latency from the intended publish instant: quantiles of the last second, count and sum over the run.",
            s.windows.broadcast,
            acc.broadcast,
        ),
    ]
}

/// A label value as OpenMetrics writes it (`\`, `"` and newlines escaped).
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// The OpenMetrics text of `families`, each sample with the run's `common` labels.
pub fn openmetrics(families: &[Family], common: &[(String, String)]) -> String {
    let mut out = String::with_capacity(8 * 1024);
    for f in families.iter().filter(|f| !f.samples.is_empty()) {
        // OpenMetrics names a counter family without its `_total` suffix.
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.name());
        if !f.unit.is_empty() {
            let _ = writeln!(out, "# UNIT {} {}", f.name, f.unit);
        }
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        for s in &f.samples {
            out.push_str(&s.name);
            out.push('{');
            for (i, (k, v)) in common.iter().chain(s.labels.iter()).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{k}=\"{}\"", escape(v));
            }
            let _ = writeln!(out, "}} {}", number(s.value));
        }
    }
    out.push_str("# EOF\n");
    out
}

/// Every sample as a label set (`__name__` included, sorted by name, as remote write wants)
/// and a value.
pub fn flat(families: &[Family], common: &[(String, String)]) -> Vec<(Vec<(String, String)>, f64)> {
    let mut out = Vec::new();
    for f in families {
        for s in &f.samples {
            let mut labels: Vec<(String, String)> = Vec::with_capacity(common.len() + 2);
            labels.push(("__name__".into(), s.name.clone()));
            labels.extend(common.iter().cloned());
            labels.extend(s.labels.iter().cloned());
            labels.sort();
            out.push((labels, s.value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text names counters by family, escapes label values, and ends with `# EOF`; the
    /// summary's quantiles are the window's, in seconds.
    #[test]
    fn text_is_openmetrics() {
        let mut s = LiveSecond::default();
        s.totals.sent = 7;
        s.windows.echo = Some(Window {
            p50_us: 1500,
            p90_us: 2000,
            p99_us: 230_123,
            max_us: 300_000,
            count: 3,
            sum_us: 4000.0,
        });
        let mut acc = Accum::default();
        acc.add(&s);
        let common = vec![("target".to_string(), "ws://h/\"x\"\\".to_string())];
        let text = openmetrics(&families(&s, &acc, 1.0), &common);
        assert!(
            text.contains("# TYPE swarm_messages_sent counter\n"),
            "{text}"
        );
        assert!(
            text.contains("swarm_messages_sent_total{target=\"ws://h/\\\"x\\\"\\\\\"} 7\n"),
            "{text}"
        );
        assert!(text.contains("quantile=\"0.99\"} 0.230123\n"), "{text}");
        assert!(
            text.contains("swarm_broadcast_latency_seconds{target="),
            "{text}"
        );
        assert!(text.contains("quantile=\"0.5\"} NaN\n"), "{text}");
        assert!(text.contains("swarm_echo_latency_seconds_count{"), "{text}");
        assert!(text.ends_with("# EOF\n"));
        let f = flat(&families(&s, &acc, 1.0), &common);
        assert!(f.iter().all(|(l, _)| l.windows(2).all(|w| w[0] <= w[1])));
    }
}

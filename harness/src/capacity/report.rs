//! The terminal text of a capacity search: one line per step as it ends, the outcome in one
//! sentence, and the table of every step.
//!
//! Receives the checked search, its steps and its section. Emits plain text.
//! Must not: print (the binary prints), or decide anything (verdicts are `step.rs`'s).

use std::fmt::Write;

use reports::schema::{CapacitySection, CapacityStep};

use super::Checked;

/// A load as people write it: `1,250`, `37.5`, `0.1`.
pub fn load_text(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v.fract().abs() < 1e-9 && v.abs() < 1e15 {
        let n = v as i64;
        let s = n.abs().to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        return if n < 0 { format!("-{out}") } else { out };
    }
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn ms(us: u64) -> String {
    format!("{:.1}ms", us as f64 / 1000.0)
}

/// The latency distribution of a step's measured window (echo, broadcast) or its connects.
fn latency(s: &CapacityStep) -> Option<&reports::Distribution> {
    s.section
        .echo
        .as_ref()
        .map(|e| &e.latency)
        .or(s.section.broadcast.as_ref().map(|b| &b.latency))
        .or(s.section.connect.phases.total.as_ref())
}

/// One line for a step that just ended.
pub fn step_line(s: &CapacityStep, c: &Checked) -> String {
    let mut line = format!(
        "step {} at {} {}: {}",
        s.index,
        load_text(s.load),
        c.vary.unit(),
        s.verdict.to_uppercase()
    );
    if let Some(d) = latency(s) {
        let _ = write!(line, ", p50 {} p99 {}", ms(d.p50_us), ms(d.p99_us));
    }
    let _ = write!(line, ", {:.0}/s", s.throughput_per_s);
    let failed: Vec<&str> = s
        .slos
        .iter()
        .filter(|t| !t.pass)
        .map(|t| t.expr.as_str())
        .collect();
    if !failed.is_empty() {
        let _ = write!(line, "; failed: {}", failed.join(", "));
    }
    for r in &s.reasons {
        let _ = write!(line, "; {r}");
    }
    if !s.saturated_by.is_empty() {
        let _ = write!(line, "; swarm saturated by {}", s.saturated_by.join(", "));
    }
    if let Some(l) = &s.lengthened {
        let _ = write!(line, " ({l})");
    }
    if let Some(of) = s.repeat_of {
        let _ = write!(line, " (repeats step {of})");
    }
    if let Some(r) = &s.repeated {
        let _ = write!(line, "; {r}");
    }
    line
}

/// The outcome in one or two sentences.
pub fn summary(c: &CapacitySection) -> String {
    let unit = &c.unit;
    let l = |v: Option<f64>| v.map_or_else(|| "-".into(), load_text);
    match c.outcome.as_str() {
        "found" => format!(
            "capacity {} {unit}: the highest load that held every SLO; {} {unit} failed ({})",
            l(c.capacity),
            l(c.first_fail),
            c.failed_slos.join(", ")
        ),
        "from_fails" => format!(
            "even --from {} {unit} failed ({}): the capacity is below it; lower --from",
            load_text(c.from),
            c.failed_slos.join(", ")
        ),
        "max_passes" => format!(
            "--max {} {unit} held every SLO: the capacity is at least that; raise --max",
            load_text(c.max)
        ),
        "generator_saturated" => {
            let attempts = c
                .steps
                .iter()
                .filter(|s| Some(s.load) == c.saturated_at && s.verdict == "saturated")
                .count()
                .max(1);
            format!(
                "the generator ran out at {} {unit}: the swarm itself saturated (its CPU, \
                 scheduler or send lag, or a lost worker) at {attempts} attempt(s) at this \
                 load, so it is neither a pass nor a fail and the server's capacity is not \
                 known beyond {} {unit}. Remedy: give the swarm more room: its own cores (the \
                 server, and anything else busy, on another machine), --threads when it has \
                 idle cores, or more swarm processes (--procs N: the search then runs over N \
                 local workers) and machines (--expect-workers N and `swarm worker --join` \
                 on each, docs/DISTRIBUTED.md)",
                l(c.saturated_at),
                l(c.capacity)
            )
        }
        "interrupted" => format!(
            "interrupted; the highest load that held every SLO so far: {} {unit}",
            l(c.capacity)
        ),
        "could_not_run" => "the first step could not run".into(),
        other => other.to_string(),
    }
}

/// The table of every step, then the outcome.
pub fn table(c: &CapacitySection) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "capacity search: {} varying {} ({}), {} step(s) in {:.1}s",
        c.scenario,
        c.vary.replace('_', "-"),
        c.unit,
        c.steps.len(),
        c.wall_s
    );
    let _ = writeln!(out, "SLOs: {}", c.slos.join(", "));
    let _ = writeln!(
        out,
        "{:>4} {:>12} {:>9} {:>10} {:>10} {:>11} {:>8}  verdict",
        "step", "load", "samples", "p50", "p99", "throughput", "errors"
    );
    for s in &c.steps {
        let (p50, p99) =
            latency(s).map_or(("-".into(), "-".into()), |d| (ms(d.p50_us), ms(d.p99_us)));
        let mut verdict = s.verdict.clone();
        let failed: Vec<&str> = s
            .slos
            .iter()
            .filter(|t| !t.pass)
            .map(|t| t.expr.as_str())
            .collect();
        if !failed.is_empty() {
            let _ = write!(verdict, " ({})", failed.join(", "));
        }
        if !s.reasons.is_empty() {
            let _ = write!(verdict, " ({})", s.reasons.join("; "));
        }
        if !s.saturated_by.is_empty() {
            let _ = write!(verdict, " (swarm: {})", s.saturated_by.join(", "));
        }
        // Lengthened only when its window is longer than --step-duration; a note without
        // that (a connect step cannot be lengthened: its samples are its connects) says
        // the window had too few samples for the percentile.
        if s.measured_s > c.step_s + 1e-9 {
            verdict.push_str(" [lengthened]");
        } else if s.lengthened.is_some() {
            verdict.push_str(" [few samples]");
        }
        if s.repeated.is_some() {
            verdict.push_str(" [repeated]");
        }
        if let Some(of) = s.repeat_of {
            let _ = write!(verdict, " [repeat of step {of}]");
        }
        let _ = writeln!(
            out,
            "{:>4} {:>12} {:>9} {:>10} {:>10} {:>9.0}/s {:>8}  {}",
            s.index,
            load_text(s.load),
            s.samples,
            p50,
            p99,
            s.throughput_per_s,
            s.errors,
            verdict
        );
    }
    for s in &c.steps {
        if let Some(l) = &s.lengthened {
            let _ = writeln!(out, "step {}: {l}", s.index);
        }
        if let Some(r) = &s.repeated {
            let _ = writeln!(out, "step {}: {r}", s.index);
        }
    }
    let _ = writeln!(out, "{}", c.summary);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_read_as_written() {
        assert_eq!(load_text(1250.0), "1,250");
        assert_eq!(load_text(37.5), "37.5");
        assert_eq!(load_text(1_000_000.0), "1,000,000");
        assert_eq!(load_text(0.126), "0.13");
        assert_eq!(load_text(5.0), "5");
    }

    /// The table marks a step `[lengthened]` only when its window is longer than the
    /// step's duration; a note of too few samples in a window of that duration (a connect
    /// step's) is `[few samples]`.
    #[test]
    fn a_step_is_marked_lengthened_only_when_it_was() {
        let step = |index, measured_s, note: Option<&str>| CapacityStep {
            index,
            verdict: "pass".into(),
            measured_s,
            lengthened: note.map(String::from),
            ..CapacityStep::default()
        };
        let c = CapacitySection {
            step_s: 1.0,
            steps: vec![
                step(1, 2.5, Some("measured window lengthened from 1s to 2.5s")),
                step(2, 1.0, Some("only 50 samples in the measured window")),
                step(3, 1.0, None),
            ],
            ..CapacitySection::default()
        };
        let t = table(&c);
        let line = |i: usize| t.lines().nth(3 + i).unwrap_or_default().to_string();
        assert!(line(0).ends_with("pass [lengthened]"), "{t}");
        assert!(line(1).ends_with("pass [few samples]"), "{t}");
        assert!(line(2).ends_with("pass"), "{t}");
    }
}

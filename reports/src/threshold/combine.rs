//! Rules: thresholds joined with `and` / `or` (docs/results-format.md#thresholds-and-or).
//!
//! Receives the text of a rule such as `echo.latency.p99 < 50ms and connect.failed == 0`;
//! emits a [`Rule`] (a tree of [`Threshold`]s) or the [`ThresholdError`] of its first bad
//! part. `and` binds tighter than `or`; there are no parentheses. A rule is evaluated against
//! a run file ([`Rule::evaluate`]) or, during the run, against one second's figures
//! ([`Rule::live`], three-valued: a part with no figure this second is unknown).
//! Must not: accept an empty side of `and` / `or`, or report a compound rule as passed when
//! any part it needs could not be computed.

use super::live::{LiveFigures, live_check};
use super::{Threshold, ThresholdError, parse};
use crate::schema::{RunFile, ThresholdResult};

/// A condition: one threshold, or parts that must all hold, or of which one must.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    One(Threshold),
    All(Vec<Condition>),
    Any(Vec<Condition>),
}

/// A rule as written, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The text as written.
    pub expr: String,
    pub cond: Condition,
}

/// Parses a rule: `or` of `and` groups of thresholds (also `&&` and `||`).
pub fn parse_rule(expr: &str) -> Result<Rule, ThresholdError> {
    let err = |message: String| ThresholdError {
        expr: expr.to_string(),
        message,
    };
    let mut any: Vec<Condition> = Vec::new();
    let mut all: Vec<Condition> = Vec::new();
    let mut words: Vec<&str> = Vec::new();
    let close = |words: &mut Vec<&str>, joiner: &str| -> Result<Condition, ThresholdError> {
        if words.is_empty() {
            return Err(err(format!(
                "`{joiner}` needs a threshold on each side, e.g. `echo.latency.p99 < 50ms and \
                 connect.failed == 0`"
            )));
        }
        let text = words.join(" ");
        words.clear();
        parse(&text)
            .map(Condition::One)
            .map_err(|e| ThresholdError {
                expr: expr.to_string(),
                message: if text == expr.trim() {
                    e.message
                } else {
                    format!("in `{text}`: {}", e.message)
                },
            })
    };
    for w in expr.split_whitespace() {
        match w {
            "and" | "&&" => all.push(close(&mut words, w)?),
            "or" | "||" => {
                all.push(close(&mut words, w)?);
                any.push(group(std::mem::take(&mut all), Condition::All));
            }
            _ => words.push(w),
        }
    }
    let joiner = if all.is_empty() && any.is_empty() {
        "threshold"
    } else {
        "and/or"
    };
    all.push(close(&mut words, joiner)?);
    any.push(group(all, Condition::All));
    Ok(Rule {
        expr: expr.to_string(),
        cond: group(any, Condition::Any),
    })
}

/// One part stays itself; several become `make(parts)`.
fn group(mut parts: Vec<Condition>, make: fn(Vec<Condition>) -> Condition) -> Condition {
    if parts.len() == 1 {
        parts.remove(0)
    } else {
        make(parts)
    }
}

impl Condition {
    /// Every threshold in the condition, in written order.
    pub fn leaves(&self) -> Vec<&Threshold> {
        match self {
            Condition::One(t) => vec![t],
            Condition::All(p) | Condition::Any(p) => p.iter().flat_map(|c| c.leaves()).collect(),
        }
    }

    fn holds(&self, leaf: &mut impl FnMut(&Threshold) -> Option<bool>) -> Option<bool> {
        match self {
            Condition::One(t) => leaf(t),
            // Kleene logic: a known false decides `and`, a known true decides `or`.
            Condition::All(p) => p
                .iter()
                .try_fold(Some(true), |acc, c| match c.holds(leaf) {
                    Some(false) => Err(()),
                    Some(true) => Ok(acc),
                    None => Ok(None),
                })
                .unwrap_or(Some(false)),
            Condition::Any(p) => p
                .iter()
                .try_fold(Some(false), |acc, c| match c.holds(leaf) {
                    Some(true) => Err(()),
                    Some(false) => Ok(acc),
                    None => Ok(None),
                })
                .unwrap_or(Some(true)),
        }
    }
}

impl Rule {
    /// Whether the rule is one plain threshold.
    pub fn single(&self) -> Option<&Threshold> {
        match &self.cond {
            Condition::One(t) => Some(t),
            _ => None,
        }
    }

    /// Checks the rule against `run`. A single threshold reports its observed value; a
    /// compound one reports each part's in `note`, and fails when a part it needs could not
    /// be computed.
    pub fn evaluate(&self, run: &RunFile) -> ThresholdResult {
        if let Some(t) = self.single() {
            let mut r = t.evaluate(run);
            r.expr = self.expr.clone();
            return r;
        }
        let mut parts = Vec::new();
        let pass = self
            .cond
            .holds(&mut |t| {
                let r = t.evaluate(run);
                let shown = match (r.observed, &r.note) {
                    (Some(v), _) => format!("{} = {}{}", t.path.name(), trim(v), r.unit),
                    (None, Some(n)) => format!("{}: {n}", t.path.name()),
                    (None, None) => format!("{}: no value", t.path.name()),
                };
                let verdict = if r.pass { "held" } else { "failed" };
                parts.push(format!("`{}` {verdict} ({shown})", t.expr.trim()));
                // A part that could not be computed is unknown; unknown never passes.
                r.observed.map(|_| r.pass)
            })
            .unwrap_or(false);
        ThresholdResult {
            expr: self.expr.clone(),
            observed: None,
            unit: String::new(),
            pass,
            note: Some(parts.join("; ")),
        }
    }

    /// Checks the rule against one second's figures: `Some(false)` failed this second,
    /// `None` no figure decides it this second.
    pub fn live(&self, figures: &LiveFigures) -> Option<bool> {
        self.cond.holds(&mut |t| live_check(t, figures))
    }

    /// Why this rule cannot be checked while the run goes on, if it cannot.
    pub fn live_support(&self) -> Result<(), String> {
        for t in self.cond.leaves() {
            super::live::supported(t)?;
        }
        Ok(())
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Evaluates every rule against `run`.
pub fn evaluate_rules(rules: &[Rule], run: &RunFile) -> Vec<ThresholdResult> {
    rules.iter().map(|r| r.evaluate(run)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threshold::LiveFigures;

    fn fig(p99_ms: u64, failed: u64) -> LiveFigures {
        let mut f = LiveFigures::default();
        f.point.latency_p99_us = Some(p99_ms * 1000);
        f.latency_of = Some("echo");
        f.counts.insert("connect.failed".into(), failed);
        f
    }

    /// `and` binds tighter than `or`; each side must be a whole threshold.
    #[test]
    fn parses_and_or() {
        let r = parse_rule("echo.latency.p99 < 50ms and connect.failed == 0 or echo.timeouts < 5")
            .unwrap();
        match &r.cond {
            Condition::Any(parts) => {
                assert_eq!(parts.len(), 2);
                assert!(matches!(&parts[0], Condition::All(a) if a.len() == 2));
                assert!(matches!(&parts[1], Condition::One(_)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.cond.leaves().len(), 3);
        assert!(parse_rule("echo.latency.p99 < 50ms and").is_err());
        assert!(parse_rule("or connect.failed == 0").is_err());
        let e = parse_rule("echo.latency.p99 < 50ms && bogus.x < 1").unwrap_err();
        assert!(e.message.contains("bogus"), "{}", e.message);
        assert!(
            parse_rule("connect.failed == 0")
                .unwrap()
                .single()
                .is_some()
        );
    }

    /// Live: Kleene logic, a known false decides `and`, a known true decides `or`.
    #[test]
    fn live_logic() {
        let and = parse_rule("echo.latency.p99 < 50ms and connect.failed == 0").unwrap();
        let or = parse_rule("echo.latency.p99 < 50ms || connect.failed == 0").unwrap();
        assert_eq!(and.live(&fig(10, 0)), Some(true));
        assert_eq!(and.live(&fig(10, 3)), Some(false));
        assert_eq!(or.live(&fig(100, 0)), Some(true));
        assert_eq!(or.live(&fig(100, 3)), Some(false));
        let mut none = fig(10, 0);
        none.latency_of = None;
        assert_eq!(and.live(&none), None, "p99 unknown, failed ok: unknown");
        none.counts.insert("connect.failed".into(), 1);
        assert_eq!(and.live(&none), Some(false));
        assert!(
            parse_rule("steady.echo.latency.p99 < 5ms")
                .unwrap()
                .live_support()
                .is_err()
        );
        assert!(
            parse_rule("echo.latency.p95 < 5ms")
                .unwrap()
                .live_support()
                .is_err()
        );
        assert!(
            parse_rule("echo.latency.p99 < 5ms")
                .unwrap()
                .live_support()
                .is_ok()
        );
        assert!(
            parse_rule("connect.failed < 1%")
                .unwrap()
                .live_support()
                .is_ok()
        );
    }

    /// On a run file: a compound rule passes only as its parts say, and lists them.
    #[test]
    fn evaluates_on_a_run_file() {
        let run = crate::fixture::example_run(10);
        let pass = parse_rule("connect.attempted > 0 and connect.attempted >= 1").unwrap();
        let r = pass.evaluate(&run);
        assert!(r.pass, "{r:?}");
        let fail = parse_rule("connect.attempted < 0 or connect.attempted > 1000000000").unwrap();
        let r = fail.evaluate(&run);
        assert!(!r.pass, "{r:?}");
        assert!(r.note.unwrap().contains("failed"));
        let either = parse_rule("connect.attempted < 0 or connect.attempted > 0").unwrap();
        assert!(either.evaluate(&run).pass);
    }
}

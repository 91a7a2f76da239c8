//! Live threshold checks (`--abort-on-fail`, `--abort-delay`; `abort = true` in a plan):
//! each second, every rule is checked against that second's figures
//! (reports/src/threshold/live.rs); a rule that has failed for the abort delay stops the
//! run.
//!
//! Receives the rules, the delay and one [`LiveFigures`] per second. Emits the
//! [`reports::AbortInfo`] of the first rule whose failure has lasted the delay. A second in
//! which a rule has no figure (no reply in it) neither starts nor ends its failure; a second
//! in which it holds ends it.
//! Must not: stop a run on a rule that has not failed for the whole delay.

use std::time::Duration;

use reports::AbortInfo;
use reports::threshold::{LiveFigures, Rule};

pub struct Abort {
    rules: Vec<Rule>,
    delay: Duration,
    failing_since: Vec<Option<u64>>,
}

impl Abort {
    pub fn new(rules: &[Rule], delay: Duration) -> Abort {
        Abort {
            rules: rules.to_vec(),
            delay,
            failing_since: vec![None; rules.len()],
        }
    }

    /// Checks second `second` (covering `[second, second + 1)` s of the run).
    pub fn check(&mut self, second: u64, f: &LiveFigures) -> Option<AbortInfo> {
        for (rule, since) in self.rules.iter().zip(self.failing_since.iter_mut()) {
            match rule.live(f) {
                Some(true) => *since = None,
                Some(false) => {
                    let start = *since.get_or_insert(second);
                    let failed_for = Duration::from_secs(second + 1 - start.min(second));
                    if failed_for >= self.delay {
                        return Some(AbortInfo {
                            threshold: rule.expr.clone(),
                            failing_since_s: start,
                            stopped_at_s: second + 1,
                            delay_ms: self.delay.as_millis() as u64,
                        });
                    }
                }
                None => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(p99_ms: Option<u64>) -> LiveFigures {
        let mut f = LiveFigures::default();
        f.point.latency_p99_us = p99_ms.map(|m| m * 1000);
        f.latency_of = p99_ms.map(|_| "echo");
        f
    }

    /// A failure must last the whole delay; a passing second resets it; a second with no
    /// figure neither starts nor resets it.
    #[test]
    fn waits_for_the_delay() {
        let rule = reports::threshold::parse_rule("echo.latency.p99 < 50ms").unwrap();
        let mut a = Abort::new(&[rule], Duration::from_secs(2));
        assert!(a.check(0, &figures(None)).is_none());
        assert!(a.check(1, &figures(Some(200))).is_none());
        assert!(a.check(2, &figures(Some(10))).is_none(), "a pass resets");
        assert!(a.check(3, &figures(Some(200))).is_none());
        assert!(a.check(4, &figures(None)).is_none());
        let info = a.check(5, &figures(Some(200))).expect("failed for 3 s");
        assert_eq!((info.failing_since_s, info.stopped_at_s), (3, 6));
        let mut now = Abort::new(
            &[reports::threshold::parse_rule("echo.latency.p99 < 50ms").unwrap()],
            Duration::ZERO,
        );
        assert!(now.check(0, &figures(Some(60))).is_some());
    }
}

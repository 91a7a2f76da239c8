//! The search itself, as pure arithmetic: which load to try next, given the verdicts so far.
//!
//! Receives the range (`from`, `max`), the growth factor, the precision and whether loads
//! are whole (clients); emits the next load, or the end of the search.
//! Must not: run anything or read a clock (the steps are `step.rs`'s).
//!
//! Stage one grows geometrically from `from` (`from`, `from x g`, ... capped at `max`) until
//! a step fails; stage two bisects between the highest pass and the lowest fail until
//! `fail / pass - 1 <= precision`.
//!
//! A step judged generator-saturated ([`Judged::Saturated`]) is run again at the same load,
//! up to [`SATURATED_REPEATS`] times, before the search concludes that the generator ran
//! out ([`Progress`]): a machine whose CPU is taken from outside for a moment (a shared VM,
//! another process) stalls one step, not the swarm's capacity, and a swarm that truly ran
//! out saturates every attempt (docs/results-format.md#capacity).

/// What the search knows: the highest load that passed and the lowest that failed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub pass: Option<f64>,
    pub fail: Option<f64>,
}

/// The search's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Search {
    pub from: f64,
    pub max: f64,
    pub growth: f64,
    /// Relative gap at which bisection stops (0.05 = 5%).
    pub precision: f64,
    /// Loads are counts of clients: whole numbers, at least one apart.
    pub whole: bool,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    /// Run a step at this load.
    Try(f64),
    /// Even `from` failed.
    FromFails,
    /// `max` passed: the capacity is at least `max`.
    MaxPasses,
    /// Pass and fail are within the precision (or one client apart).
    Found,
}

impl Search {
    /// The next step, given the bounds so far.
    pub fn next(&self, b: Bounds) -> Next {
        match (b.pass, b.fail) {
            (None, None) => Next::Try(self.round(self.from)),
            (None, Some(_)) => Next::FromFails,
            (Some(p), None) => {
                if p >= self.max {
                    return Next::MaxPasses;
                }
                let up = self.round((p * self.growth).min(self.max));
                if up <= p {
                    return Next::MaxPasses;
                }
                Next::Try(up)
            }
            (Some(p), Some(f)) => {
                if f / p - 1.0 <= self.precision || (self.whole && f - p <= 1.0) {
                    return Next::Found;
                }
                let mid = self.round(p + (f - p) / 2.0);
                if mid <= p || mid >= f {
                    return Next::Found;
                }
                Next::Try(mid)
            }
        }
    }

    fn round(&self, v: f64) -> f64 {
        if self.whole {
            v.round().max(1.0)
        } else {
            // Three significant figures: loads read as people write them.
            let mag = 10f64.powf(v.abs().log10().floor() - 2.0);
            (v / mag).round() * mag
        }
    }
}

/// Times a step judged generator-saturated is run again at the same load before the search
/// ends with "the generator ran out" (so a load is tried at most `1 + SATURATED_REPEATS`
/// times).
pub const SATURATED_REPEATS: u32 = 2;

/// A step's verdict, as the search reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judged {
    /// Every SLO held.
    Pass,
    /// An SLO failed, or the server refused or closed connections.
    Fail,
    /// The swarm itself saturated: neither a pass nor a fail.
    Saturated,
}

/// What the search does after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// The verdict was recorded; [`Progress::next`] says what comes next.
    Go,
    /// The step saturated the generator: the same load is run again; this is repeat
    /// `repeat` of [`SATURATED_REPEATS`].
    Repeat { repeat: u32 },
    /// Every attempt at this load saturated the generator: the search ends there.
    GeneratorRanOut,
}

/// The search's state between steps: the bounds, and the saturated attempts at the load
/// being retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub bounds: Bounds,
    /// The load being retried after a saturated step, and how many saturated attempts it
    /// has had in a row.
    retry: Option<(f64, u32)>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            bounds: Bounds {
                pass: None,
                fail: None,
            },
            retry: None,
        }
    }
}

impl Progress {
    /// The next step: the load being retried, else the search's next load.
    pub fn next(&self, s: &Search) -> Next {
        match self.retry {
            Some((load, _)) => Next::Try(load),
            None => s.next(self.bounds),
        }
    }

    /// Records the verdict of a step at `load`.
    pub fn record(&mut self, load: f64, judged: Judged) -> After {
        let b = &mut self.bounds;
        match judged {
            Judged::Pass => {
                self.retry = None;
                b.pass = Some(b.pass.map_or(load, |p| p.max(load)));
                After::Go
            }
            Judged::Fail => {
                self.retry = None;
                b.fail = Some(b.fail.map_or(load, |f| f.min(load)));
                After::Go
            }
            Judged::Saturated => {
                let before = match self.retry {
                    Some((l, n)) if l == load => n,
                    _ => 0,
                };
                if before >= SATURATED_REPEATS {
                    self.retry = None;
                    return After::GeneratorRanOut;
                }
                self.retry = Some((load, before + 1));
                After::Repeat { repeat: before + 1 }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the search against a server whose true capacity is `cap` (a load passes when
    /// it is at most `cap`); returns the end, the bounds and the loads tried.
    fn against(s: Search, cap: f64) -> (Next, Bounds, Vec<f64>) {
        let mut b = Bounds {
            pass: None,
            fail: None,
        };
        let mut tried = Vec::new();
        loop {
            match s.next(b) {
                Next::Try(load) => {
                    assert!(tried.len() < 100, "the search does not end: {tried:?}");
                    tried.push(load);
                    if load <= cap {
                        b.pass = Some(b.pass.map_or(load, |p: f64| p.max(load)));
                    } else {
                        b.fail = Some(b.fail.map_or(load, |f: f64| f.min(load)));
                    }
                }
                end => return (end, b, tried),
            }
        }
    }

    fn rate(from: f64, max: f64) -> Search {
        Search {
            from,
            max,
            growth: 2.0,
            precision: 0.05,
            whole: false,
        }
    }

    #[test]
    fn grows_then_bisects_to_the_precision() {
        for cap in [130.0, 1000.0, 4321.0, 77_777.0] {
            let (end, b, tried) = against(rate(100.0, 1e6), cap);
            assert_eq!(end, Next::Found, "{cap}: {tried:?}");
            let (p, f) = (b.pass.unwrap(), b.fail.unwrap());
            assert!(p <= cap && cap < f, "{cap} not in [{p}, {f}): {tried:?}");
            assert!(f / p - 1.0 <= 0.05 + 1e-9, "gap {p}..{f} wider than 5%");
            // Geometric first: 100, 200, 400, ... until the first fail.
            assert_eq!(&tried[..2], &[100.0, 200.0][..tried.len().min(2)]);
        }
    }

    #[test]
    fn ends_at_from_and_at_max() {
        let (end, _, tried) = against(rate(100.0, 1000.0), 50.0);
        assert_eq!((end, tried), (Next::FromFails, vec![100.0]));
        let (end, b, tried) = against(rate(100.0, 1000.0), 5000.0);
        assert_eq!(end, Next::MaxPasses);
        assert_eq!(b.pass, Some(1000.0));
        assert_eq!(tried, vec![100.0, 200.0, 400.0, 800.0, 1000.0]);
    }

    #[test]
    fn clients_are_whole_and_stop_one_apart() {
        let s = Search {
            from: 1.0,
            max: 100.0,
            growth: 2.0,
            precision: 0.0,
            whole: true,
        };
        let (end, b, tried) = against(s, 37.0);
        assert_eq!(end, Next::Found);
        assert_eq!((b.pass, b.fail), (Some(37.0), Some(38.0)), "{tried:?}");
        assert!(tried.iter().all(|l| l.fract() == 0.0));
    }

    /// A search whose steps are judged by `verdict(load, attempt)` (attempt 0 is the first
    /// at that load); returns how it ended, the bounds and every (load, judged) in order.
    fn with_verdicts(
        s: Search,
        verdict: impl Fn(f64, u32) -> Judged,
    ) -> (Result<Next, f64>, Bounds, Vec<(f64, Judged)>) {
        let mut p = Progress::default();
        let mut ran: Vec<(f64, Judged)> = Vec::new();
        loop {
            let load = match p.next(&s) {
                Next::Try(l) => l,
                end => return (Ok(end), p.bounds, ran),
            };
            assert!(ran.len() < 100, "the search does not end: {ran:?}");
            let attempt = ran.iter().filter(|(l, _)| *l == load).count() as u32;
            let j = verdict(load, attempt);
            ran.push((load, j));
            if p.record(load, j) == After::GeneratorRanOut {
                return (Err(load), p.bounds, ran);
            }
        }
    }

    /// One stalled step (the machine's CPU taken from outside for a moment) is repeated
    /// and the search goes on to the same answer as without the stall.
    #[test]
    fn a_single_saturated_step_is_repeated_and_the_search_goes_on() {
        let cap = 1000.0;
        let clean = with_verdicts(rate(100.0, 1e6), |l, _| {
            if l <= cap { Judged::Pass } else { Judged::Fail }
        });
        let stalled = with_verdicts(rate(100.0, 1e6), |l, attempt| {
            if l == 200.0 && attempt == 0 {
                Judged::Saturated
            } else if l <= cap {
                Judged::Pass
            } else {
                Judged::Fail
            }
        });
        assert_eq!(stalled.0, Ok(Next::Found), "{:?}", stalled.2);
        assert_eq!(stalled.1, clean.1, "the same bounds as without the stall");
        // The stalled step and its repeat, at the same load, then on as before.
        assert_eq!(
            &stalled.2[..3],
            &[
                (100.0, Judged::Pass),
                (200.0, Judged::Saturated),
                (200.0, Judged::Pass)
            ]
        );
        assert_eq!(stalled.2.len(), clean.2.len() + 1);
    }

    /// A generator that saturates at every attempt at a load is reported after
    /// 1 + SATURATED_REPEATS attempts there: the search ends with it, bounds untouched.
    #[test]
    fn a_generator_saturated_at_every_attempt_ends_the_search() {
        let (end, b, ran) = with_verdicts(rate(100.0, 1e6), |l, _| {
            if l >= 400.0 {
                Judged::Saturated
            } else {
                Judged::Pass
            }
        });
        assert_eq!(end, Err(400.0), "{ran:?}");
        assert_eq!((b.pass, b.fail), (Some(200.0), None));
        let at_400 = ran.iter().filter(|(l, _)| *l == 400.0).count() as u32;
        assert_eq!(at_400, 1 + SATURATED_REPEATS, "{ran:?}");
    }

    /// Stalls at different loads each get their own repeats (the count is of saturated
    /// attempts in a row at one load), and a bisection step can be repeated too.
    #[test]
    fn repeats_are_counted_per_load_in_a_row() {
        let (end, b, ran) = with_verdicts(rate(100.0, 1e6), |l, attempt| {
            let stalled = attempt < SATURATED_REPEATS && (l == 100.0 || l == 200.0 || l == 600.0);
            if stalled {
                Judged::Saturated
            } else if l <= 700.0 {
                Judged::Pass
            } else {
                Judged::Fail
            }
        });
        assert_eq!(end, Ok(Next::Found), "{ran:?}");
        let (p, f) = (b.pass.unwrap(), b.fail.unwrap());
        assert!(p <= 700.0 && 700.0 < f, "{ran:?}");
        assert!(
            ran.contains(&(600.0, Judged::Saturated)),
            "a bisection step: {ran:?}"
        );
        let mut p = Progress::default();
        let s = rate(100.0, 1e6);
        // Saturated, passed, saturated again at the same load: the count starts over.
        assert_eq!(
            p.record(100.0, Judged::Saturated),
            After::Repeat { repeat: 1 }
        );
        assert_eq!(p.next(&s), Next::Try(100.0));
        assert_eq!(p.record(100.0, Judged::Pass), After::Go);
        assert_eq!(p.next(&s), Next::Try(200.0));
        assert_eq!(
            p.record(200.0, Judged::Saturated),
            After::Repeat { repeat: 1 }
        );
        assert_eq!(
            p.record(200.0, Judged::Saturated),
            After::Repeat { repeat: 2 }
        );
        assert_eq!(p.record(200.0, Judged::Saturated), After::GeneratorRanOut);
    }
}

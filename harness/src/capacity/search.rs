//! The search itself, as pure arithmetic: which load to try next, given the verdicts so far.
//!
//! Receives the range (`from`, `max`), the growth factor, the precision and whether loads
//! are whole (clients); emits the next load, or the end of the search.
//! Must not: run anything or read a clock (the steps are `step.rs`'s).
//!
//! Stage one grows geometrically from `from` (`from`, `from x g`, ... capped at `max`) until
//! a step fails; stage two bisects between the highest pass and the lowest fail until
//! `fail / pass - 1 <= precision`.

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
}

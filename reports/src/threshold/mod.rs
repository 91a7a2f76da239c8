//! Thresholds: `[phase.]scenario.metric[.stat] OP value[unit]` (docs/results-format.md#threshold-and-comparison-names).
//!
//! Receives the text of a threshold (from `--threshold` or a plan); emits a checked
//! [`Threshold`] or a [`ThresholdError`] that names the bad part and lists what would be
//! valid. [`eval`] resolves a threshold against a [`crate::RunFile`].
//! Must not: accept a name it cannot resolve, or guess a unit (a duration needs one).

pub mod catalog;
pub mod combine;
pub mod eval;
pub mod live;

pub use catalog::{Direction, Kind, Metric};
pub use combine::{Condition, Rule, evaluate_rules, parse_rule};
pub use eval::evaluate;
pub use live::LiveFigures;

/// A threshold that could not be parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid threshold `{expr}`: {message}")]
pub struct ThresholdError {
    pub expr: String,
    pub message: String,
}

/// Comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    /// `observed OP value`.
    pub fn holds(self, observed: f64, value: f64) -> bool {
        match self {
            Op::Lt => observed < value,
            Op::Le => observed <= value,
            Op::Gt => observed > value,
            Op::Ge => observed >= value,
            Op::Eq => (observed - value).abs() <= f64::EPSILON * value.abs().max(1.0),
            Op::Ne => (observed - value).abs() > f64::EPSILON * value.abs().max(1.0),
        }
    }
}

/// Statistic of a distribution (or of a per-second swarm figure).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    Count,
    Min,
    Mean,
    Max,
    /// 0..=100.
    Percentile(f64),
}

impl Stat {
    fn parse(s: &str) -> Option<Stat> {
        match s {
            "count" => return Some(Stat::Count),
            "min" => return Some(Stat::Min),
            "mean" => return Some(Stat::Mean),
            "max" => return Some(Stat::Max),
            _ => {}
        }
        let digits = s.strip_prefix('p')?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let p: f64 = if digits == "100" || digits.len() <= 2 {
            digits.parse().ok()?
        } else {
            format!("{}.{}", &digits[..2], &digits[2..]).parse().ok()?
        };
        (0.0..=100.0).contains(&p).then_some(Stat::Percentile(p))
    }
}

/// The unit a threshold value was written in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unit {
    None,
    Micros,
    Millis,
    Seconds,
    Percent,
    /// Bytes times this factor (1, 1024, 1000...).
    Bytes(u64),
    PerSecond,
}

impl Unit {
    fn parse(s: &str) -> Option<(Unit, &'static str)> {
        Some(match s {
            "" => (Unit::None, ""),
            "us" | "µs" => (Unit::Micros, "us"),
            "ms" => (Unit::Millis, "ms"),
            "s" => (Unit::Seconds, "s"),
            "%" => (Unit::Percent, "%"),
            "B" => (Unit::Bytes(1), "B"),
            "kB" | "KB" => (Unit::Bytes(1000), "kB"),
            "MB" => (Unit::Bytes(1_000_000), "MB"),
            "GB" => (Unit::Bytes(1_000_000_000), "GB"),
            "KiB" => (Unit::Bytes(1 << 10), "KiB"),
            "MiB" => (Unit::Bytes(1 << 20), "MiB"),
            "GiB" => (Unit::Bytes(1 << 30), "GiB"),
            "/s" => (Unit::PerSecond, "/s"),
            _ => return None,
        })
    }
}

/// The left-hand side of a threshold: a metric name, resolvable against a run file.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPath {
    /// Plan phase to look in; `None` = the whole run.
    pub phase: Option<String>,
    pub scenario: String,
    /// Catalog name, or the key for `errors.<kind>` / `disconnects.<reason>`.
    pub metric: String,
    pub stat: Option<Stat>,
    pub kind: Kind,
    pub direction: Direction,
    pub percent_of: Option<&'static str>,
}

/// A parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The text as written.
    pub expr: String,
    pub path: MetricPath,
    pub op: Op,
    /// The value as written, in `unit`.
    pub value: f64,
    pub unit: Unit,
    /// How `unit` is displayed (`ms`, `%`, empty...).
    pub unit_label: &'static str,
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl MetricPath {
    /// Parses a metric name such as `steady.echo.latency.p99` or `connect.failed`.
    pub fn parse(name: &str) -> Result<MetricPath, String> {
        let parts: Vec<&str> = name.split('.').collect();
        if let Some(bad) = parts.iter().find(|p| !is_ident(p)) {
            return Err(format!(
                "`{name}` is not a metric name: segment `{bad}` must be letters, digits, `_` or `-`, \
                 separated by single dots (e.g. `echo.latency.p99`)"
            ));
        }
        let scenarios = catalog::SCENARIOS.join(", ");
        if parts.len() < 2 {
            return Err(format!(
                "`{name}` needs at least `scenario.metric` (scenarios: {scenarios})"
            ));
        }
        let first_is_scenario = catalog::SCENARIOS.contains(&parts[0]);
        let second_is_scenario = parts.len() >= 3 && catalog::SCENARIOS.contains(&parts[1]);
        if first_is_scenario {
            match Self::resolve(None, &parts) {
                Ok(p) => return Ok(p),
                // A phase may be named like a scenario (e.g. a phase called `connect`).
                Err(e) if !second_is_scenario => return Err(e),
                Err(_) => {}
            }
        }
        if second_is_scenario {
            if parts[1] == "swarm" && parts.get(2) != Some(&"send_lag") {
                return Err(format!(
                    "`{name}`: swarm.* metrics except send_lag are for the whole run; drop the \
                     phase `{}`",
                    parts[0]
                ));
            }
            return Self::resolve(Some(parts[0].to_string()), &parts[1..]);
        }
        Err(format!(
            "`{name}`: unknown scenario `{}` (scenarios: {scenarios}; a plan phase name may come first, \
             as in `steady.echo.latency.p99`)",
            parts[0]
        ))
    }

    fn resolve(phase: Option<String>, parts: &[&str]) -> Result<MetricPath, String> {
        if parts[0] == catalog::STEP_SCENARIO {
            return Self::resolve_step(phase, parts);
        }
        Self::resolve_fixed(phase, parts)
    }

    /// `flow.STEP.metric[.stat]`: the step name is any identifier (the plan's); its
    /// metric is one of the catalog's `flow` metrics. The path's `metric` is
    /// `STEP.metric`.
    fn resolve_step(phase: Option<String>, parts: &[&str]) -> Result<MetricPath, String> {
        let [scenario, step, metric, rest @ ..] = parts else {
            return Err(format!(
                "`{}`: flow metrics are `flow.STEP.METRIC` (metrics: {}), e.g. \
                 `flow.history.latency.p99`",
                parts.join("."),
                catalog::names_of(catalog::STEP_SCENARIO).join(", ")
            ));
        };
        let mut fixed = vec![*scenario, *metric];
        fixed.extend_from_slice(rest);
        let mut p = Self::resolve_fixed(phase, &fixed)?;
        p.metric = format!("{step}.{metric}");
        Ok(p)
    }

    fn resolve_fixed(phase: Option<String>, parts: &[&str]) -> Result<MetricPath, String> {
        let (scenario, metric, rest) = (parts[0], parts[1], &parts[2..]);
        let joined = parts.join(".");
        let spec = match catalog::find(scenario, metric) {
            Some(s) => *s,
            None if catalog::KEYED_SCENARIOS.contains(&scenario) => Metric {
                scenario: "",
                name: "",
                kind: Kind::Count,
                direction: Direction::LowerIsBetter,
                percent_of: None,
                stats: &[],
                doc: "",
            },
            None => {
                let mut names = catalog::names_of(scenario).join(", ");
                if catalog::KEYED_SCENARIOS.contains(&scenario) {
                    names.push_str(", or any key");
                }
                return Err(format!(
                    "`{joined}`: unknown metric `{metric}` of `{scenario}` (valid: {names})"
                ));
            }
        };
        let stat = match (spec.kind, rest) {
            (Kind::Distribution, []) => {
                return Err(format!(
                    "`{joined}` is a distribution: add a statistic, e.g. `{joined}.p99` (valid: {}, or any pNN)",
                    catalog::DISTRIBUTION_STATS.join(", ")
                ));
            }
            (Kind::Distribution, [s]) => Some(Stat::parse(s).ok_or_else(|| {
                format!(
                    "`{joined}`: unknown statistic `{s}` (valid: {}, or any pNN such as p95, p999 = 99.9th)",
                    catalog::DISTRIBUTION_STATS.join(", ")
                )
            })?),
            (_, []) if spec.stats.is_empty() => None,
            (_, []) => {
                return Err(format!(
                    "`{joined}` needs a statistic (valid: {})",
                    spec.stats.join(", ")
                ));
            }
            (_, [s]) if spec.stats.contains(s) => Stat::parse(s),
            (_, [s]) if spec.stats.is_empty() => {
                return Err(format!("`{joined}`: `{scenario}.{metric}` is a single number and takes no statistic `{s}`"));
            }
            (_, [s]) => {
                return Err(format!("`{joined}`: unknown statistic `{s}` (valid: {})", spec.stats.join(", ")));
            }
            (_, _) => return Err(format!("`{joined}`: too many segments after `{scenario}.{metric}`")),
        };
        Ok(MetricPath {
            phase,
            scenario: scenario.to_string(),
            metric: metric.to_string(),
            stat,
            kind: spec.kind,
            direction: spec.direction,
            percent_of: spec.percent_of,
        })
    }
}

/// Parses one threshold expression.
pub fn parse(expr: &str) -> Result<Threshold, ThresholdError> {
    let err = |message: String| ThresholdError {
        expr: expr.to_string(),
        message,
    };
    let text = expr.trim();
    let op_at = text.find(['<', '>', '=', '!']).ok_or_else(|| {
        err(
            "no comparison operator; write `metric OP value`, e.g. `echo.latency.p99 < 50ms` \
             (operators: <, <=, >, >=, ==, !=)"
                .into(),
        )
    })?;
    let lhs = text[..op_at].trim();
    let after = &text[op_at..];
    let (op, op_len) = match after.as_bytes() {
        [b'<', b'=', ..] => (Op::Le, 2),
        [b'>', b'=', ..] => (Op::Ge, 2),
        [b'=', b'=', ..] => (Op::Eq, 2),
        [b'!', b'=', ..] => (Op::Ne, 2),
        [b'<', ..] => (Op::Lt, 1),
        [b'>', ..] => (Op::Gt, 1),
        _ => {
            return Err(err(format!(
                "bad operator at `{after}` (operators: <, <=, >, >=, ==, !=; equality is `==`)"
            )));
        }
    };
    if lhs.is_empty() {
        return Err(err("no metric name before the operator".into()));
    }
    let path = MetricPath::parse(lhs).map_err(err)?;
    let rhs = after[op_len..].trim();
    let num_len = rhs
        .char_indices()
        .find(|&(i, c)| {
            !(c.is_ascii_digit()
                || c == '.'
                || c == '_'
                || (c == '-' && i == 0)
                || (c == '+' && i == 0)
                || ((c == 'e' || c == 'E')
                    && rhs[i + 1..].starts_with(|d: char| d.is_ascii_digit() || d == '-')))
        })
        .map_or(rhs.len(), |(i, _)| i);
    let number = rhs[..num_len].replace('_', "");
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| err(format!("`{rhs}` does not start with a number")))?;
    let unit_text = rhs[num_len..].trim();
    let (unit, unit_label) = Unit::parse(unit_text).ok_or_else(|| {
        err(format!(
            "unknown unit `{unit_text}` (durations: us, ms, s; %; bytes: B, KiB, MiB, GiB, kB, MB, GB; /s)"
        ))
    })?;
    check_unit(&path, unit).map_err(err)?;
    Ok(Threshold {
        expr: expr.to_string(),
        path,
        op,
        value,
        unit,
        unit_label,
    })
}

fn check_unit(path: &MetricPath, unit: Unit) -> Result<(), String> {
    let timed = matches!(path.kind, Kind::Distribution | Kind::Duration)
        && !matches!(path.stat, Some(Stat::Count));
    let ok = match (timed, path.kind, unit) {
        (true, _, Unit::Micros | Unit::Millis | Unit::Seconds) => true,
        (true, _, _) => {
            return Err(format!(
                "`{}` is a duration: give the value a unit (us, ms or s), e.g. `50ms`",
                path.name()
            ));
        }
        (false, Kind::Count, Unit::Percent) => {
            if path.percent_of.is_none() {
                return Err(format!(
                    "`{}` has no base to be a percentage of; compare it to a plain number",
                    path.name()
                ));
            }
            true
        }
        (false, Kind::Count | Kind::Flag | Kind::Distribution, Unit::None) => true,
        (false, Kind::Ratio | Kind::Percent, Unit::None | Unit::Percent) => true,
        (false, Kind::PerSecond, Unit::None | Unit::PerSecond) => true,
        (false, Kind::Bytes, Unit::None | Unit::Bytes(_)) => true,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("unit does not fit `{}`", path.name()))
    }
}

impl MetricPath {
    /// The canonical name, e.g. `steady.echo.latency.p99`.
    pub fn name(&self) -> String {
        let mut s = String::new();
        if let Some(p) = &self.phase {
            s.push_str(p);
            s.push('.');
        }
        s.push_str(&self.scenario);
        s.push('.');
        s.push_str(&self.metric);
        match self.stat {
            None => {}
            Some(Stat::Count) => s.push_str(".count"),
            Some(Stat::Min) => s.push_str(".min"),
            Some(Stat::Mean) => s.push_str(".mean"),
            Some(Stat::Max) => s.push_str(".max"),
            Some(Stat::Percentile(p)) => {
                let digits = format!("{p}").replace('.', "");
                s.push_str(&format!(".p{digits}"));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests;

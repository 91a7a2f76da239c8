//! Values as people write them on a command line or in a plan file: durations (`500ms`,
//! `1m30s`), rates (`100/s`), byte sizes (`64KiB`, `1MB`) and counts (`10k`). One set of
//! rules for both binaries: target-server's flags and the swarm's flags and plan keys read
//! values through these functions.
//!
//! Receives: untrusted text. Emits: the value, or a [`ValueError`] whose message says how to
//! write it. Must not: panic, or accept a value it would have to round (a count of `1.5` is
//! an error, not 2).

use std::time::Duration;

/// A command-line value that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("invalid duration {0:?}: write it as people do, e.g. 500ms, 25s, 2m")]
    Duration(String),
    #[error("invalid rate {0:?}: write it as COUNT/s, e.g. 100/s (or /m, /h)")]
    Rate(String),
    #[error("invalid {what} {value:?}: {why}")]
    Other {
        what: &'static str,
        value: String,
        why: String,
    },
}

/// Parses `500ms`, `25s`, `1m30s`, `2h` (humantime).
pub fn parse_duration(s: &str) -> Result<Duration, ValueError> {
    humantime::parse_duration(s.trim()).map_err(|_| ValueError::Duration(s.to_string()))
}

/// Parses byte sizes such as `1000000`, `64KiB`, `1MB`, `16MiB`, `512k`.
pub fn parse_bytes(s: &str) -> Result<u64, ValueError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => f64::NAN,
    };
    match num.parse::<f64>() {
        Ok(n) if (n * mult).is_finite() && n * mult >= 1.0 => Ok((n * mult).round() as u64),
        _ => Err(ValueError::Other {
            what: "size",
            value: s.to_string(),
            why: "write bytes, e.g. 1000000, 64KiB or 1MB".into(),
        }),
    }
}

/// Parses a rate `100/s`, `6000/m`, `1.5/s` into events per second.
pub fn parse_rate(s: &str) -> Result<f64, ValueError> {
    let bad = || ValueError::Rate(s.to_string());
    let (n, unit) = s.trim().split_once('/').ok_or_else(bad)?;
    let n: f64 = n.trim().parse().map_err(|_| bad())?;
    let per = match unit.trim() {
        "s" | "sec" | "1s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    if !n.is_finite() || n < 0.0 {
        return Err(bad());
    }
    Ok(n / per)
}

/// Parses a count: `250`, `10k` (10,000), `1.5k` (1,500), `2m` (2,000,000), with `_`
/// allowed between digits (`10_000`). The result must be a whole number; 0 is allowed
/// (callers that need at least one say so).
pub fn parse_count(s: &str) -> Result<u64, ValueError> {
    let bad = |why: &str| ValueError::Other {
        what: "count",
        value: s.to_string(),
        why: why.to_string(),
    };
    let t = s.trim().to_ascii_lowercase().replace('_', "");
    let (num, mult) = match t.strip_suffix('k') {
        Some(n) => (n, 1_000.0),
        None => match t.strip_suffix('m') {
            Some(n) => (n, 1_000_000.0),
            None => (t.as_str(), 1.0),
        },
    };
    // Digits and at most one point only (no signs, exponents, inf or NaN).
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad("write e.g. 500, 10k, 1.5k"));
    }
    let n: f64 = num.parse().map_err(|_| bad("write e.g. 500, 10k, 1.5k"))?;
    let v = n * mult;
    // Integers up to 2^53 are exact in f64, far above any count these tools take.
    if !v.is_finite() || v.fract() != 0.0 || v > 9_007_199_254_740_992.0 {
        return Err(bad("a whole number, e.g. 500, 10k, 1.5k"));
    }
    Ok(v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_whole_numbers_with_k_and_m() {
        assert_eq!(parse_count("250"), Ok(250));
        assert_eq!(parse_count(" 10k "), Ok(10_000));
        assert_eq!(parse_count("1.5K"), Ok(1_500));
        assert_eq!(parse_count("2m"), Ok(2_000_000));
        assert_eq!(parse_count("10_000"), Ok(10_000));
        assert_eq!(parse_count("0"), Ok(0));
        for bad in [
            "", "k", "-3", "1.5", "1.2345k", "1e3", "inf", "NaN", "ten", "1..2k",
        ] {
            assert!(parse_count(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn durations_rates_and_sizes() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("fast").is_err());
        assert_eq!(parse_rate("30/m"), Ok(0.5));
        assert!(parse_rate("5").is_err());
        assert_eq!(parse_bytes("64KiB"), Ok(65_536));
        assert_eq!(parse_bytes("1MB"), Ok(1_000_000));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("12 parsecs").is_err());
    }
}

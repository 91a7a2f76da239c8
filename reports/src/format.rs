//! Numbers for humans: counts with thousands separators, rates, percentages, durations,
//! bytes and UTC dates, the same everywhere a report shows them.
//!
//! Receives plain numbers (counts, µs, bytes, f64 that may be huge or not finite); emits
//! short strings. Must not: panic on any value (u64::MAX, NaN, infinities are all shown).

pub use crate::summary::{format_bytes, format_us};

/// `98412` -> `98,412`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A non-negative float with separators: integers above 100, one decimal below, two below 1.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "n/a".into()
        } else {
            "∞".into()
        };
    }
    let a = v.abs();
    let sign = if v < 0.0 { "-" } else { "" };
    if a >= 1e18 {
        return format!("{sign}{a:.3e}");
    }
    if a >= 100.0 {
        format!("{sign}{}", count(a.round() as u64))
    } else if a >= 1.0 || a == 0.0 {
        trim(format!("{sign}{a:.1}"))
    } else {
        trim(format!("{sign}{a:.3}"))
    }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Events per second: `98,412/s`, `2.5/s`.
pub fn rate(per_s: f64) -> String {
    format!("{}/s", number(per_s))
}

/// A percentage already in percent: `45%`, `99.98%`, `0.0075%`; never rounded up to 100%
/// or down to 0% when it is not.
pub fn percent(p: f64) -> String {
    if !p.is_finite() {
        return number(p);
    }
    let a = p.abs();
    if a == 0.0 || a >= 100.0 {
        return format!("{}%", number(p.round()));
    }
    let mut decimals: usize = if a >= 10.0 {
        1
    } else if a >= 0.01 {
        2
    } else {
        4
    };
    let mut s = format!("{a:.decimals$}");
    while decimals < 8 && (s.starts_with("100") || s.trim_end_matches(['0', '.']).is_empty()) {
        decimals += 1;
        s = format!("{a:.decimals$}");
    }
    let sign = if p < 0.0 { "-" } else { "" };
    format!("{sign}{}%", trim(s))
}

/// `part` as a percentage of `whole` (`-` when `whole` is 0).
pub fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        percent(part as f64 * 100.0 / whole as f64)
    }
}

/// A float number of microseconds as a duration (`4.10ms`); negative or not finite is `n/a`.
pub fn micros(us: f64) -> String {
    if us.is_finite() && us >= 0.0 {
        format_us(us.round().min(u64::MAX as f64) as u64)
    } else {
        "n/a".into()
    }
}

/// Seconds from the run start: `42s`, `2m05s`, `1h02m`.
pub fn seconds(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "n/a".into();
    }
    let whole = s.round() as u64;
    if whole < 120 {
        if s < 10.0 && s.fract().abs() > 1e-9 {
            return format!("{}s", trim(format!("{s:.1}")));
        }
        format!("{whole}s")
    } else if whole < 7200 {
        format!("{}m{:02}s", whole / 60, whole % 60)
    } else {
        format!("{}h{:02}m", whole / 3600, whole % 3600 / 60)
    }
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DD hh:mm:ss UTC`.
pub fn unix_ms_to_utc(ms: u64) -> String {
    // Civil date from days since 1970-01-01 (proleptic Gregorian), UTC.
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `n` followed by the singular or plural noun: `1 error`, `3 errors`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_numbers() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(98_412), "98,412");
        assert_eq!(count(u64::MAX), "18,446,744,073,709,551,615");
        assert_eq!(number(98_412.4), "98,412");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(f64::NAN), "n/a");
        assert_eq!(number(1e300), "1.000e300");
        assert_eq!(rate(10.0), "10/s");
    }

    #[test]
    fn percents_and_durations() {
        assert_eq!(percent(45.0), "45%");
        assert_eq!(percent(99.98), "99.98%");
        assert_eq!(percent(0.0075), "0.0075%");
        assert_eq!(percent(100.0), "100%");
        assert_eq!(percent(99.999), "99.999%");
        assert_eq!(percent(0.00001), "0.00001%");
        assert_eq!(percent(250.4), "250%");
        assert_eq!(share(1, 4), "25%");
        assert_eq!(share(1, 0), "-");
        assert_eq!(micros(4_100.0), "4.10ms");
        assert_eq!(micros(f64::INFINITY), "n/a");
        assert_eq!(seconds(42.0), "42s");
        assert_eq!(seconds(2.5), "2.5s");
        assert_eq!(seconds(125.0), "2m05s");
        assert_eq!(seconds(7_320.0), "2h02m");
        assert_eq!(plural(1, "error", "errors"), "1 error");
        assert_eq!(plural(2, "error", "errors"), "2 errors");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(unix_ms_to_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(unix_ms_to_utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert!(unix_ms_to_utc(u64::MAX).ends_with("UTC"));
    }
}

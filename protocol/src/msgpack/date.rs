//! A JavaScript `Date` (milliseconds since the Unix epoch) as its `Date.prototype.toJSON()`
//! string, for the msgpack `Date` extension.
//!
//! Receives: a millisecond count. Emits: `YYYY-MM-DDTHH:mm:ss.sssZ` (years outside 0..9999
//! as `+YYYYYY` / `-YYYYYY`), or `None` outside JavaScript's date range (`toJSON` gives
//! null there). Must not: read a clock or a time zone.

/// JavaScript's time range: ±8.64e15 ms around the epoch.
const MAX_MS: i64 = 8_640_000_000_000_000;
const MS_PER_DAY: i64 = 86_400_000;

pub(crate) fn to_json(ms: i64) -> Option<String> {
    if !(-MAX_MS..=MAX_MS).contains(&ms) {
        return None;
    }
    let days = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    let year = if (0..=9999).contains(&year) {
        format!("{year:04}")
    } else {
        format!("{}{:06}", if year < 0 { '-' } else { '+' }, year.abs())
    };
    Some(format!(
        "{year}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z"
    ))
}

/// Proleptic Gregorian (year, month 1..12, day 1..31) of a day count from 1970-01-01.
/// Works in 400-year eras (146,097 days each) counted from 0000-03-01, so the leap day
/// falls at the end of each shifted year.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // 0 = March
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::to_json;

    /// Expectations printed by Node's `new Date(ms).toJSON()`.
    #[test]
    fn matches_javascript_to_json() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (1_700_000_000_123, "2023-11-14T22:13:20.123Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (-62_198_755_200_000, "-000001-01-01T00:00:00.000Z"),
            (253_402_300_800_000, "+010000-01-01T00:00:00.000Z"),
            (8_640_000_000_000_000, "+275760-09-13T00:00:00.000Z"),
            (-8_640_000_000_000_000, "-271821-04-20T00:00:00.000Z"),
        ];
        for (ms, want) in cases {
            assert_eq!(to_json(ms).as_deref(), Some(want), "ms = {ms}");
        }
        assert_eq!(to_json(8_640_000_000_000_001), None);
        assert_eq!(to_json(i64::MIN), None);
    }
}

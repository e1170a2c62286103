//! When a schedule fires: five-field cron expressions ([`Cron`]) in an IANA time zone, and the one-shot
//! `--at` time ([`parse_at`]).
//!
//! Fires are instants. A cron expression names wall-clock minutes in its time zone, and daylight saving time
//! makes some of them happen twice and some not at all; errand's rule for each:
//! - a minute that happens twice (the hour repeated when clocks go back) fires once, the first time;
//! - a minute that does not happen (the hour skipped when clocks go forward) fires at the end of the gap, and
//!   every skipped minute of one gap fires there together, once.

use std::fmt;

use chrono::{
    DateTime, Datelike as _, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone as _, Timelike as _, Utc,
};
use chrono_tz::Tz;

/// How far ahead [`Cron::next_after`] looks: long enough for `0 0 29 2 1` (Feb 29 on a Monday).
const SEARCH_YEARS: i32 = 30;

/// A parsed five-field cron expression: minute, hour, day of month, month, day of week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    text: String,
    minutes: u64,
    hours: u32,
    days_of_month: u32,
    months: u16,
    days_of_week: u8,
    /// Whether day of month and day of week were both restricted: then a day matching either fires (as
    /// every cron does).
    either_day: bool,
    any_day_of_month: bool,
    any_day_of_week: bool,
}

/// A cron expression errand cannot read; the message names the field and shows the form it takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a cron expression errand can read: {reason}")]
pub struct CronError {
    text: String,
    reason: String,
}

const FIELDS: [(&str, u32, u32); 5] =
    [("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7)];

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Cron {
    /// Parses `text`: five fields (`minute hour day-of-month month day-of-week`) of `*`, numbers, ranges
    /// (`1-5`), steps (`*/15`, `0-30/10`, `5/20`) and lists (`1,15`), with month and day names (`jan`,
    /// `mon-fri`; 0 and 7 are Sunday), or one of `@hourly`, `@daily`, `@midnight`, `@weekly`, `@monthly`,
    /// `@yearly`, `@annually`.
    pub fn parse(text: &str) -> Result<Self, CronError> {
        let trimmed = text.trim();
        let expanded = match trimmed.to_ascii_lowercase().as_str() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            _ => trimmed,
        };
        let error = |reason: String| CronError { text: text.to_string(), reason };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(error(format!(
                "it has {} field{}, and needs five: minute hour day-of-month month day-of-week, as in \"0 8 * * \
                 1-5\" (8:00 on weekdays)",
                parts.len(),
                if parts.len() == 1 { "" } else { "s" }
            )));
        }
        let mut sets = [0u64; 5];
        for (index, part) in parts.iter().enumerate() {
            let (name, low, high) = FIELDS[index];
            let names: &[&str] = match index {
                3 => &MONTHS,
                4 => &DAYS,
                _ => &[],
            };
            sets[index] = field(part, low, high, names, index == 3)
                .map_err(|reason| error(format!("the {name} field {part:?}: {reason}")))?;
        }
        // Day of week 7 is Sunday, as 0 is.
        let mut days_of_week = sets[4];
        if days_of_week & (1 << 7) != 0 {
            days_of_week = (days_of_week | 1) & 0x7f;
        }
        let any_day_of_month = parts[2] == "*";
        let any_day_of_week = parts[4] == "*";
        Ok(Cron {
            text: trimmed.to_string(),
            minutes: sets[0],
            hours: sets[1] as u32,
            days_of_month: sets[2] as u32,
            months: sets[3] as u16,
            days_of_week: days_of_week as u8,
            either_day: !any_day_of_month && !any_day_of_week,
            any_day_of_month,
            any_day_of_week,
        })
    }

    /// The expression as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let by_month_day = self.days_of_month & (1 << date.day()) != 0;
        let by_week_day = self.days_of_week & (1 << date.weekday().num_days_from_sunday()) != 0;
        if self.either_day {
            by_month_day || by_week_day
        } else {
            (self.any_day_of_month || by_month_day) && (self.any_day_of_week || by_week_day)
        }
    }

    /// Whether the wall-clock minute `local` matches.
    pub fn matches(&self, local: NaiveDateTime) -> bool {
        self.day_matches(local.date())
            && self.hours & (1 << local.hour()) != 0
            && self.minutes & (1 << local.minute()) != 0
    }

    /// The first fire after `after` (strictly), in `tz`, by the rules in this module's documentation; `None`
    /// when the expression never matches (`0 0 30 2 *`).
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        // Start from the wall-clock minute in effect at `after`, less an hour so a gap's end that maps back
        // before `after`'s wall time is still found; every candidate is compared as an instant.
        let start = after.with_timezone(&tz).naive_local() - Duration::hours(3);
        let start = start.with_second(0).and_then(|time| time.with_nanosecond(0)).unwrap_or(start);
        let mut date = start.date();
        let last = date.with_year(date.year() + SEARCH_YEARS).unwrap_or(NaiveDate::MAX);
        while date <= last {
            if self.day_matches(date) {
                for hour in (0..24).filter(|hour| self.hours & (1 << hour) != 0) {
                    for minute in (0..60).filter(|minute| self.minutes & (1u64 << minute) != 0) {
                        let Some(local) = date.and_hms_opt(hour, minute, 0) else { continue };
                        if local < start {
                            continue;
                        }
                        if let Some(instant) = fire_instant(local, tz)
                            && instant > after
                        {
                            return Some(instant);
                        }
                    }
                }
            }
            date = date.succ_opt()?;
        }
        None
    }

    /// Every fire after `after` up to and including `until`, in order.
    pub fn fires_between(&self, after: DateTime<Utc>, until: DateTime<Utc>, tz: Tz) -> Vec<DateTime<Utc>> {
        let mut fires = Vec::new();
        let mut cursor = after;
        while let Some(next) = self.next_after(cursor, tz) {
            if next > until {
                break;
            }
            fires.push(next);
            cursor = next;
        }
        fires
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

impl std::str::FromStr for Cron {
    type Err = CronError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Cron::parse(text)
    }
}

/// The instant a fire at wall-clock minute `local` happens: the first of a repeated minute, the end of the
/// gap for a skipped one.
fn fire_instant(local: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(time) => Some(time.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => {
            // The first wall-clock minute after `local` that exists is where the gap ends.
            let mut probe = local;
            for _ in 0..(48 * 60) {
                probe += Duration::minutes(1);
                if let LocalResult::Single(time) | LocalResult::Ambiguous(time, _) = tz.from_local_datetime(&probe) {
                    return Some(time.with_timezone(&Utc));
                }
            }
            None
        }
    }
}

/// One field's set of values as bits.
fn field(text: &str, low: u32, high: u32, names: &[&str], months: bool) -> Result<u64, String> {
    let value = |text: &str| -> Result<u32, String> {
        let lower = text.to_ascii_lowercase();
        if let Some(position) = names.iter().position(|name| *name == lower) {
            return Ok(position as u32 + u32::from(months));
        }
        let number: u32 = text.parse().map_err(|_| {
            if names.is_empty() {
                format!("{text:?} is not a number")
            } else {
                format!("{text:?} is neither a number nor a name ({})", names.join(", "))
            }
        })?;
        if number < low || number > high {
            return Err(format!("{number} is outside {low}-{high}"));
        }
        Ok(number)
    };
    let mut set = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err("an empty item in a list".into());
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().map_err(|_| format!("the step {step:?} is not a number"))?;
                if step == 0 {
                    return Err("a step of 0 never advances".into());
                }
                (range, step)
            }
            None => (item, 1),
        };
        let (first, last) = if range == "*" {
            (low, high)
        } else if let Some((from, to)) = range.split_once('-') {
            let (from, to) = (value(from)?, value(to)?);
            if from > to {
                return Err(format!("the range {range:?} runs backwards"));
            }
            (from, to)
        } else {
            let from = value(range)?;
            // `5/20` is 5, 25, 45: from the value to the field's end.
            (from, if item.contains('/') { high } else { from })
        };
        let mut current = first;
        while current <= last {
            set |= 1 << current;
            current += step;
        }
    }
    Ok(set)
}

/// Parses an IANA time zone name (`Europe/Berlin`).
pub fn parse_tz(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!(
            "{name:?} is not a time zone errand knows; use an IANA name such as Europe/Berlin, America/New_York or UTC"
        )
    })
}

/// This machine's time zone: `TZ`, else where `/etc/localtime` points, else `/etc/timezone`, else UTC.
pub fn local_tz() -> Tz {
    let named = std::env::var("TZ").ok().map(|name| name.trim_start_matches(':').to_string()).or_else(|| {
        let target = std::fs::read_link("/etc/localtime").ok()?;
        let text = target.to_string_lossy().into_owned();
        text.split_once("zoneinfo/").map(|(_, name)| name.to_string())
    });
    let named = named.or_else(|| std::fs::read_to_string("/etc/timezone").ok().map(|text| text.trim().to_string()));
    named.and_then(|name| name.parse().ok()).unwrap_or(Tz::UTC)
}

/// Parses `--at`: `2027-01-04T09:00` (or with seconds, or a space for the `T`) in `tz`, or an RFC 3339
/// instant with its own offset. A time the clocks skip is taken at the gap's end.
pub fn parse_at(text: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Ok(instant.with_timezone(&Utc));
    }
    let local = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .ok_or_else(|| format!("{text:?} is not a time errand can read; write it as 2027-01-04T09:00"))?;
    fire_instant(local, tz).ok_or_else(|| format!("{text:?} does not exist in {tz}"))
}

/// An instant as the store keeps it: RFC 3339 UTC to the second, so text order is time order.
pub fn store_time(instant: DateTime<Utc>) -> String {
    instant.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Reads an instant the store kept.
pub fn read_store_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|time| time.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        read_store_time(text).unwrap()
    }

    fn next(cron: &str, after: &str, tz: &str) -> String {
        let cron = Cron::parse(cron).unwrap();
        store_time(cron.next_after(utc(after), parse_tz(tz).unwrap()).unwrap())
    }

    #[test]
    fn next_fires_in_time_zones() {
        let table = [
            // (cron, after, tz, next)
            ("0 8 * * 1-5", "2027-01-01T12:00:00Z", "Europe/Berlin", "2027-01-04T07:00:00Z"), // Fri → Mon 8:00 CET
            ("0 8 * * 1-5", "2027-01-04T07:00:00Z", "Europe/Berlin", "2027-01-05T07:00:00Z"), // strictly after
            ("0 8 * * mon-fri", "2027-07-02T12:00:00Z", "Europe/Berlin", "2027-07-05T06:00:00Z"), // CEST
            ("*/15 * * * *", "2027-01-01T00:07:30Z", "UTC", "2027-01-01T00:15:00Z"),
            ("5/20 * * * *", "2027-01-01T00:26:00Z", "UTC", "2027-01-01T00:45:00Z"),
            ("0 9 1 jan,jul *", "2027-02-01T00:00:00Z", "America/New_York", "2027-07-01T13:00:00Z"),
            ("@daily", "2027-01-01T10:00:00Z", "Asia/Tokyo", "2027-01-01T15:00:00Z"),
            ("0 0 * * 7", "2027-01-01T00:00:00Z", "UTC", "2027-01-03T00:00:00Z"), // 7 is Sunday
            // Day of month and day of week both restricted: either matches.
            ("0 0 13 * fri", "2027-01-01T00:00:00Z", "UTC", "2027-01-08T00:00:00Z"),
            ("0 0 29 2 *", "2027-01-01T00:00:00Z", "UTC", "2028-02-29T00:00:00Z"),
        ];
        for (cron, after, tz, expected) in table {
            assert_eq!(next(cron, after, tz), expected, "{cron} after {after} in {tz}");
        }
        assert_eq!(Cron::parse("0 0 30 2 *").unwrap().next_after(utc("2027-01-01T00:00:00Z"), Tz::UTC), None);
    }

    #[test]
    fn a_skipped_hour_fires_once_at_the_gaps_end_and_a_repeated_hour_once() {
        // Europe/Berlin springs forward on 2027-03-28 at 02:00 CET (01:00 UTC) to 03:00 CEST.
        assert_eq!(next("30 2 * * *", "2027-03-27T12:00:00Z", "Europe/Berlin"), "2027-03-28T01:00:00Z");
        assert_eq!(next("30 2 * * *", "2027-03-28T01:00:00Z", "Europe/Berlin"), "2027-03-29T00:30:00Z");
        let every_quarter = Cron::parse("*/15 1-3 * * *").unwrap();
        let berlin = parse_tz("Europe/Berlin").unwrap();
        let fires: Vec<String> = every_quarter
            .fires_between(utc("2027-03-27T23:59:00Z"), utc("2027-03-28T01:15:00Z"), berlin)
            .into_iter()
            .map(store_time)
            .collect();
        // 01:00-01:45 CET, then the four skipped 02:xx minutes together at 03:00 CEST, then 03:15 CEST.
        assert_eq!(
            fires,
            [
                "2027-03-28T00:00:00Z",
                "2027-03-28T00:15:00Z",
                "2027-03-28T00:30:00Z",
                "2027-03-28T00:45:00Z",
                "2027-03-28T01:00:00Z",
                "2027-03-28T01:15:00Z",
            ]
        );
        // It falls back on 2027-10-31 at 03:00 CEST (01:00 UTC) to 02:00 CET: 02:30 happens twice, fires once.
        let fires: Vec<String> = Cron::parse("30 2 * * *")
            .unwrap()
            .fires_between(utc("2027-10-30T12:00:00Z"), utc("2027-11-01T12:00:00Z"), berlin)
            .into_iter()
            .map(store_time)
            .collect();
        assert_eq!(fires, ["2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z"]);
        // New York: 2027-03-14 02:00 EST → 03:00 EDT, and 2027-11-07 02:00 EDT → 01:00 EST.
        assert_eq!(next("0 2 * * *", "2027-03-13T12:00:00Z", "America/New_York"), "2027-03-14T07:00:00Z");
        let new_york = parse_tz("America/New_York").unwrap();
        let fires = Cron::parse("30 1 * * *").unwrap().fires_between(
            utc("2027-11-06T12:00:00Z"),
            utc("2027-11-07T12:00:00Z"),
            new_york,
        );
        assert_eq!(fires.into_iter().map(store_time).collect::<Vec<_>>(), ["2027-11-07T05:30:00Z"]);
    }

    #[test]
    fn bad_expressions_name_the_field_and_the_form() {
        let cases = [
            ("0 8 * *", "it has 4 fields, and needs five"),
            ("60 8 * * *", "the minute field \"60\": 60 is outside 0-59"),
            ("0 8 * * funday", "the day of week field \"funday\": \"funday\" is neither a number nor a name"),
            ("0 8 * 13 *", "the month field \"13\": 13 is outside 1-12"),
            ("*/0 * * * *", "a step of 0 never advances"),
            ("0 5-1 * * *", "the range \"5-1\" runs backwards"),
            ("0 8,,9 * * *", "an empty item in a list"),
        ];
        for (text, expected) in cases {
            let error = Cron::parse(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
        assert!(parse_tz("Mars/Olympus").unwrap_err().contains("IANA name"));
    }

    #[test]
    fn at_reads_local_times_and_instants() {
        let berlin = parse_tz("Europe/Berlin").unwrap();
        assert_eq!(store_time(parse_at("2027-01-04T09:00", berlin).unwrap()), "2027-01-04T08:00:00Z");
        assert_eq!(store_time(parse_at("2027-01-04T09:00:00+00:00", berlin).unwrap()), "2027-01-04T09:00:00Z");
        assert_eq!(store_time(parse_at("2027-03-28T02:30", berlin).unwrap()), "2027-03-28T01:00:00Z");
        assert!(parse_at("next tuesday", berlin).unwrap_err().contains("2027-01-04T09:00"));
    }
}

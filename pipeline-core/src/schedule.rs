//! Cron schedules as Pachyderm reads them (robfig/cron's `ParseStandard` plus `@never`), and
//! when they fire next.
//!
//! A schedule is five fields (minute hour day-of-month month day-of-week) with lists, ranges,
//! steps and month/day names, an optional `TZ=`/`CRON_TZ=` prefix, or a descriptor
//! (`@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`,
//! `@every <duration>`, `@never`). As in robfig/cron, when day-of-month or day-of-week is
//! `*` a day must match both, otherwise either.
//!
//! Times are seconds since the Unix epoch, computed in UTC: a schedule with a time zone other
//! than UTC has no next time here ([`Schedule::next_after`] is `None`).
//!
//! ```
//! use pipeline_core::schedule::Schedule;
//! let s = Schedule::parse("30 9 * * mon-fri").unwrap();
//! // Saturday 2026-11-28 00:00 UTC → Monday 2026-11-30 09:30 UTC.
//! assert_eq!(s.next_after(1_795_824_000), Some(1_796_031_000));
//! assert_eq!(Schedule::parse("@every 90s").unwrap().next_after(100), Some(190));
//! assert!(Schedule::parse("61 * * * *").is_err());
//! ```

use crate::civil_time::civil_from_days;
use crate::spec::{Duration, DurationError};

/// A parsed cron schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// `@every <duration>`: a fixed interval (at least one second).
    Every {
        /// Seconds between ticks.
        seconds: u64,
    },
    /// `@never`.
    Never,
    /// Five fields (descriptors like `@daily` are stored as their fields).
    Fields(Fields),
}

/// The five fields as bit sets, plus the time zone prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    /// Day-of-month was `*` (or `?`, or a step of 1 over it).
    dom_star: bool,
    /// Day-of-week was `*`.
    dow_star: bool,
    /// The `TZ=` / `CRON_TZ=` value, if any.
    time_zone: Option<String>,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// How far ahead [`Schedule::next_after`] looks for a matching minute (schedules such as
/// `0 0 30 2 *` never fire).
const HORIZON_DAYS: i64 = 5 * 366;

/// Why a cron schedule could not be parsed; the messages are robfig/cron's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The schedule is empty (or only white space).
    #[error("empty spec string")]
    Empty,
    /// A `TZ=`/`CRON_TZ=` prefix with nothing after it.
    #[error("missing schedule after time zone in {spec:?}")]
    MissingSchedule {
        /// The schedule as given.
        spec: String,
    },
    /// `@every` followed by something that is not a duration.
    #[error("failed to parse duration in {spec:?}")]
    Duration {
        /// The schedule as given.
        spec: String,
        /// What is wrong with the duration and what was expected.
        #[source]
        source: DurationError,
    },
    /// An `@` descriptor other than the known ones.
    #[error("unrecognized descriptor: {spec}")]
    UnknownDescriptor {
        /// The schedule as given.
        spec: String,
    },
    /// Not five fields.
    #[error(
        "expected exactly 5 fields (minute hour day-of-month month day-of-week), found {found}: {spec:?}"
    )]
    FieldCount {
        /// How many fields there were.
        found: usize,
        /// The schedule as given.
        spec: String,
    },
    /// A value that is neither a number nor a month or day name.
    #[error("failed to parse number {text:?} in cron field {field:?}")]
    Number {
        /// The whole field.
        field: String,
        /// The offending value.
        text: String,
    },
    /// A range that starts below the field's minimum.
    #[error("beginning of range ({lo}) below minimum ({min}): {part}")]
    BelowMinimum {
        /// The range's start.
        lo: u32,
        /// The field's minimum.
        min: u32,
        /// The offending part of the field.
        part: String,
    },
    /// A range that ends above the field's maximum.
    #[error("end of range ({hi}) above maximum ({max}): {part}")]
    AboveMaximum {
        /// The range's end.
        hi: u32,
        /// The field's maximum.
        max: u32,
        /// The offending part of the field.
        part: String,
    },
    /// A range whose start is after its end.
    #[error("beginning of range ({lo}) beyond end of range ({hi}): {part}")]
    Reversed {
        /// The range's start.
        lo: u32,
        /// The range's end.
        hi: u32,
        /// The offending part of the field.
        part: String,
    },
    /// A step of zero (`*/0`).
    #[error("step of range should be a positive number: {part}")]
    ZeroStep {
        /// The offending part of the field.
        part: String,
    },
}

fn parse_num(field: &str, s: &str) -> Result<u32, ScheduleError> {
    s.parse::<u32>().map_err(|_| ScheduleError::Number {
        field: field.to_owned(),
        text: s.to_owned(),
    })
}

fn value(field: &str, s: &str, min: u32, names: &[&str]) -> Result<u32, ScheduleError> {
    let lower = s.to_ascii_lowercase();
    match names.iter().zip(min..).find(|(n, _)| **n == lower) {
        Some((_, v)) => Ok(v),
        None => parse_num(field, s),
    }
}

/// One field as a bit set (bit `n` = value `n`) and whether it counts as `*`.
fn field(field: &str, min: u32, max: u32, names: &[&str]) -> Result<(u64, bool), ScheduleError> {
    let mut bits = 0u64;
    let mut star = false;
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (part, None),
        };
        let is_star = range == "*" || range == "?";
        let (lo, hi) = if is_star {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(field, a, min, names)?, value(field, b, min, names)?)
        } else {
            let v = value(field, range, min, names)?;
            (v, if step.is_some() { max } else { v })
        };
        if lo < min {
            let part = part.to_owned();
            return Err(ScheduleError::BelowMinimum { lo, min, part });
        }
        if hi > max {
            let part = part.to_owned();
            return Err(ScheduleError::AboveMaximum { hi, max, part });
        }
        if lo > hi {
            let part = part.to_owned();
            return Err(ScheduleError::Reversed { lo, hi, part });
        }
        let step = match step {
            Some(s) => match parse_num(field, s)? {
                0 => {
                    let part = part.to_owned();
                    return Err(ScheduleError::ZeroStep { part });
                }
                n => n,
            },
            None => 1,
        };
        star |= is_star && step == 1;
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v = v.saturating_add(step);
        }
    }
    Ok((bits, star))
}

impl Schedule {
    /// Parses a schedule; the error says what is wrong, in robfig/cron's words.
    pub fn parse(spec: &str) -> Result<Schedule, ScheduleError> {
        let mut spec = spec.trim();
        if spec.is_empty() {
            return Err(ScheduleError::Empty);
        }
        let mut time_zone = None;
        if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
            match spec.split_once(' ') {
                Some((tz, rest)) => {
                    time_zone = tz.split_once('=').map(|(_, z)| z.to_owned());
                    spec = rest.trim_start();
                }
                None => {
                    let spec = spec.to_owned();
                    return Err(ScheduleError::MissingSchedule { spec });
                }
            }
        }
        if let Some(descriptor) = spec.strip_prefix('@') {
            if let Some(every) = descriptor.strip_prefix("every ") {
                let d =
                    every
                        .trim()
                        .parse::<Duration>()
                        .map_err(|source| ScheduleError::Duration {
                            spec: spec.to_owned(),
                            source,
                        })?;
                return Ok(Schedule::Every {
                    seconds: d.as_std().as_secs().max(1),
                });
            }
            let fields = match descriptor {
                "yearly" | "annually" => "0 0 1 1 *",
                "monthly" => "0 0 1 * *",
                "weekly" => "0 0 * * 0",
                "daily" | "midnight" => "0 0 * * *",
                "hourly" => "0 * * * *",
                "never" => return Ok(Schedule::Never),
                _ => {
                    let spec = spec.to_owned();
                    return Err(ScheduleError::UnknownDescriptor { spec });
                }
            };
            return Self::fields(fields, time_zone);
        }
        Self::fields(spec, time_zone)
    }

    fn fields(spec: &str, time_zone: Option<String>) -> Result<Schedule, ScheduleError> {
        let parts: Vec<&str> = spec.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = parts.as_slice() else {
            return Err(ScheduleError::FieldCount {
                found: parts.len(),
                spec: spec.to_owned(),
            });
        };
        let (minute, _) = field(minute, 0, 59, &[])?;
        let (hour, _) = field(hour, 0, 23, &[])?;
        let (dom, dom_star) = field(dom, 1, 31, &[])?;
        let (month, _) = field(month, 1, 12, &MONTHS)?;
        let (dow, dow_star) = field(dow, 0, 6, &DAYS)?;
        Ok(Schedule::Fields(Fields {
            minute,
            hour,
            dom,
            month,
            dow,
            dom_star,
            dow_star,
            time_zone,
        }))
    }

    /// The first time strictly after `t` (seconds since the epoch) the schedule fires, or
    /// `None` (`@never`, a time zone other than UTC, or nothing within five years).
    pub fn next_after(&self, t: u64) -> Option<u64> {
        match self {
            Schedule::Never => None,
            Schedule::Every { seconds } => t.checked_add(*seconds),
            Schedule::Fields(f) => f.next_after(t),
        }
    }
}

impl Fields {
    fn next_after(&self, t: u64) -> Option<u64> {
        if self
            .time_zone
            .as_deref()
            .is_some_and(|z| !matches!(z, "UTC" | "Etc/UTC" | "UTC0" | "Z"))
        {
            return None;
        }
        let start_min = i64::try_from(t / 60 + 1).ok()?;
        let start_day = start_min.div_euclid(1440);
        let mut minute_of_day = start_min.rem_euclid(1440);
        for day in start_day..start_day + HORIZON_DAYS {
            if day > start_day {
                minute_of_day = 0;
            }
            if !self.day_matches(day) {
                continue;
            }
            for m in minute_of_day..1440 {
                let (h, mi) = (m / 60, m % 60);
                if self.hour & (1 << h) != 0 && self.minute & (1 << mi) != 0 {
                    return u64::try_from((day * 1440 + m) * 60).ok();
                }
            }
        }
        None
    }

    fn day_matches(&self, day: i64) -> bool {
        let (_, month, dom) = civil_from_days(day);
        if self.month & (1 << month) == 0 {
            return false;
        }
        // 1970-01-01 was a Thursday (4).
        let dow = (day + 4).rem_euclid(7);
        let dom_match = self.dom & (1 << dom) != 0;
        let dow_match = self.dow & (1 << dow) != 0;
        if self.dom_star || self.dow_star {
            dom_match && dow_match
        } else {
            dom_match || dow_match
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_chain::ErrorChain;

    /// Seconds since the epoch of a UTC date and time.
    fn at(y: i64, mo: i64, d: i64, h: i64, mi: i64) -> u64 {
        let days = (0..)
            .map(|n: i64| (n, civil_from_days(n)))
            .find(|(_, (yy, mm, dd))| *yy == y && i64::from(*mm) == mo && i64::from(*dd) == d)
            .map(|(n, _)| n)
            .expect("date after 1970");
        u64::try_from(days * 86_400 + h * 3600 + mi * 60).expect("positive")
    }

    fn next(spec: &str, t: u64) -> Option<u64> {
        Schedule::parse(spec).expect(spec).next_after(t)
    }

    #[test]
    fn fields_fire_at_the_next_matching_minute() {
        let sat = at(2026, 11, 28, 0, 0);
        assert_eq!(next("30 9 * * mon-fri", sat), Some(at(2026, 11, 30, 9, 30)));
        assert_eq!(
            next("*/15 * * * *", at(2026, 1, 1, 10, 7)),
            Some(at(2026, 1, 1, 10, 15))
        );
        // Strictly after: a time on the schedule moves to the next one.
        assert_eq!(
            next("0 * * * *", at(2026, 1, 1, 10, 0)),
            Some(at(2026, 1, 1, 11, 0))
        );
        assert_eq!(
            next("@hourly", at(2026, 1, 1, 10, 0) + 1),
            Some(at(2026, 1, 1, 11, 0))
        );
        assert_eq!(
            next("@daily", at(2026, 12, 31, 23, 59)),
            Some(at(2027, 1, 1, 0, 0))
        );
        assert_eq!(
            next("@yearly", at(2026, 3, 1, 0, 0)),
            Some(at(2027, 1, 1, 0, 0))
        );
        assert_eq!(next("@weekly", sat), Some(at(2026, 11, 29, 0, 0)));
        assert_eq!(
            next("0 12 29 feb *", at(2026, 3, 1, 0, 0)),
            Some(at(2028, 2, 29, 12, 0))
        );
        assert_eq!(next("TZ=UTC 5 4 * * *", sat), Some(at(2026, 11, 28, 4, 5)));
    }

    #[test]
    fn day_of_month_and_week_combine_as_robfig_does() {
        // Both restricted: either matches (the 1st, or any Monday).
        let t = at(2026, 11, 28, 0, 0); // Saturday
        assert_eq!(next("0 0 1 * mon", t), Some(at(2026, 11, 30, 0, 0)));
        assert_eq!(next("0 0 1 * fri", t), Some(at(2026, 12, 1, 0, 0)));
        // One is `*`: both must match.
        assert_eq!(next("0 0 * * fri", t), Some(at(2026, 12, 4, 0, 0)));
        assert_eq!(next("0 0 13 * *", t), Some(at(2026, 12, 13, 0, 0)));
        // A step over `*` is a restriction.
        assert_eq!(next("0 0 */10 * mon", t), Some(at(2026, 11, 30, 0, 0)));
    }

    #[test]
    fn schedules_without_a_next_time() {
        assert_eq!(next("@never", 0), None);
        assert_eq!(next("0 0 30 2 *", 0), None);
        assert_eq!(next("TZ=Europe/Paris 0 0 * * *", 0), None);
        assert_eq!(next("@every 1m", 10), Some(70));
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (spec, says) in [
            ("", "empty"),
            ("* * * *", "exactly 5 fields"),
            ("60 * * * *", "above maximum"),
            ("5-1 * * * *", "beyond end"),
            ("*/0 * * * *", "positive"),
            ("* * * foo *", "parse number"),
            ("@often", "unrecognized descriptor"),
            ("@every soon", "duration"),
            ("TZ=UTC", "missing schedule"),
        ] {
            let e = ErrorChain(&Schedule::parse(spec).expect_err(spec)).to_string();
            assert!(e.contains(says), "{spec:?}: {e}");
        }
    }
}

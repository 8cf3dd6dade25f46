//! Durations in specs: Pachyderm's `"300s"` form and human forms (`"5m"`, `"1h30m"`, `"1.5s"`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A spec duration. Serialises in Pachyderm's protobuf form (`"90s"`, `"1.5s"`).
///
/// ```
/// use pipeline_core::spec::Duration;
/// let d: Duration = "1h30m".parse().unwrap();
/// assert_eq!(d.as_std().as_secs(), 5400);
/// assert_eq!(d.to_string(), "5400s");
/// assert!("five minutes".parse::<Duration>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(std::time::Duration);

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: expected seconds like \"300s\" or a human form like \"5m\", \"1h30m\", \"1.5s\" (units: ns, us, ms, s, m, h)"
)]
pub struct DurationError {
    /// The rejected text.
    pub input: String,
}

impl Duration {
    /// Wraps a standard duration.
    pub fn new(d: std::time::Duration) -> Self {
        Duration(d)
    }
    /// The standard-library duration.
    pub fn as_std(&self) -> std::time::Duration {
        self.0
    }
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        Duration(d)
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DurationError {
            input: s.to_string(),
        };
        let text = s.trim();
        if text.is_empty() || text.len() > 64 {
            return Err(err());
        }
        let mut rest = text;
        // Exact integer arithmetic in nanoseconds, so "1.000000001s" round-trips.
        let mut total: u128 = 0;
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(err)?;
            if num_len == 0 {
                return Err(err());
            }
            let (num, tail) = rest.split_at(num_len);
            let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
            if frac_part.contains('.') || (int_part.is_empty() && frac_part.is_empty()) {
                return Err(err());
            }
            let unit_len = tail
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(tail.len());
            let (unit, tail) = tail.split_at(unit_len);
            let unit_ns: u128 = match unit {
                "ns" => 1,
                "us" | "µs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                _ => return Err(err()),
            };
            let int: u128 = if int_part.is_empty() {
                0
            } else {
                int_part.parse().map_err(|_| err())?
            };
            // Up to 18 fractional digits are significant; more are dropped.
            let frac_digits = frac_part.get(..frac_part.len().min(18)).unwrap_or("");
            let frac: u128 = if frac_digits.is_empty() {
                0
            } else {
                frac_digits.parse().map_err(|_| err())?
            };
            let scale = 10u128.pow(u32::try_from(frac_digits.len()).map_err(|_| err())?);
            let part = int
                .checked_mul(unit_ns)
                .and_then(|v| v.checked_add(frac.checked_mul(unit_ns)? / scale))
                .ok_or_else(err)?;
            total = total.checked_add(part).ok_or_else(err)?;
            rest = tail;
        }
        let secs = u64::try_from(total / 1_000_000_000).map_err(|_| err())?;
        let nanos = u32::try_from(total % 1_000_000_000).map_err(|_| err())?;
        Ok(Duration(std::time::Duration::new(secs, nanos)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        let nanos = self.0.subsec_nanos();
        if nanos == 0 {
            write!(f, "{secs}s")
        } else {
            let frac = format!("{nanos:09}");
            write!(f, "{secs}.{}s", frac.trim_end_matches('0'))
        }
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The pattern a duration string must match in the JSON Schema (the parser above is the
/// authority; the pattern is its regular-language shape).
pub const DURATION_PATTERN: &str = r"^\s*(([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|ms|s|m|h))+\s*$";

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration: seconds like \"300s\" (Pachyderm's form) or a human form like \"5m\", \"1h30m\", \"1.5s\".",
            "type": "string",
            "pattern": DURATION_PATTERN
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Result<std::time::Duration, DurationError> {
        s.parse::<Duration>().map(|d| d.as_std())
    }

    #[test]
    fn accepted_forms() {
        use std::time::Duration as D;
        assert_eq!(d("300s"), Ok(D::from_secs(300)));
        assert_eq!(d("5m"), Ok(D::from_secs(300)));
        assert_eq!(d("1h30m"), Ok(D::from_secs(5400)));
        assert_eq!(d("1.5s"), Ok(D::from_millis(1500)));
        assert_eq!(d(".5s"), Ok(D::from_millis(500)));
        assert_eq!(d("250ms"), Ok(D::from_millis(250)));
        assert_eq!(d("1.000000001s"), Ok(D::new(1, 1)));
        assert_eq!(
            d("2h45m30.25s"),
            Ok(D::from_millis((2 * 3600 + 45 * 60 + 30) * 1000 + 250))
        );
    }

    #[test]
    fn rejected_forms() {
        for bad in [
            "",
            "5",
            "s",
            "1x",
            "1..2s",
            ".s",
            "five minutes",
            "-5s",
            "1e3s",
            "99999999999999999999999999999h",
        ] {
            assert!(d(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["0s", "1s", "1.5s", "5400s", "0.000000001s", "12.000000034s"] {
            let parsed: Duration = s.parse().unwrap();
            assert_eq!(parsed.to_string(), s);
        }
    }
}

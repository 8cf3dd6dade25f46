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
        let mut total = 0f64;
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(err)?;
            if num_len == 0 {
                return Err(err());
            }
            let (num, tail) = rest.split_at(num_len);
            if num.matches('.').count() > 1 || num == "." {
                return Err(err());
            }
            let value: f64 = num.parse().map_err(|_| err())?;
            let unit_len = tail
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(tail.len());
            let (unit, tail) = tail.split_at(unit_len);
            let scale = match unit {
                "ns" => 1e-9,
                "us" | "µs" => 1e-6,
                "ms" => 1e-3,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => return Err(err()),
            };
            total += value * scale;
            rest = tail;
        }
        if !total.is_finite() || total > u64::MAX as f64 / 2.0 {
            return Err(err());
        }
        Ok(Duration(std::time::Duration::from_secs_f64(total)))
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

//! Small syntaxes found inside spec strings: names, cron specs, timestamps, human sizes, images,
//! key templates. Each check returns a typed error whose message names what is wrong and what
//! is expected.

use crate::schedule::ScheduleError;

/// Longest pipeline (and project) name Pachyderm accepts.
pub const MAX_PIPELINE_NAME: usize = 51;
/// Kubernetes' limit for the worker controller name `<project>-<name>-v99`.
pub const MAX_K8S_NAME: usize = 63;

/// A repo, branch, pipeline or project name that breaks the naming rules. `kind` says which
/// (`"repo"`, `"pipeline"`, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameSyntaxError {
    /// The name is empty.
    #[error("{kind} name is empty")]
    Empty {
        /// What the name names.
        kind: String,
    },
    /// A character outside `[a-zA-Z0-9_-]`.
    #[error(
        "{kind} name {name:?} is invalid: only alphanumeric characters, underscores, and dashes are allowed"
    )]
    Characters {
        /// What the name names.
        kind: String,
        /// The name.
        name: String,
    },
    /// A pipeline or project name that does not start with a letter or digit.
    #[error(
        "{kind} name {name:?} is invalid: {kind} names must start with an alphanumeric character"
    )]
    Start {
        /// What the name names.
        kind: String,
        /// The name.
        name: String,
    },
    /// A pipeline or project name longer than [`MAX_PIPELINE_NAME`].
    #[error("{kind} name {name:?} is {over} characters longer than the {MAX_PIPELINE_NAME} max")]
    TooLong {
        /// What the name names.
        kind: String,
        /// The name.
        name: String,
        /// How many characters too long it is.
        over: usize,
    },
}

/// Repo, branch, pipeline and project names: `^[a-zA-Z0-9_-]+$`.
pub fn check_name_chars(kind: &str, name: &str) -> Result<(), NameSyntaxError> {
    if name.is_empty() {
        let kind = kind.to_owned();
        return Err(NameSyntaxError::Empty { kind });
    }
    if name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(())
    } else {
        Err(NameSyntaxError::Characters {
            kind: kind.to_owned(),
            name: name.to_owned(),
        })
    }
}

/// Pipeline and project names: the name rules plus "starts with a letter or digit" and length.
pub fn check_pipeline_like_name(kind: &str, name: &str) -> Result<(), NameSyntaxError> {
    check_name_chars(kind, name)?;
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(NameSyntaxError::Start {
            kind: kind.to_owned(),
            name: name.to_owned(),
        });
    }
    if name.len() > MAX_PIPELINE_NAME {
        return Err(NameSyntaxError::TooLong {
            kind: kind.to_owned(),
            name: name.to_owned(),
            over: name.len() - MAX_PIPELINE_NAME,
        });
    }
    Ok(())
}

/// A cron schedule as Pachyderm parses it (robfig/cron `ParseStandard` plus `@never`):
/// five fields (minute hour day-of-month month day-of-week) with lists, ranges, steps and
/// month/day names, an optional `TZ=`/`CRON_TZ=` prefix, or a descriptor (`@yearly`,
/// `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`, `@every <duration>`,
/// `@never`).
///
/// ```
/// use pipeline_core::validate::syntax::check_cron;
/// assert!(check_cron("@every 10s").is_ok());
/// assert!(check_cron("*/5 9-17 * JAN-MAR mon,fri").is_ok());
/// assert!(check_cron("every 5m").is_err());
/// assert!(check_cron("").is_err());
/// ```
pub fn check_cron(spec: &str) -> Result<(), ScheduleError> {
    crate::schedule::Schedule::parse(spec).map(|_| ())
}

fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// A timestamp that is not RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {text:?}: expected RFC 3339, like \"2024-05-01T10:00:00Z\"")]
pub struct TimestampError {
    /// The text given.
    pub text: String,
}

/// An RFC 3339 timestamp (`2024-05-01T10:00:00Z`, `2024-05-01T10:00:00.5+02:00`).
pub fn check_rfc3339(s: &str) -> Result<(), TimestampError> {
    let err = || TimestampError { text: s.to_owned() };
    let (date, rest) = s.split_once(['T', 't']).ok_or_else(err)?;
    let mut d = date.split('-');
    let (y, m, day) = (d.next(), d.next(), d.next());
    if d.next().is_some() {
        return Err(err());
    }
    let (Some(_), Some(m), Some(day)) = (
        y.and_then(|y| digits(y, 4)),
        m.and_then(|m| digits(m, 2)),
        day.and_then(|x| digits(x, 2)),
    ) else {
        return Err(err());
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return Err(err());
    }
    let (time, offset) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        (t, None)
    } else {
        let i = rest.rfind(['+', '-']).ok_or_else(err)?;
        (rest.get(..i).ok_or_else(err)?, rest.get(i + 1..))
    };
    let (time, frac) = match time.split_once('.') {
        Some((t, f)) => (t, Some(f)),
        None => (time, None),
    };
    if frac.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit())) {
        return Err(err());
    }
    let hms: Vec<Option<u32>> = time.split(':').map(|p| digits(p, 2)).collect();
    let [Some(h), Some(mi), Some(sec)] = hms.as_slice() else {
        return Err(err());
    };
    if *h > 23 || *mi > 59 || *sec > 60 {
        return Err(err());
    }
    if let Some(off) = offset {
        let hm: Vec<Option<u32>> = off.split(':').map(|p| digits(p, 2)).collect();
        let [Some(oh), Some(om)] = hm.as_slice() else {
            return Err(err());
        };
        if *oh > 23 || *om > 59 {
            return Err(err());
        }
    }
    Ok(())
}

/// A size that is not a human size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid trigger size {text:?}: expected a size like \"1M\", \"500KB\" or \"2GiB\"")]
pub struct SizeError {
    /// The text given.
    pub text: String,
}

/// A human size as docker/go-units reads it (`1M`, `500 KB`, `1.5GiB`).
pub fn check_human_size(s: &str) -> Result<(), SizeError> {
    parse_human_size(s).map(|_| ())
}

/// A human size in bytes, as docker/go-units' `RAMInBytes` reads it (what Pachyderm uses for
/// trigger sizes): a number, then an optional unit `k`, `m`, `g`, `t` or `p` (any case, with
/// an optional `b` or `ib`), all powers of 1024.
///
/// ```
/// use pipeline_core::validate::syntax::parse_human_size;
/// assert_eq!(parse_human_size("1M"), Ok(1 << 20));
/// assert_eq!(parse_human_size("1.5 KiB"), Ok(1536));
/// assert_eq!(parse_human_size("10"), Ok(10));
/// assert!(parse_human_size("ten").is_err());
/// ```
pub fn parse_human_size(s: &str) -> Result<u64, SizeError> {
    let t = s.trim();
    let num_len = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(num_len);
    let unit = unit.trim().to_ascii_lowercase();
    let err = || SizeError { text: s.to_owned() };
    let n: f64 = num.parse().map_err(|_| err())?;
    if unit.len() > 3 {
        return Err(err());
    }
    let power = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return Err(err()),
    };
    let bytes = n * 1024f64.powi(power);
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(err());
    }
    Ok(bytes as u64)
}

/// What is odd about an image reference, if anything (pachctl warns, never fails).
pub fn image_tag_warning(image: &str) -> Option<String> {
    if image.contains('@') {
        return None; // pinned by digest
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        None => Some(format!(
            "image {image:?} has no tag; pin a version (e.g. {image}:1.0) so jobs are reproducible"
        )),
        Some((_, "latest")) => Some(format!(
            "image {image:?} uses the `latest` tag; pin a version so jobs are reproducible"
        )),
        Some(_) => None,
    }
}

/// A bad group reference in a `join_on` / `group_by` key template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupRefError {
    /// `${}` or `${a}`: braces without a group number.
    #[error(
        "invalid group reference at byte {at} of {template:?}: expected $N or ${{N}} with N a group number"
    )]
    NotANumber {
        /// Byte offset of the `$`.
        at: usize,
        /// The template.
        template: String,
    },
    /// `$01`: a group number with a leading zero (it crashes Pachyderm's worker).
    #[error(
        "invalid group reference ${digits} in {template:?}: group numbers cannot have a leading zero (write ${fixed})"
    )]
    LeadingZero {
        /// The digits as written.
        digits: String,
        /// The template.
        template: String,
        /// The digits without the leading zeros.
        fixed: String,
    },
    /// A group number that does not fit in 32 bits.
    #[error("group number {digits} in {template:?} is too large")]
    TooLarge {
        /// The digits as written.
        digits: String,
        /// The template.
        template: String,
    },
    /// `${` without a closing `}`.
    #[error("unclosed `${{` at byte {at} of {template:?}")]
    Unclosed {
        /// Byte offset of the `$`.
        at: usize,
        /// The template.
        template: String,
    },
}

/// A `join_on` / `group_by` key template: `$n` or `${n}` insert capture group n (`$0` is the
/// whole path), `$$` is a literal `$`, a `$` not followed by a digit or `{` is literal.
/// Group numbers with a leading zero (`$01`, which crashes Pachyderm's worker), empty or
/// non-numeric braces (`${}`, `${a}`) and unclosed braces are rejected. Returns the highest
/// group number used.
///
/// ```
/// use pipeline_core::validate::syntax::check_template;
/// assert_eq!(check_template("$1-${2}"), Ok(Some(2)));
/// assert_eq!(check_template("cost: $$5"), Ok(None));
/// assert!(check_template("$01").is_err());
/// ```
pub fn check_template(t: &str) -> Result<Option<u32>, GroupRefError> {
    let bytes = t.as_bytes();
    let mut i = 0;
    let mut max: Option<u32> = None;
    let template = || t.to_owned();
    let group = |digits: &str, at: usize| -> Result<u32, GroupRefError> {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(GroupRefError::NotANumber {
                at,
                template: template(),
            });
        }
        if digits.len() > 1 && digits.starts_with('0') {
            let trimmed = digits.trim_start_matches('0');
            let fixed = if trimmed.is_empty() { "0" } else { trimmed };
            return Err(GroupRefError::LeadingZero {
                digits: digits.to_owned(),
                template: template(),
                fixed: fixed.to_owned(),
            });
        }
        digits.parse::<u32>().map_err(|_| GroupRefError::TooLarge {
            digits: digits.to_owned(),
            template: template(),
        })
    };
    while let Some(&b) = bytes.get(i) {
        if b != b'$' {
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'$') => i += 2,
            Some(b'{') => {
                let start = i + 2;
                let end = t
                    .get(start..)
                    .and_then(|r| r.find('}'))
                    .map(|e| start + e)
                    .ok_or_else(|| GroupRefError::Unclosed {
                        at: i,
                        template: template(),
                    })?;
                let n = group(t.get(start..end).unwrap_or(""), i)?;
                max = max.max(Some(n));
                i = end + 1;
            }
            Some(d) if d.is_ascii_digit() => {
                let start = i + 1;
                let len = t
                    .get(start..)
                    .map(|r| r.bytes().take_while(u8::is_ascii_digit).count())
                    .unwrap_or(0);
                let n = group(t.get(start..start + len).unwrap_or(""), i)?;
                max = max.max(Some(n));
                i = start + len;
            }
            _ => i += 1,
        }
    }
    Ok(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_specs() {
        for ok in [
            "@every 1m",
            "@every 1h30m",
            "@hourly",
            "@never",
            "0 0 * * *",
            "*/15 0-6,18-23 1 jan-jun SUN",
            "TZ=UTC 0 12 * * 1-5",
            "5/10 * * * ?",
        ] {
            assert!(check_cron(ok).is_ok(), "{ok}: {:?}", check_cron(ok));
        }
        for bad in [
            "",
            "every 5m",
            "@every",
            "@every soon",
            "@sometimes",
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 7",
            "5-1 * * * *",
            "*/0 * * * *",
            "a * * * *",
        ] {
            assert!(check_cron(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn timestamps() {
        for ok in [
            "2024-05-01T10:00:00Z",
            "2024-05-01t10:00:00.123z",
            "2024-05-01T10:00:00+02:00",
            "2024-05-01T10:00:00-07:30",
        ] {
            assert!(check_rfc3339(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "2024-05-01",
            "2024-13-01T00:00:00Z",
            "yesterday",
            "2024-05-01T25:00:00Z",
        ] {
            assert!(check_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_and_images_and_templates() {
        for ok in ["1M", "500KB", "2GiB", "100", "1.5 G"] {
            assert!(check_human_size(ok).is_ok(), "{ok}");
        }
        for bad in ["", "big", "1X", "M"] {
            assert!(check_human_size(bad).is_err(), "{bad}");
        }
        assert!(image_tag_warning("ubuntu:20.04").is_none());
        assert!(image_tag_warning("localhost:5000/x:1").is_none());
        assert!(image_tag_warning("x@sha256:abc").is_none());
        assert!(image_tag_warning("localhost:5000/x").is_some());
        assert!(image_tag_warning("x:latest").is_some());
        assert_eq!(check_template(""), Ok(None));
        assert_eq!(check_template("$0"), Ok(Some(0)));
        assert_eq!(check_template("a$"), Ok(None));
        assert_eq!(check_template("$x"), Ok(None));
        assert_eq!(check_template("$10$2"), Ok(Some(10)));
        for bad in ["$01", "${01}", "${}", "${a}", "${1"] {
            assert!(check_template(bad).is_err(), "{bad}");
        }
        assert!(check_name_chars("repo", "a.b").is_err());
        assert!(check_pipeline_like_name("pipeline", "_a").is_err());
        assert!(check_pipeline_like_name("pipeline", "a_").is_ok());
    }
}

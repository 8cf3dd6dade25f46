//! Text → located value trees ([`SourceNode`]), one per YAML document, without recursion.
//!
//! Built on the event parser under serde-saphyr (`granit-parser`): the tree is assembled with an
//! explicit stack, so nesting depth costs heap, not call stack, and is capped at
//! [`MAX_DEPTH`](super::parse::MAX_DEPTH) with an error at the offending line. Scalars are typed
//! here, the way Pachyderm's decoder does (YAML 1.2 core schema, Pachyderm's integer rule):
//!
//! - quoted and block scalars are strings;
//! - plain `null`, `~` and empty values are null; `true`/`false` (any case variant of the core
//!   schema) are booleans, so `yes`/`no`/`on`/`off` stay strings;
//! - plain integers must match `^(0|-?[1-9][0-9]*)$`; `0755`, `+5`, `0x1F` stay strings;
//! - plain decimals and exponents are numbers;
//! - `!!str` forces a string; other tags are refused.
//!
//! Anchors and aliases are refused where they are written; duplicate keys are refused at the
//! duplicate.

use std::borrow::Cow;

use granit_parser::{Event, Parser, ScalarStyle, Span, Tag};

use super::parse::{MAX_DEPTH, MAX_SPECS};
use super::source::{Diagnostic, FieldPath, Location, SourceNode, SourceValue};

/// Most parser events in one file (a cap on work, far above any real spec).
const MAX_EVENTS: usize = 4_000_000;

fn location(span: &Span) -> Location {
    Location::new(span.start.line(), span.start.col() + 1)
}

fn error(code: &'static str, location: Location, message: impl Into<String>) -> Diagnostic {
    let mut d = Diagnostic::error(code, FieldPath::root(), message);
    d.location = location;
    d
}

fn anchor_error(location: Location) -> Diagnostic {
    error(
        "yaml.anchor",
        location,
        "YAML anchors and aliases (&name, *name) are not supported in pipeline specs; write the value out in full",
    )
}

fn is_int(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    digits == "0"
        || (digits.starts_with(|c: char| ('1'..='9').contains(&c))
            && digits.bytes().all(|b| b.is_ascii_digit()))
}

fn is_float(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    // A plain integer with leading zeros is not a float either (it stays a string).
    let looks_octal = exponent.is_none() && !mantissa.contains('.');
    mantissa_ok && exponent_ok && !looks_octal
}

/// Types a plain scalar.
fn plain(text: &str) -> SourceValue {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => SourceValue::Null,
        "true" | "True" | "TRUE" => SourceValue::Bool(true),
        "false" | "False" | "FALSE" => SourceValue::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => SourceValue::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => SourceValue::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => SourceValue::Float(f64::NAN),
        _ if is_int(text) => match text.parse::<i64>() {
            Ok(i) if i < 0 => SourceValue::Int(i),
            _ => match text.parse::<u64>() {
                Ok(u) => SourceValue::UInt(u),
                Err(_) => text
                    .parse::<f64>()
                    .map(SourceValue::Float)
                    .unwrap_or_else(|_| SourceValue::String(text.to_string())),
            },
        },
        _ if is_float(text) => text
            .parse::<f64>()
            .map(SourceValue::Float)
            .unwrap_or_else(|_| SourceValue::String(text.to_string())),
        _ => SourceValue::String(text.to_string()),
    }
}

fn scalar(
    text: Cow<'_, str>,
    style: ScalarStyle,
    tag: Option<&Tag>,
    at: Location,
) -> Result<SourceValue, Diagnostic> {
    if let Some(tag) = tag {
        if tag.is_yaml_core_schema_tag("str") {
            return Ok(SourceValue::String(text.into_owned()));
        }
        if !tag.is_yaml_core_schema() {
            return Err(error(
                "yaml.tag",
                at,
                format!(
                    "YAML tag `{}{}` is not supported in pipeline specs",
                    tag.handle(),
                    tag.suffix()
                ),
            ));
        }
    }
    Ok(match style {
        ScalarStyle::Plain => plain(&text),
        _ => SourceValue::String(text.into_owned()),
    })
}

fn check_collection_tag(tag: Option<&Tag>, at: Location) -> Result<(), Diagnostic> {
    match tag {
        Some(tag) if !tag.is_yaml_core_schema() => Err(error(
            "yaml.tag",
            at,
            format!(
                "YAML tag `{}{}` is not supported in pipeline specs",
                tag.handle(),
                tag.suffix()
            ),
        )),
        _ => Ok(()),
    }
}

enum Frame {
    Seq(Location, Vec<SourceNode>),
    Map(
        Location,
        Vec<(String, Location, SourceNode)>,
        Option<(String, Location)>,
    ),
}

struct Builder {
    stack: Vec<Frame>,
    docs: Vec<SourceNode>,
}

impl Builder {
    fn push(&mut self, node: SourceNode) -> Result<(), Diagnostic> {
        match self.stack.last_mut() {
            None => {
                if self.docs.len() >= MAX_SPECS {
                    return Err(error(
                        "file.too_large",
                        node.location,
                        format!("more than {MAX_SPECS} documents in one file"),
                    ));
                }
                self.docs.push(node);
            }
            Some(Frame::Seq(_, items)) => items.push(node),
            Some(Frame::Map(_, entries, pending)) => match pending.take() {
                None => {
                    let key = match node.value {
                        SourceValue::String(s) => s,
                        SourceValue::Bool(b) => b.to_string(),
                        SourceValue::Int(i) => i.to_string(),
                        SourceValue::UInt(u) => u.to_string(),
                        SourceValue::Float(f) => f.to_string(),
                        SourceValue::Null => "null".to_string(),
                        SourceValue::Seq(_) | SourceValue::Map(_) => {
                            return Err(error(
                                "yaml.key",
                                node.location,
                                "mapping keys must be plain names, not lists or mappings",
                            ));
                        }
                    };
                    *pending = Some((key, node.location));
                }
                Some((key, key_location)) => {
                    if entries.iter().any(|(k, _, _)| *k == key) {
                        return Err(error(
                            "yaml.duplicate_key",
                            key_location,
                            format!("duplicate key `{key}`"),
                        ));
                    }
                    entries.push((key, key_location, node));
                }
            },
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame, at: Location) -> Result<(), Diagnostic> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(error(
                "file.too_deep",
                at,
                format!("spec is nested more than {MAX_DEPTH} levels deep"),
            ));
        }
        self.stack.push(frame);
        Ok(())
    }
}

/// Reads every YAML/JSON document of `text` into a located tree.
pub(crate) fn read_documents(text: &str) -> Result<Vec<SourceNode>, Diagnostic> {
    let mut parser = Parser::new_from_str(text);
    let mut b = Builder {
        stack: Vec::new(),
        docs: Vec::new(),
    };
    let mut events = 0usize;
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| {
            let m = e.marker();
            let at = Location::new(m.line().max(1), m.col() + 1);
            let info = e.info();
            if info.contains("recursion limit") {
                // The scanner's own flow-nesting cap (255) fired before ours.
                error(
                    "file.too_deep",
                    at,
                    format!("spec is nested more than {MAX_DEPTH} levels deep"),
                )
            } else {
                error("syntax", at, info)
            }
        })?;
        events += 1;
        if events > MAX_EVENTS {
            return Err(error(
                "file.too_large",
                location(&span),
                "spec file has too many elements",
            ));
        }
        let at = location(&span);
        match event {
            Event::Alias(_) | Event::UnresolvedAlias(_) | Event::Anchor(..) => {
                return Err(anchor_error(at));
            }
            Event::Scalar(text, style, anchor, tag) => {
                if anchor != 0 {
                    return Err(anchor_error(at));
                }
                let value = scalar(text, style, tag.as_deref(), at)?;
                b.push(SourceNode {
                    location: at,
                    value,
                })?;
            }
            Event::SequenceStart(_, anchor, tag) => {
                if anchor != 0 {
                    return Err(anchor_error(at));
                }
                check_collection_tag(tag.as_deref(), at)?;
                b.open(Frame::Seq(at, Vec::new()), at)?;
            }
            Event::MappingStart(_, anchor, tag) => {
                if anchor != 0 {
                    return Err(anchor_error(at));
                }
                check_collection_tag(tag.as_deref(), at)?;
                b.open(Frame::Map(at, Vec::new(), None), at)?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match b.stack.pop() {
                    Some(Frame::Seq(location, items)) => SourceNode {
                        location,
                        value: SourceValue::Seq(items),
                    },
                    Some(Frame::Map(location, entries, _)) => SourceNode {
                        location,
                        value: SourceValue::Map(entries),
                    },
                    None => {
                        return Err(error("syntax", at, "unbalanced end of a list or mapping"));
                    }
                };
                b.push(node)?;
            }
            _ => {}
        }
    }
    Ok(b.docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_typing() {
        assert_eq!(plain("5"), SourceValue::UInt(5));
        assert_eq!(plain("-5"), SourceValue::Int(-5));
        assert_eq!(plain("0755"), SourceValue::String("0755".into()));
        assert_eq!(plain("+5"), SourceValue::String("+5".into()));
        assert_eq!(plain("0x1F"), SourceValue::String("0x1F".into()));
        assert_eq!(plain("1.5"), SourceValue::Float(1.5));
        assert_eq!(plain("1e3"), SourceValue::Float(1000.0));
        assert_eq!(plain(".5"), SourceValue::Float(0.5));
        assert_eq!(plain("no"), SourceValue::String("no".into()));
        assert_eq!(plain("True"), SourceValue::Bool(true));
        assert_eq!(plain("~"), SourceValue::Null);
        assert_eq!(plain("1.2.3"), SourceValue::String("1.2.3".into()));
        assert_eq!(plain("20.04"), SourceValue::Float(20.04));
        assert_eq!(
            plain("123456789012345678901234"),
            SourceValue::Float(1.2345678901234568e23)
        );
    }

    #[test]
    fn deep_nesting_on_a_small_stack() {
        let text = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        let handle = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || read_documents(&text).map(|_| ()))
            .unwrap();
        let err = handle.join().unwrap().unwrap_err();
        assert_eq!(err.code, "file.too_deep", "{err:?}");
    }
}

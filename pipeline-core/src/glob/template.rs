//! `$n` / `${n}` / `$$` replacement templates (`join_on`, `group_by`).

use super::Captures;

/// A parsed `join_on` / `group_by` template.
///
/// - `$n` and `${n}` insert capture group `n` (`$0` is the whole matched path, without a
///   directory's trailing `/`). A group number past the glob's last group, or a group that
///   did not take part in the match, inserts `""`.
/// - `$$` inserts a literal `$`.
/// - A `$` not followed by a digit (or by `{digits}`) stays literal.
/// - Numbers with a leading zero (`$01`, `${007}`) are rejected: Pachyderm turns them into an
///   invalid group index and panics at run time.
///
/// ```
/// use pipeline_core::glob::{Glob, Template};
/// let glob = Glob::new("/(*)-(*).txt").unwrap();
/// let caps = glob.captures("/2024-05.txt").unwrap();
/// assert_eq!(Template::parse("$2/${1}").unwrap().render(&caps), "05/2024");
/// assert_eq!(Template::parse("$$1").unwrap().render(&caps), "$1");
/// assert!(Template::parse("$01").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Group(usize),
}

/// Why a template was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `$01`, `${01}`: a group number with a leading zero.
    #[error(
        "template {template:?}, position {position}: group number {digits:?} has a leading zero"
    )]
    LeadingZero {
        /// The whole template.
        template: String,
        /// Byte offset of the `$`.
        position: usize,
        /// The digits as written.
        digits: String,
    },
    /// A group number too large to represent.
    #[error("template {template:?}, position {position}: group number {digits:?} is too large")]
    GroupTooLarge {
        /// The whole template.
        template: String,
        /// Byte offset of the `$`.
        position: usize,
        /// The digits as written.
        digits: String,
    },
}

impl TemplateError {
    /// Byte offset of the offending `$` in the template.
    pub fn position(&self) -> usize {
        match self {
            TemplateError::LeadingZero { position, .. }
            | TemplateError::GroupTooLarge { position, .. } => *position,
        }
    }
}

impl Template {
    /// Parses a template.
    pub fn parse(template: &str) -> Result<Template, TemplateError> {
        let bytes = template.as_bytes();
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut i = 0;
        while i < bytes.len() {
            let rest = &template[i..];
            if !rest.starts_with('$') {
                // Copy one whole character.
                let c = rest.chars().next().unwrap_or_default();
                lit.push(c);
                i += c.len_utf8().max(1);
                continue;
            }
            let after = &rest[1..];
            if after.starts_with('$') {
                lit.push('$');
                i += 2;
                continue;
            }
            let (digits, consumed) = if let Some(inner) = after.strip_prefix('{') {
                let n = inner.bytes().take_while(u8::is_ascii_digit).count();
                if n > 0 && inner.as_bytes().get(n) == Some(&b'}') {
                    (&inner[..n], 1 + 1 + n + 1)
                } else {
                    ("", 0)
                }
            } else {
                let n = after.bytes().take_while(u8::is_ascii_digit).count();
                (&after[..n], 1 + n)
            };
            if digits.is_empty() {
                lit.push('$');
                i += 1;
                continue;
            }
            if digits.len() > 1 && digits.starts_with('0') {
                return Err(TemplateError::LeadingZero {
                    template: template.to_string(),
                    position: i,
                    digits: digits.to_string(),
                });
            }
            let n: usize = digits.parse().map_err(|_| TemplateError::GroupTooLarge {
                template: template.to_string(),
                position: i,
                digits: digits.to_string(),
            })?;
            if !lit.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut lit)));
            }
            pieces.push(Piece::Group(n));
            i += consumed;
        }
        if !lit.is_empty() {
            pieces.push(Piece::Literal(lit));
        }
        Ok(Template {
            source: template.to_string(),
            pieces,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True for the empty template (every path gets the key `""`).
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// The highest group number the template refers to, if any (for validation against
    /// [`super::Glob::capture_count`]).
    pub fn max_group(&self) -> Option<usize> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Group(n) => Some(*n),
                Piece::Literal(_) => None,
            })
            .max()
    }

    /// Fills the template from a match's captures.
    pub fn render(&self, captures: &Captures<'_>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Group(n) => out.push_str(captures.get(*n).unwrap_or("")),
            }
        }
        out
    }
}

impl std::str::FromStr for Template {
    type Err = TemplateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Template::parse(s)
    }
}

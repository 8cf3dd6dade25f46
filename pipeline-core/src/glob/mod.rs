//! Pachyderm's glob dialect: the one engine that decides every datum glob.
//!
//! ```
//! use pipeline_core::glob::{Glob, Template};
//!
//! let glob = Glob::new("/*/(*).txt").unwrap();
//! assert!(glob.is_match("/readings/file1.txt"));
//! assert!(!glob.is_match("/a/b/file1.txt")); // `*` does not cross `/`
//! assert_eq!(glob.capture_count(), 1);
//!
//! let caps = glob.captures("/readings/file1.txt").unwrap();
//! assert_eq!(caps.get(1), Some("file1"));
//! assert_eq!(Template::parse("$1").unwrap().render(&caps), "file1");
//! ```
//!
//! # Syntax (reference §2.1, Pachyderm's `ohmyglob`)
//!
//! | Syntax | Meaning |
//! |---|---|
//! | `*` | any run of characters except `/` (also empty) |
//! | `**` | any run of characters, `/` included |
//! | `?` | one character that is not `/` |
//! | `[abc]`, `[a-z]`, `[!abc]`, `[^a-z]`, `[[:alpha:]]` | class, range, negated class, POSIX class (ASCII) |
//! | `{a,b,c}` | alternatives, **no** capture |
//! | `\c` | literal `c` |
//! | `(p\|q)` = `@(p\|q)` | exactly one of the alternatives; captures |
//! | `*(p\|q)`, `+(p\|q)`, `?(p\|q)` | zero-or-more, one-or-more, zero-or-one; capture |
//! | `!(p\|q)` = `^(p\|q)` | a run of non-`/` characters not starting with an alternative; captures |
//!
//! - The whole path must match (anchored at both ends).
//! - `*`, `?`, `+`, `@`, `!`, `^` directly before `(` open an extglob group: `/*(*)` is one
//!   zero-or-more group, not "any, then a capture".
//! - Groups are numbered by their opening parenthesis, left to right, and may nest.
//!   `$0` in a [`Template`] is the whole path.
//! - Like ohmyglob, a character class is exactly what it lists: a negated class such as
//!   `[!a]` can match `/`.
//! - `!(alts)` follows ohmyglob: when the group ends the pattern, a run is excluded only if an
//!   alternative matches up to the end of the path; elsewhere, if an alternative matches at the
//!   start of the run.
//!
//! # Engine
//!
//! A glob is parsed to a small AST and translated to a regex run by
//! [`fancy_regex`]. Globs without `!(..)` translate to plain regexes, which fancy-regex hands to
//! the linear-time `regex` engine; `!(..)` needs a negative look-ahead, which only a
//! backtracking engine has. Backtracking is bounded by [`BACKTRACK_LIMIT`]; hitting it is a
//! [`GlobMatchError`] from [`Glob::try_is_match`] / [`Glob::try_captures`], never a hang.
//!
//! **Why not `globset`:** globset (fine for simple include/exclude
//! filters built with `literal_separator(true)`) cannot serve datum globs: its parentheses are
//! literal (no captures, so no `join_on`/`group_by`), it has no extglob, and its `**` rules differ
//! from ohmyglob's (`/a*/**` does not match `/a`; `**` next to other characters is two `*`).
//! Using one engine for every datum glob keeps `*` and `**` meaning the same everywhere.
//!
//! # Pachyderm paths
//!
//! Globs in specs are normalised first with [`normalize`] (leading `/` added, trailing `/`
//! removed, `""` → `/`). Datum planning (not this module) drops a directory's trailing `/`
//! before matching and lets only the glob `/` match the root.

mod syntax;
mod template;

pub use template::{Template, TemplateError};

use std::fmt;

/// The backtracking budget for one match of a glob that needs look-around (`!(..)`).
pub const BACKTRACK_LIMIT: usize = 1_000_000;

/// What is wrong in a glob's syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GlobSyntaxError {
    /// `[` without a closing `]`.
    #[error("unclosed character class: expected ']'")]
    UnclosedClass,
    /// `[]` or `[!]`.
    #[error("empty character class")]
    EmptyClass,
    /// `[z-a]`.
    #[error("character range {lo:?}-{hi:?} is reversed")]
    ReversedRange {
        /// Low end as written.
        lo: char,
        /// High end as written.
        hi: char,
    },
    /// `[[:bogus:]]`.
    #[error(
        "unknown POSIX class [:{0}:] (expected alpha, digit, alnum, upper, lower, xdigit, word, space, blank, punct, cntrl, graph, print or ascii)"
    )]
    UnknownPosixClass(String),
    /// `(`, `@(`, `*(`… without a closing `)`.
    #[error("unclosed group: expected ')'")]
    UnclosedGroup,
    /// `{` without a closing `}`.
    #[error("unclosed alternatives: expected '}}'")]
    UnclosedBraces,
    /// A `\` at the very end.
    #[error("'\\' at the end of the pattern escapes nothing")]
    DanglingEscape,
}

/// A glob that cannot be compiled.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GlobError {
    /// A syntax error at a byte offset of the pattern.
    #[error("glob {pattern:?}, position {position}")]
    Syntax {
        /// The pattern as given.
        pattern: String,
        /// Byte offset (0-based) of the offending character or of the construct left open.
        position: usize,
        /// What is wrong.
        #[source]
        kind: GlobSyntaxError,
    },
    /// The translated regex was refused by the regex engine (e.g. too large).
    #[error("glob {pattern:?}: cannot be compiled")]
    Compile {
        /// The pattern as given.
        pattern: String,
        /// The engine's error.
        #[source]
        source: Box<fancy_regex::Error>,
    },
}

impl GlobError {
    /// The offending byte offset, for syntax errors.
    pub fn position(&self) -> Option<usize> {
        match self {
            GlobError::Syntax { position, .. } => Some(*position),
            GlobError::Compile { .. } => None,
        }
    }

    /// The pattern that failed.
    pub fn pattern(&self) -> &str {
        match self {
            GlobError::Syntax { pattern, .. } | GlobError::Compile { pattern, .. } => pattern,
        }
    }
}

/// Matching a path against a glob could not be decided.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "glob {pattern:?} on path {path:?}: matching gave up (backtrack limit {BACKTRACK_LIMIT} exceeded or engine error)"
)]
pub struct GlobMatchError {
    /// The glob.
    pub pattern: String,
    /// The path being matched.
    pub path: String,
    /// The engine's error.
    #[source]
    pub source: Box<fancy_regex::Error>,
}

/// A compiled glob. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Glob {
    pattern: String,
    regex: fancy_regex::Regex,
    groups: usize,
    prefix: String,
    lookaround: bool,
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Glob")
            .field("pattern", &self.pattern)
            .field("regex", &self.regex.as_str())
            .finish()
    }
}

impl PartialEq for Glob {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Glob {
    /// Compiles a pattern exactly as written (no normalisation; see [`normalize`]).
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        let (nodes, groups) = syntax::Parser::new(pattern).parse()?;
        let source = syntax::to_regex(&nodes);
        let regex = fancy_regex::RegexBuilder::new(&source)
            .backtrack_limit(BACKTRACK_LIMIT)
            .build()
            .map_err(|e| GlobError::Compile {
                pattern: pattern.to_string(),
                source: Box::new(e),
            })?;
        Ok(Glob {
            pattern: pattern.to_string(),
            regex,
            groups,
            prefix: syntax::literal_prefix(&nodes),
            lookaround: syntax::needs_lookaround(&nodes),
        })
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The regex the glob was translated to (for debugging).
    pub fn regex_str(&self) -> &str {
        self.regex.as_str()
    }

    /// Number of capture groups (`$1`..`$n`); `$0` is not counted.
    pub fn capture_count(&self) -> usize {
        self.groups
    }

    /// The literal text every match starts with (e.g. `/dir/` for `/dir/*`).
    pub fn literal_prefix(&self) -> &str {
        &self.prefix
    }

    /// True when the glob uses `!(..)` and so runs on the bounded backtracking engine.
    pub fn uses_backtracking(&self) -> bool {
        self.lookaround
    }

    /// Whether the whole `path` matches. A path the engine gives up on (backtrack limit)
    /// counts as not matching; use [`Glob::try_is_match`] to see that as an error.
    pub fn is_match(&self, path: &str) -> bool {
        self.try_is_match(path).unwrap_or(false)
    }

    /// Whether the whole `path` matches, or an error if the engine gave up.
    pub fn try_is_match(&self, path: &str) -> Result<bool, GlobMatchError> {
        self.regex
            .is_match(path)
            .map_err(|e| self.match_error(path, e))
    }

    /// The captures of a match, or `None` when `path` does not match (or the engine gave up;
    /// see [`Glob::try_captures`]).
    pub fn captures<'p>(&self, path: &'p str) -> Option<Captures<'p>> {
        self.try_captures(path).ok().flatten()
    }

    /// The captures of a match, `Ok(None)` when `path` does not match, or an error if the
    /// engine gave up.
    pub fn try_captures<'p>(&self, path: &'p str) -> Result<Option<Captures<'p>>, GlobMatchError> {
        let Some(caps) = self
            .regex
            .captures(path)
            .map_err(|e| self.match_error(path, e))?
        else {
            return Ok(None);
        };
        let spans = (0..=self.groups)
            .map(|i| caps.get(i).map(|m| (m.start(), m.end())))
            .collect();
        Ok(Some(Captures { text: path, spans }))
    }

    fn match_error(&self, path: &str, e: fancy_regex::Error) -> GlobMatchError {
        GlobMatchError {
            pattern: self.pattern.clone(),
            path: path.to_string(),
            source: Box::new(e),
        }
    }
}

impl std::str::FromStr for Glob {
    type Err = GlobError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Glob::new(s)
    }
}

/// The capture groups of one match. Group 0 is the whole path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captures<'p> {
    text: &'p str,
    spans: Vec<Option<(usize, usize)>>,
}

impl<'p> Captures<'p> {
    /// Group `n`'s text; `None` past the last group or when the group did not take part.
    pub fn get(&self, n: usize) -> Option<&'p str> {
        let (s, e) = (*self.spans.get(n)?)?;
        self.text.get(s..e)
    }

    /// Number of groups including group 0.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Always false: group 0 exists for every match.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The matched path.
    pub fn path(&self) -> &'p str {
        self.text
    }
}

/// Pachyderm's glob normalisation (`pfsfile.CleanPath`): Go's `path.Clean` (repeated `/`
/// collapsed, `.` dropped, `..` resolved lexically), then a single leading `/` and no trailing
/// `/`; `""` becomes `/`.
///
/// ```
/// use pipeline_core::glob::normalize;
/// assert_eq!(normalize(""), "/");
/// assert_eq!(normalize("abc/"), "/abc");
/// assert_eq!(normalize("dir/*"), "/dir/*");
/// assert_eq!(normalize("/*/"), "/*");
/// assert_eq!(normalize("/a/../b//*"), "/b/*");
/// ```
pub fn normalize(glob: &str) -> String {
    let rooted = glob.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in glob.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            _ => parts.push(seg),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, path: &str) -> bool {
        Glob::new(p).unwrap().is_match(path)
    }

    #[test]
    fn star_does_not_cross_separator() {
        assert!(m("/*", "/a.png"));
        assert!(m("/*", "/dir"));
        assert!(!m("/*", "/dir/c.png"));
        assert!(m("/**", "/dir/sub/d.png"));
        assert!(m("/**.png", "/dir/sub/d.png"));
        assert!(!m("/?", "/ab"));
        assert!(m("/?b", "/ab"));
        assert!(!m("/a?c", "/a/c"));
    }

    #[test]
    fn classes() {
        assert!(m("/[abc]", "/b"));
        assert!(!m("/[abc]", "/d"));
        assert!(m("/[a-c]x", "/bx"));
        assert!(m("/[!a-c]x", "/dx"));
        assert!(!m("/[^a-c]x", "/ax"));
        assert!(m("/[[:digit:]][[:alpha:]]", "/1z"));
        assert!(!m("/[[:digit:]]", "/z"));
        assert!(m(r"/[\]]", "/]"));
    }

    #[test]
    fn braces_and_escapes() {
        let g = Glob::new("/{a,b}*.{png,jpg}").unwrap();
        assert_eq!(g.capture_count(), 0);
        assert!(g.is_match("/a1.jpg"));
        assert!(!g.is_match("/c1.jpg"));
        assert!(m(r"/\*", "/*"));
        assert!(!m(r"/\*", "/x"));
        assert!(m("/a.b", "/a.b"));
        assert!(!m("/a.b", "/axb"));
        assert!(m("/a+b|c)d,e}", "/a+b|c)d,e}"));
    }

    #[test]
    fn extglob_groups_capture_in_opening_order() {
        let g = Glob::new("/(a(b)|c)-@(x|y)").unwrap();
        assert_eq!(g.capture_count(), 3);
        let c = g.captures("/ab-y").unwrap();
        assert_eq!(
            (c.get(0), c.get(1), c.get(2), c.get(3)),
            (Some("/ab-y"), Some("ab"), Some("b"), Some("y"))
        );
        let c = g.captures("/c-x").unwrap();
        assert_eq!(c.get(2), None);
        assert_eq!(c.get(9), None);
    }

    #[test]
    fn extglob_quantifiers() {
        // reference: in `a*(a|b)` on `aaaa` the group captures `aaa`.
        let g = Glob::new("a*(a|b)").unwrap();
        assert_eq!(g.captures("aaaa").unwrap().get(1), Some("aaa"));
        assert!(m("/x+(ab)", "/xabab"));
        assert!(!m("/x+(ab)", "/x"));
        assert!(m("/x?(ab)", "/x"));
        assert!(!m("/x?(ab)", "/xabab"));
        // `/*(*)` is one zero-or-more group over `*`.
        let g = Glob::new("/*(*)").unwrap();
        assert_eq!(g.capture_count(), 1);
        assert!(g.is_match("/abc"));
    }

    #[test]
    fn negation() {
        let g = Glob::new("/!(*.txt)").unwrap();
        assert!(g.uses_backtracking());
        assert!(g.is_match("/a.png"));
        assert!(!g.is_match("/a.txt"));
        assert!(!g.is_match("/d/a.png"));
        let g = Glob::new("/^(foo)bar").unwrap();
        assert!(g.is_match("/xbar"));
        assert!(!g.is_match("/foobar"));
    }

    #[test]
    fn syntax_errors_name_position() {
        let e = Glob::new("/ab[cd").unwrap_err();
        assert!(
            matches!(
                e,
                GlobError::Syntax {
                    position: 3,
                    kind: GlobSyntaxError::UnclosedClass,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = Glob::new("/x/(a|b").unwrap_err();
        assert_eq!(e.position(), Some(3));
        let e = Glob::new("/{a,b").unwrap_err();
        assert!(matches!(
            e,
            GlobError::Syntax {
                kind: GlobSyntaxError::UnclosedBraces,
                position: 1,
                ..
            }
        ));
        let e = Glob::new("/[z-a]").unwrap_err();
        assert!(matches!(
            e,
            GlobError::Syntax {
                kind: GlobSyntaxError::ReversedRange { .. },
                ..
            }
        ));
        let e = Glob::new("/[[:nope:]]").unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        assert!(Glob::new("/[]").is_err());
        assert!(Glob::new("/a\\").is_err());
    }

    #[test]
    fn templates() {
        let g = Glob::new("/(*)-(*)").unwrap();
        let c = g.captures("/a-b").unwrap();
        let r = |t: &str| Template::parse(t).unwrap().render(&c);
        assert_eq!(r("$1$2"), "ab");
        assert_eq!(r("${2}x${1}"), "bxa");
        assert_eq!(r("$0"), "/a-b");
        assert_eq!(r("$3"), "");
        assert_eq!(r("$$"), "$");
        assert_eq!(r("$x$"), "$x$");
        assert_eq!(r("${x}"), "${x}");
        assert_eq!(r(""), "");
        assert!(Template::parse("$").unwrap().max_group().is_none());
        let e = Template::parse("a$01").unwrap_err();
        assert_eq!(e.position(), 1);
        assert!(matches!(
            Template::parse("${01}"),
            Err(TemplateError::LeadingZero { .. })
        ));
        assert!(matches!(
            Template::parse("$99999999999999999999999"),
            Err(TemplateError::GroupTooLarge { .. })
        ));
        assert_eq!(Template::parse("$10").unwrap().max_group(), Some(10));
    }

    #[test]
    fn pathological_negation_is_bounded() {
        // Nested repetition inside a negation: must return (match, no-match or error), not hang.
        let g = Glob::new("/!(*(*(a|aa)))b").unwrap();
        let path = format!("/{}c", "a".repeat(40));
        let started = std::time::Instant::now();
        let _ = g.try_is_match(&path);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn backtrack_limit_is_an_error_not_a_hang() {
        // Several negations in a row: each is a `[^/]*` run guarded by a look-ahead, so the
        // backtracking engine tries every way to split the path between them.
        let g = Glob::new("/!(x)!(x)!(x)!(x)!(x)y").unwrap();
        let path = format!("/{}", "a".repeat(400));
        let started = std::time::Instant::now();
        let r = g.try_is_match(&path);
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        let err = r.unwrap_err();
        assert!(err.to_string().contains("backtrack limit"), "{err}");
        assert!(!g.is_match(&path));
        assert!(g.try_is_match("/aay").unwrap());
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalize("/"), "/");
        assert_eq!(normalize("*"), "/*");
        assert_eq!(normalize("//a//b/"), "/a/b");
        assert_eq!(normalize("./a"), "/a");
        assert_eq!(normalize("."), "/");
        assert_eq!(normalize("/../a"), "/a");
        assert_eq!(normalize("../a"), "/../a");
        assert_eq!(normalize("a/b/../../.."), "/..");
    }
}

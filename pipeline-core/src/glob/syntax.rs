//! Glob syntax: the parser from pattern text to a small AST, and the AST → regex translation.
//!
//! Lexing follows Pachyderm's ohmyglob: `*`, `?`, `+`, `@`, `!` and `^` written directly
//! before `(` open an extglob group; `|` separates alternatives only inside a group and `,`
//! only inside `{...}`; `)`/`}` outside their construct are literal characters.

use super::{GlobError, GlobSyntaxError};

/// One element of a parsed glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    /// Literal text.
    Text(String),
    /// `*`: any run of non-`/` characters.
    Any,
    /// `**`: any run of characters.
    Super,
    /// `?`: one non-`/` character.
    Single,
    /// `[...]`
    Class {
        negated: bool,
        items: Vec<ClassItem>,
    },
    /// `{a,b}`: alternatives, no capture.
    Braces(Vec<Vec<Node>>),
    /// An extglob group (captures).
    Group {
        kind: GroupKind,
        alts: Vec<Vec<Node>>,
    },
}

/// One item of a character class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClassItem {
    /// A single character.
    Char(char),
    /// `lo-hi`, inclusive.
    Range(char, char),
    /// `[:name:]`, as ASCII ranges.
    Posix(&'static [(char, char)]),
}

/// The quantifier of an extglob group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupKind {
    /// `(..)` or `@(..)`: exactly one.
    One,
    /// `*(..)`: zero or more.
    ZeroOrMore,
    /// `+(..)`: one or more.
    OneOrMore,
    /// `?(..)`: zero or one.
    ZeroOrOne,
    /// `!(..)` or `^(..)`: anything except.
    Not,
}

/// What the parser is inside of; decides what `|`, `,`, `)`, `}` mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Top,
    Group,
    Braces,
}

pub(crate) struct Parser<'a> {
    pattern: &'a str,
    chars: Vec<(usize, char)>,
    pos: usize,
    pub(crate) groups: usize,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(pattern: &'a str) -> Self {
        Parser {
            pattern,
            chars: pattern.char_indices().collect(),
            pos: 0,
            groups: 0,
        }
    }

    fn err(&self, position: usize, kind: GlobSyntaxError) -> GlobError {
        GlobError::Syntax {
            pattern: self.pattern.to_string(),
            position,
            kind,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|&(_, c)| c)
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).map(|&(_, c)| c)
    }

    fn offset(&self) -> usize {
        self.chars
            .get(self.pos)
            .map_or(self.pattern.len(), |&(i, _)| i)
    }

    /// Parses the whole pattern.
    pub(crate) fn parse(mut self) -> Result<(Vec<Node>, usize), GlobError> {
        let (seq, end) = self.sequence(Ctx::Top)?;
        debug_assert_eq!(end, None);
        Ok((seq, self.groups))
    }

    /// Parses alternatives until the closing character of `ctx` (consumed).
    fn alternatives(&mut self, ctx: Ctx, open_at: usize) -> Result<Vec<Vec<Node>>, GlobError> {
        let mut alts = Vec::new();
        loop {
            let (seq, end) = self.sequence(ctx)?;
            alts.push(seq);
            match end {
                Some(Stop::Separator) => continue,
                Some(Stop::Close) => return Ok(alts),
                None => {
                    let kind = if ctx == Ctx::Group {
                        GlobSyntaxError::UnclosedGroup
                    } else {
                        GlobSyntaxError::UnclosedBraces
                    };
                    return Err(self.err(open_at, kind));
                }
            }
        }
    }

    fn sequence(&mut self, ctx: Ctx) -> Result<(Vec<Node>, Option<Stop>), GlobError> {
        let mut out: Vec<Node> = Vec::new();
        let mut text = String::new();
        macro_rules! flush {
            () => {
                if !text.is_empty() {
                    out.push(Node::Text(std::mem::take(&mut text)));
                }
            };
        }
        while let Some(c) = self.peek() {
            let at = self.offset();
            let next = self.peek_at(1);
            match c {
                '\\' => {
                    let Some(lit) = next else {
                        return Err(self.err(at, GlobSyntaxError::DanglingEscape));
                    };
                    text.push(lit);
                    self.pos += 2;
                }
                '|' if ctx == Ctx::Group => {
                    self.pos += 1;
                    flush!();
                    return Ok((out, Some(Stop::Separator)));
                }
                ')' if ctx == Ctx::Group => {
                    self.pos += 1;
                    flush!();
                    return Ok((out, Some(Stop::Close)));
                }
                ',' if ctx == Ctx::Braces => {
                    self.pos += 1;
                    flush!();
                    return Ok((out, Some(Stop::Separator)));
                }
                '}' if ctx == Ctx::Braces => {
                    self.pos += 1;
                    flush!();
                    return Ok((out, Some(Stop::Close)));
                }
                '*' | '?' | '+' | '@' | '!' | '^' if next == Some('(') => {
                    flush!();
                    let kind = match c {
                        '*' => GroupKind::ZeroOrMore,
                        '?' => GroupKind::ZeroOrOne,
                        '+' => GroupKind::OneOrMore,
                        '@' => GroupKind::One,
                        _ => GroupKind::Not,
                    };
                    self.pos += 2;
                    out.push(self.group(kind, at)?);
                }
                '(' => {
                    flush!();
                    self.pos += 1;
                    out.push(self.group(GroupKind::One, at)?);
                }
                '*' => {
                    flush!();
                    if next == Some('*') {
                        self.pos += 2;
                        out.push(Node::Super);
                    } else {
                        self.pos += 1;
                        out.push(Node::Any);
                    }
                }
                '?' => {
                    flush!();
                    self.pos += 1;
                    out.push(Node::Single);
                }
                '{' => {
                    flush!();
                    self.pos += 1;
                    let alts = self.alternatives(Ctx::Braces, at)?;
                    out.push(Node::Braces(alts));
                }
                '[' => {
                    flush!();
                    self.pos += 1;
                    out.push(self.class(at)?);
                }
                _ => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
        flush!();
        Ok((out, None))
    }

    fn group(&mut self, kind: GroupKind, open_at: usize) -> Result<Node, GlobError> {
        // Numbered by opening parenthesis: take the number before parsing the inside.
        self.groups += 1;
        let alts = self.alternatives(Ctx::Group, open_at)?;
        Ok(Node::Group { kind, alts })
    }

    fn class(&mut self, open_at: usize) -> Result<Node, GlobError> {
        let mut negated = false;
        if matches!(self.peek(), Some('!' | '^')) {
            negated = true;
            self.pos += 1;
        }
        let mut items = Vec::new();
        loop {
            let at = self.offset();
            let Some(c) = self.peek() else {
                return Err(self.err(open_at, GlobSyntaxError::UnclosedClass));
            };
            match c {
                ']' => {
                    self.pos += 1;
                    if items.is_empty() {
                        return Err(self.err(open_at, GlobSyntaxError::EmptyClass));
                    }
                    return Ok(Node::Class { negated, items });
                }
                '[' if self.peek_at(1) == Some(':') => {
                    let rest: String = self.chars[self.pos + 2..].iter().map(|&(_, c)| c).collect();
                    let Some(end) = rest.find(":]") else {
                        return Err(self.err(at, GlobSyntaxError::UnclosedClass));
                    };
                    let name = &rest[..end];
                    let Some(ranges) = posix_class(name) else {
                        return Err(
                            self.err(at, GlobSyntaxError::UnknownPosixClass(name.to_string()))
                        );
                    };
                    items.push(ClassItem::Posix(ranges));
                    self.pos += 2 + name.chars().count() + 2;
                }
                _ => {
                    let lo = self.class_char(at)?;
                    if self.peek() == Some('-') && !matches!(self.peek_at(1), Some(']') | None) {
                        self.pos += 1;
                        let hi_at = self.offset();
                        let hi = self.class_char(hi_at)?;
                        if hi < lo {
                            return Err(self.err(at, GlobSyntaxError::ReversedRange { lo, hi }));
                        }
                        items.push(ClassItem::Range(lo, hi));
                    } else {
                        items.push(ClassItem::Char(lo));
                    }
                }
            }
        }
    }

    /// One (possibly escaped) character inside a class.
    fn class_char(&mut self, at: usize) -> Result<char, GlobError> {
        match self.peek() {
            Some('\\') => match self.peek_at(1) {
                Some(c) => {
                    self.pos += 2;
                    Ok(c)
                }
                None => Err(self.err(at, GlobSyntaxError::DanglingEscape)),
            },
            Some(c) => {
                self.pos += 1;
                Ok(c)
            }
            None => Err(self.err(at, GlobSyntaxError::UnclosedClass)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Separator,
    Close,
}

/// POSIX class names → ASCII ranges.
fn posix_class(name: &str) -> Option<&'static [(char, char)]> {
    Some(match name {
        "alpha" => &[('a', 'z'), ('A', 'Z')],
        "digit" => &[('0', '9')],
        "alnum" => &[('a', 'z'), ('A', 'Z'), ('0', '9')],
        "upper" => &[('A', 'Z')],
        "lower" => &[('a', 'z')],
        "xdigit" => &[('0', '9'), ('a', 'f'), ('A', 'F')],
        "word" => &[('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')],
        "space" => &[(' ', ' '), ('\t', '\r')],
        "blank" => &[(' ', ' '), ('\t', '\t')],
        "punct" => &[('!', '/'), (':', '@'), ('[', '`'), ('{', '~')],
        "cntrl" => &[('\0', '\x1f'), ('\x7f', '\x7f')],
        "graph" => &[('!', '~')],
        "print" => &[(' ', '~')],
        "ascii" => &[('\0', '\x7f')],
        _ => return None,
    })
}

/// Appends `c` as a regex literal that is valid both inside and outside a class.
fn push_literal(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() || c == '_' || c == '/' {
        out.push(c);
    } else {
        out.push_str(&format!("\\x{{{:x}}}", c as u32));
    }
}

/// Translates a parsed glob to an anchored fancy-regex pattern.
pub(crate) fn to_regex(nodes: &[Node]) -> String {
    let mut out = String::from(r"\A(?s:");
    emit_seq(&mut out, nodes, true);
    out.push_str(r")\z");
    out
}

fn emit_seq(out: &mut String, nodes: &[Node], at_top_end: bool) {
    for (i, node) in nodes.iter().enumerate() {
        let last = at_top_end && i + 1 == nodes.len();
        emit(out, node, last);
    }
}

fn emit_alts(out: &mut String, alts: &[Vec<Node>]) {
    for (i, alt) in alts.iter().enumerate() {
        if i > 0 {
            out.push('|');
        }
        emit_seq(out, alt, false);
    }
}

fn emit(out: &mut String, node: &Node, last_of_pattern: bool) {
    match node {
        Node::Text(t) => t.chars().for_each(|c| push_literal(out, c)),
        Node::Any => out.push_str("[^/]*"),
        Node::Super => out.push_str(".*"),
        Node::Single => out.push_str("[^/]"),
        Node::Class { negated, items } => {
            out.push('[');
            if *negated {
                out.push('^');
            }
            for item in items {
                match item {
                    ClassItem::Char(c) => push_literal(out, *c),
                    ClassItem::Range(lo, hi) => {
                        push_literal(out, *lo);
                        out.push('-');
                        push_literal(out, *hi);
                    }
                    ClassItem::Posix(ranges) => {
                        for &(lo, hi) in *ranges {
                            push_literal(out, lo);
                            out.push('-');
                            push_literal(out, hi);
                        }
                    }
                }
            }
            out.push(']');
        }
        Node::Braces(alts) => {
            out.push_str("(?:");
            emit_alts(out, alts);
            out.push(')');
        }
        Node::Group { kind, alts } => {
            let mut inner = String::new();
            emit_alts(&mut inner, alts);
            match kind {
                GroupKind::One => out.push_str(&format!("({inner})")),
                GroupKind::ZeroOrMore => out.push_str(&format!("((?:{inner})*)")),
                GroupKind::OneOrMore => out.push_str(&format!("((?:{inner})+)")),
                GroupKind::ZeroOrOne => out.push_str(&format!("((?:{inner})?)")),
                GroupKind::Not => {
                    // Like ohmyglob: a run of non-`/` characters that does not start with one
                    // of the alternatives; when the group ends the pattern, the alternative
                    // must reach the end of the path to be excluded.
                    let anchor = if last_of_pattern { r"\z" } else { "" };
                    out.push_str(&format!("((?:(?!(?:{inner}){anchor})[^/]*))"));
                }
            }
        }
    }
}

/// Whether a parsed glob needs look-around (only `!(..)` does).
pub(crate) fn needs_lookaround(nodes: &[Node]) -> bool {
    nodes.iter().any(|n| match n {
        Node::Group {
            kind: GroupKind::Not,
            ..
        } => true,
        Node::Group { alts, .. } | Node::Braces(alts) => alts.iter().any(|a| needs_lookaround(a)),
        _ => false,
    })
}

/// The longest literal prefix (text before the first wildcard), for pruning tree walks.
pub(crate) fn literal_prefix(nodes: &[Node]) -> String {
    let mut prefix = String::new();
    for n in nodes {
        match n {
            Node::Text(t) => prefix.push_str(t),
            _ => break,
        }
    }
    prefix
}

//! Property tests: the glob engine agrees with a straightforward reference matcher.
//!
//! Patterns are generated as token lists, rendered to glob text for [`Glob::new`], and matched
//! directly (set-of-positions simulation, no regexes) by the reference below.

use std::collections::BTreeSet;

use pipeline_core::glob::{Glob, Template};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Tok {
    Lit(char),
    Star,
    DStar,
    Single,
    Class { negated: bool, chars: Vec<char> },
    Braces(Vec<String>),
    Group { quant: char, alts: Vec<String> },
}

fn render(toks: &[Tok]) -> String {
    let mut s = String::new();
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Lit(c) => {
                // A literal right after a `*`/`?` token, or '(' anywhere, would change meaning;
                // the generator never produces '(' so only escape what glob syntax needs.
                if "*?[]{}()!@+^\\|,".contains(*c) {
                    s.push('\\');
                }
                s.push(*c);
            }
            Tok::Star => {
                // `*` followed by `*` would read as `**`: escape-free separation is not
                // possible, so the generator avoids Star before Star/DStar (see `valid`).
                s.push('*');
            }
            Tok::DStar => s.push_str("**"),
            Tok::Single => s.push('?'),
            Tok::Class { negated, chars } => {
                s.push('[');
                if *negated {
                    s.push('!');
                }
                s.extend(chars);
                s.push(']');
            }
            Tok::Braces(alts) => {
                s.push('{');
                s.push_str(&alts.join(","));
                s.push('}');
            }
            Tok::Group { quant, alts } => {
                if *quant != ' ' {
                    s.push(*quant);
                }
                s.push('(');
                s.push_str(&alts.join("|"));
                s.push(')');
            }
        }
        let _ = i;
    }
    s
}

/// Rejects token sequences whose rendering would lex differently (`*` then `*`, `*`/`?` then
/// a plain group, which would become an extglob group).
fn valid(toks: &[Tok]) -> bool {
    toks.windows(2).all(|w| {
        let star_like = matches!(w[0], Tok::Star | Tok::DStar | Tok::Single);
        let next_star = matches!(w[1], Tok::Star | Tok::DStar);
        let next_plain_group = matches!(
            w[1],
            Tok::Group {
                quant: ' ' | '*',
                ..
            }
        );
        !(star_like && (next_star || next_plain_group))
    })
}

/// End positions reachable from `pos` by matching literal `s`.
fn lit(text: &[char], pos: usize, s: &str) -> Option<usize> {
    let s: Vec<char> = s.chars().collect();
    (text.len() >= pos + s.len() && text[pos..pos + s.len()] == s[..]).then_some(pos + s.len())
}

fn step(tok: &Tok, text: &[char], pos: usize) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    match tok {
        Tok::Lit(c) => {
            if text.get(pos) == Some(c) {
                out.insert(pos + 1);
            }
        }
        Tok::Star => {
            out.insert(pos);
            let mut k = pos;
            while k < text.len() && text[k] != '/' {
                k += 1;
                out.insert(k);
            }
        }
        Tok::DStar => out.extend(pos..=text.len()),
        Tok::Single => {
            if text.get(pos).is_some_and(|&c| c != '/') {
                out.insert(pos + 1);
            }
        }
        Tok::Class { negated, chars } => {
            if text.get(pos).is_some_and(|c| chars.contains(c) != *negated) {
                out.insert(pos + 1);
            }
        }
        Tok::Braces(alts) => out.extend(alts.iter().filter_map(|a| lit(text, pos, a))),
        Tok::Group { quant, alts } => {
            let once = |p: usize| {
                alts.iter()
                    .filter_map(|a| lit(text, p, a))
                    .collect::<BTreeSet<_>>()
            };
            match quant {
                ' ' | '@' => out = once(pos),
                '?' => {
                    out = once(pos);
                    out.insert(pos);
                }
                '*' | '+' => {
                    let mut frontier: BTreeSet<usize> = once(pos);
                    let mut reached = frontier.clone();
                    while !frontier.is_empty() {
                        let next: BTreeSet<usize> =
                            frontier.iter().flat_map(|&p| once(p)).collect();
                        frontier = next.difference(&reached).copied().collect();
                        reached.extend(frontier.iter().copied());
                    }
                    out = reached;
                    if *quant == '*' {
                        out.insert(pos);
                    }
                }
                _ => unreachable!("generator only makes these quantifiers"),
            }
        }
    }
    out
}

fn reference_match(toks: &[Tok], path: &str) -> bool {
    let text: Vec<char> = path.chars().collect();
    let mut positions = BTreeSet::from([0usize]);
    for t in toks {
        positions = positions.iter().flat_map(|&p| step(t, &text, p)).collect();
        if positions.is_empty() {
            return false;
        }
    }
    positions.contains(&text.len())
}

fn word() -> impl Strategy<Value = String> {
    "[ab./]{0,3}"
}

fn tok() -> impl Strategy<Value = Tok> {
    prop_oneof![
        4 => prop::sample::select(vec!['a', 'b', '/', '.']).prop_map(Tok::Lit),
        2 => Just(Tok::Star),
        1 => Just(Tok::DStar),
        1 => Just(Tok::Single),
        1 => (any::<bool>(), prop::collection::vec(prop::sample::select(vec!['a', 'b', '/', '.']), 1..3))
            .prop_map(|(negated, chars)| Tok::Class { negated, chars }),
        1 => prop::collection::vec(word(), 1..3).prop_map(Tok::Braces),
        1 => (prop::sample::select(vec![' ', '@', '*', '+', '?']), prop::collection::vec("[ab./]{1,3}", 1..3))
            .prop_map(|(quant, alts)| Tok::Group { quant, alts }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_reference(
        toks in prop::collection::vec(tok(), 0..6).prop_filter("lexes as generated", |t| valid(t)),
        paths in prop::collection::vec("/?[ab./]{0,7}", 1..12),
    ) {
        let pattern = render(&toks);
        let glob = Glob::new(&pattern).expect("generated patterns are valid");
        for path in &paths {
            prop_assert_eq!(
                glob.try_is_match(path).expect("no backtrack blow-up on tiny inputs"),
                reference_match(&toks, path),
                "pattern {:?} (regex {}) on {:?}", pattern, glob.regex_str(), path
            );
        }
    }

    #[test]
    fn single_star_capture_is_the_segment(seg in "[a-z0-9.-]{0,8}", ext in "[a-z]{1,3}") {
        let glob = Glob::new(&format!("/(*).{ext}")).unwrap();
        let path = format!("/{seg}.{ext}");
        let caps = glob.captures(&path).unwrap();
        // `*` is greedy: the capture is everything before the last `.ext`.
        prop_assert_eq!(caps.get(1), Some(seg.as_str()));
        prop_assert_eq!(Template::parse("$1-$0").unwrap().render(&caps), format!("{seg}-{path}"));
    }

    #[test]
    fn compile_never_panics(pattern in "[ab/*?\\[\\]{}(),|!@+^\\\\:-]{0,12}") {
        let _ = Glob::new(&pattern);
    }

    #[test]
    fn template_parse_never_panics(t in "[$0-9{}a]{0,10}") {
        let _ = Template::parse(&t);
    }
}

//! Table-driven tests of the exact glob syntax (reference §2.1, rust-crates §4.3 / P1-P3).

use pipeline_core::glob::{Glob, GlobError, GlobSyntaxError, Template};

/// (pattern, path, matches)
const MATCH_TABLE: &[(&str, &str, bool)] = &[
    // `*` never crosses `/` (P1), `**` does anywhere (P2).
    ("/*", "/a", true),
    ("/*", "/b.txt", true),
    ("/*", "/a/b/c.txt", false),
    ("/*/*", "/a/b", true),
    ("/*/*", "/a/b/c.txt", false),
    ("/**", "/a/b/c.txt", true),
    ("/**", "a", false),
    ("/**a", "/x/y/za", true),
    ("/a*/**", "/a/b", true),
    ("/a*/**", "/a", false),
    ("/", "/", true),
    ("/", "/a", false),
    ("/*", "/", true), // the planner, not the glob, keeps `/` for the glob `/` only
    // `?`
    ("/?.txt", "/a.txt", true),
    ("/?.txt", "/ab.txt", false),
    ("/a?b", "/a/b", false),
    // classes
    ("/[ab]", "/a", true),
    ("/[ab]", "/c", false),
    ("/[!ab]", "/c", true),
    ("/[^ab]", "/a", false),
    ("/[a-c]", "/b", true),
    ("/[[:digit:]]", "/7", true),
    ("/[[:upper:]]", "/a", false),
    ("/[![:alpha:]]", "/1", true),
    ("/[a\\]]", "/]", true),
    // braces: alternatives, no capture
    ("/{a,bc}", "/bc", true),
    ("/{a,bc}", "/b", false),
    ("/x.{png,jpg}", "/x.jpg", true),
    ("/{a,b/c}", "/b/c", true),
    // escapes and literal metacharacters
    ("/\\*", "/*", true),
    ("/\\*", "/a", false),
    ("/a.b", "/axb", false),
    ("/a|b", "/a|b", true),
    ("/a)b", "/a)b", true),
    ("/a,b}", "/a,b}", true),
    ("/a!b", "/a!b", true),
    ("/a+b", "/a+b", true),
    ("/a@b", "/a@b", true),
    // extglob
    ("/(a|b)", "/b", true),
    ("/@(a|b)", "/c", false),
    ("/x*(ab)", "/x", true),
    ("/x*(ab)", "/xabab", true),
    ("/x+(ab)", "/x", false),
    ("/x?(ab)", "/xab", true),
    ("/x?(ab)", "/xabab", false),
    ("/!(*.txt)", "/a.png", true),
    ("/!(*.txt)", "/a.txt", false),
    ("/^(*.txt)", "/a.txt", false),
    // anchored at both ends
    ("/a", "/ab", false),
    ("a", "/a", false),
];

#[test]
fn match_table() {
    for &(pattern, path, want) in MATCH_TABLE {
        let g = Glob::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
        assert_eq!(
            g.is_match(path),
            want,
            "{pattern} on {path} (regex {})",
            g.regex_str()
        );
    }
}

/// (pattern, path, expected captures $1..)
const CAPTURE_TABLE: &[(&str, &str, &[&str])] = &[
    ("/(*)-(*).txt", "/2024-01-05.txt", &["2024-01", "05"]), // greedy, as in Go
    ("/(*).txt", "/file1.txt", &["file1"]),
    ("/*/(*).txt", "/readings/file1.txt", &["file1"]),
    ("/foo(?)(?)", "/foo12", &["1", "2"]),
    ("/*-(*)-lab*.txt", "/T1-patient1-lab1.txt", &["patient1"]),
    ("a*(a|b)", "aaaa", &["aaa"]),
    ("/((a)|b)(c)", "/ac", &["a", "a", "c"]),
    ("/{x,y}(z)", "/yz", &["z"]),
];

#[test]
fn capture_table() {
    for &(pattern, path, want) in CAPTURE_TABLE {
        let g = Glob::new(pattern).unwrap();
        assert_eq!(g.capture_count(), want.len(), "{pattern}");
        let caps = g
            .captures(path)
            .unwrap_or_else(|| panic!("{pattern} should match {path}"));
        assert_eq!(caps.get(0), Some(path));
        for (i, w) in want.iter().enumerate() {
            assert_eq!(caps.get(i + 1), Some(*w), "{pattern} on {path}: ${}", i + 1);
        }
    }
}

#[test]
fn error_table() {
    type IsKind = fn(&GlobSyntaxError) -> bool;
    let cases: &[(&str, usize, IsKind)] = &[
        ("/a[bc", 2, |k| matches!(k, GlobSyntaxError::UnclosedClass)),
        ("/[]", 1, |k| matches!(k, GlobSyntaxError::EmptyClass)),
        ("/[!]", 1, |k| matches!(k, GlobSyntaxError::EmptyClass)),
        ("/[b-a]", 2, |k| {
            matches!(k, GlobSyntaxError::ReversedRange { lo: 'b', hi: 'a' })
        }),
        (
            "/[[:nope:]]",
            2,
            |k| matches!(k, GlobSyntaxError::UnknownPosixClass(n) if n == "nope"),
        ),
        ("/x(a|b", 2, |k| matches!(k, GlobSyntaxError::UnclosedGroup)),
        ("/x/+(a", 3, |k| matches!(k, GlobSyntaxError::UnclosedGroup)),
        ("/{a,{b}", 1, |k| {
            matches!(k, GlobSyntaxError::UnclosedBraces)
        }),
        ("/ab\\", 3, |k| matches!(k, GlobSyntaxError::DanglingEscape)),
    ];
    for (pattern, position, kind) in cases {
        match Glob::new(pattern) {
            Err(GlobError::Syntax {
                position: p,
                kind: k,
                pattern: pat,
            }) => {
                assert_eq!(p, *position, "{pattern}: {k}");
                assert!(kind(&k), "{pattern}: {k:?}");
                assert_eq!(pat, *pattern);
            }
            other => panic!("{pattern}: expected a syntax error, got {other:?}"),
        }
        let msg = Glob::new(pattern).unwrap_err().to_string();
        assert!(msg.contains(&format!("position {position}")), "{msg}");
    }
}

#[test]
fn template_table() {
    let g = Glob::new("/(*)_(*)").unwrap();
    let caps = g.captures("/left_right").unwrap();
    let cases = [
        ("$1", "left"),
        ("${2}", "right"),
        ("$2$1", "rightleft"),
        ("${1}0", "left0"),
        ("$10", ""),
        ("$$1", "$1"),
        ("a$", "a$"),
        ("${}", "${}"),
        ("${1", "${1"),
        ("$0", "/left_right"),
        ("", ""),
    ];
    for (t, want) in cases {
        assert_eq!(Template::parse(t).unwrap().render(&caps), want, "{t}");
    }
    for bad in ["$01", "${00}", "x$007"] {
        assert!(Template::parse(bad).is_err(), "{bad}");
    }
}

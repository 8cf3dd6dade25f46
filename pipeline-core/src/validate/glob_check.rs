//! Glob syntax checks for `input.pfs.glob`.
//!
//! Interim, self-contained checks until the glob engine of `crate::glob` (Pachyderm's dialect,
//! written on another branch) is merged: balanced `[...]`, `{...}` and `(...)`, no trailing
//! `\`, and the number of capture groups (every unescaped `(` outside a class opens one,
//! extglob `*( ?( +( @( !(` included) for the `join_on`/`group_by` cross-check.

/// Counts capture groups, or says why the glob is malformed.
fn scan(glob: &str) -> Result<u32, String> {
    let chars: Vec<char> = glob.chars().collect();
    let mut i = 0;
    let mut parens = 0usize;
    let mut braces = 0usize;
    let mut captures = 0u32;
    while let Some(&c) = chars.get(i) {
        match c {
            '\\' => {
                if chars.get(i + 1).is_none() {
                    return Err(format!("glob {glob:?} ends with an unfinished escape `\\`"));
                }
                i += 2;
                continue;
            }
            '[' => {
                // A class: `]` right after `[`, `[!` or `[^` is literal.
                let mut j = i + 1;
                if matches!(chars.get(j), Some('!' | '^')) {
                    j += 1;
                }
                if chars.get(j) == Some(&']') {
                    j += 1;
                }
                loop {
                    match chars.get(j) {
                        None => {
                            return Err(format!(
                                "glob {glob:?} has an unclosed character class `[` at position {i}"
                            ));
                        }
                        Some(']') => break,
                        Some('[') if chars.get(j + 1) == Some(&':') => {
                            // POSIX class [:alpha:]
                            let rest: String = chars.get(j..).unwrap_or(&[]).iter().collect();
                            match rest.find(":]") {
                                Some(end) => j += end + 2,
                                None => j += 1,
                            }
                        }
                        Some('\\') => j += 2,
                        Some(_) => j += 1,
                    }
                }
                i = j + 1;
                continue;
            }
            '{' => braces += 1,
            '}' => {
                if braces == 0 {
                    return Err(format!("glob {glob:?} has a `}}` without a matching `{{`"));
                }
                braces -= 1;
            }
            '(' => {
                parens += 1;
                captures = captures.saturating_add(1);
            }
            ')' => {
                if parens == 0 {
                    return Err(format!("glob {glob:?} has a `)` without a matching `(`"));
                }
                parens -= 1;
            }
            _ => {}
        }
        i += 1;
    }
    if braces > 0 {
        return Err(format!("glob {glob:?} has an unclosed `{{`"));
    }
    if parens > 0 {
        return Err(format!("glob {glob:?} has an unclosed group `(`"));
    }
    Ok(captures)
}

/// Whether `glob` is a well-formed Pachyderm glob.
pub(crate) fn check_glob(glob: &str) -> Result<(), String> {
    scan(glob).map(|_| ())
}

/// A warning when `template` names a capture group the glob does not have (Pachyderm then
/// uses an empty key for every file).
pub(crate) fn template_beyond_captures(glob: &str, template: &str) -> Option<String> {
    let captures = scan(glob).ok()?;
    let highest = super::syntax::check_template(template).ok()??;
    (highest > captures).then(|| {
        format!(
            "template {template:?} refers to group ${highest} but glob {glob:?} has {captures} capture group(s), so every file gets the empty key"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for ok in [
            "/",
            "/*",
            "/**",
            "/*/*",
            "/(*).txt",
            "/*_STOREID(*).txt",
            "/{a,b}/*",
            "/[!a]*",
            "/[]]",
            "/[[:alpha:]]*",
            "/!(*.txt)",
            "/a\\(b",
        ] {
            assert!(check_glob(ok).is_ok(), "{ok}");
        }
        for bad in ["/[", "/(*", "/*)", "/{a,b", "/a}", "/a\\"] {
            assert!(check_glob(bad).is_err(), "{bad}");
        }
        assert_eq!(scan("/(*)-(*)/+(a|b)"), Ok(3));
        assert!(template_beyond_captures("/(*)", "$2").is_some());
        assert!(template_beyond_captures("/(*)", "$1").is_none());
    }
}

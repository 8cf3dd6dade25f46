//! Path substitution: the fallback that makes `/pfs` paths work without a mount namespace.
//!
//! Every `/pfs` that starts a path (at the start of the text or after a character that cannot
//! be part of a path, such as a space, `=`, `:` or a quote) and ends a path part (followed by
//! `/`, the end, or such a character) is replaced by the scratch directory. `/pfsx`, `a/pfs`
//! and `/pfs_out` are left alone. Only `cmd`, `stdin`, `working_dir` and env values are
//! rewritten: paths computed at run time (`"/p" + "fs"`) or read from files are not, which is
//! why the mount-namespace mode is preferred.

use std::path::Path;

fn is_path_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'/' | b'~' | b'+' | b'@')
}

/// Replaces `/pfs` path prefixes in `text` by `scratch` (see the module docs).
///
/// ```
/// use executor_process::substitute_pfs;
/// use std::path::Path;
/// let s = Path::new("/tmp/s1");
/// assert_eq!(substitute_pfs("cat /pfs/in/a > /pfs/out/b", s), "cat /tmp/s1/in/a > /tmp/s1/out/b");
/// assert_eq!(substitute_pfs("x=/pfs", s), "x=/tmp/s1");
/// assert_eq!(substitute_pfs("/pfsx a/pfs/b", s), "/pfsx a/pfs/b");
/// ```
pub fn substitute_pfs(text: &str, scratch: &Path) -> String {
    substitute_bytes(text.as_bytes(), scratch.as_os_str().as_encoded_bytes())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|| text.to_owned())
}

/// Byte form of [`substitute_pfs`]; `None` when nothing was replaced.
pub(crate) fn substitute_bytes(text: &[u8], scratch: &[u8]) -> Option<Vec<u8>> {
    const PFS: &[u8] = b"/pfs";
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    while i + PFS.len() <= text.len() {
        let starts = text[i..].starts_with(PFS);
        let before_ok = i == 0 || !is_path_char(text[i - 1]);
        let after = text.get(i + PFS.len()).copied();
        let after_ok = match after {
            None => true,
            Some(b'/') => true,
            Some(b) => !is_path_char(b),
        };
        if starts && before_ok && after_ok {
            let o = out.get_or_insert_with(|| Vec::with_capacity(text.len() + scratch.len()));
            o.extend_from_slice(&text[copied..i]);
            o.extend_from_slice(scratch);
            i += PFS.len();
            copied = i;
        } else {
            i += 1;
        }
    }
    let mut o = out?;
    o.extend_from_slice(&text[copied..]);
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let s = Path::new("/s");
        for (input, want) in [
            ("/pfs", "/s"),
            ("/pfs/", "/s/"),
            ("/pfs/in/a.txt", "/s/in/a.txt"),
            ("cat /pfs/in/a /pfs/out", "cat /s/in/a /s/out"),
            ("--in=/pfs/in", "--in=/s/in"),
            ("'/pfs/out/x'", "'/s/out/x'"),
            ("\"/pfs/out/x\"", "\"/s/out/x\""),
            ("PATH=/bin:/pfs/in/bin", "PATH=/bin:/s/in/bin"),
            ("$(ls /pfs)", "$(ls /s)"),
            ("/pfsx", "/pfsx"),
            ("/pfs_out", "/pfs_out"),
            ("a/pfs/x", "a/pfs/x"),
            ("/data/pfs", "/data/pfs"),
            ("", ""),
            ("pfs", "pfs"),
            ("/pf", "/pf"),
            ("é /pfs/é", "é /s/é"),
        ] {
            assert_eq!(substitute_pfs(input, s), want, "{input:?}");
        }
    }
}

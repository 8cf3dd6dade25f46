//! "Did you mean ...?": the existing name nearest to one that was not found, when it is close
//! enough to be a typo.
//!
//! Closeness is the edit distance (insertions, deletions, substitutions of characters): a
//! candidate is offered when it is at most a third of its length away (at least 1), so
//! `imgaes` finds `images` but `img` finds nothing. The CLI words the hint; this module only
//! picks the name, so a host program can phrase its own.
//!
//! ```
//! use pipeline_core::suggest::nearest;
//! let repos = ["images", "edges", "montage"];
//! assert_eq!(nearest("imgaes", repos), Some("images"));
//! assert_eq!(nearest("edge", repos), Some("edges"));
//! assert_eq!(nearest("logs", repos), None);
//! ```

/// The edit (Levenshtein) distance between `a` and `b`, in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = Vec::with_capacity(b.len() + 1);
    for (i, ca) in a.chars().enumerate() {
        cur.clear();
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            let del = prev[j + 1] + 1;
            let ins = cur[j] + 1;
            cur.push(sub.min(del).min(ins));
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Whether `candidate` is close enough to `wanted` to be offered: an edit distance of at most
/// a third of the candidate's length (at least 1).
pub fn is_close(wanted: &str, candidate: &str) -> bool {
    edit_distance(wanted, candidate) <= candidate.chars().count().div_ceil(3).max(1)
}

/// The candidate nearest to `wanted` that [`is_close`] to it, other than `wanted` itself;
/// of equally near ones the first in sort order. `None` when nothing is close.
pub fn nearest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .filter(|c| *c != wanted && is_close(wanted, c))
        .min_by(|a, b| {
            edit_distance(wanted, a)
                .cmp(&edit_distance(wanted, b))
                .then_with(|| a.cmp(b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("images", "imgaes"), 2);
        assert_eq!(edit_distance("é", "e"), 1, "characters, not bytes");
    }

    #[test]
    fn only_close_names_are_offered_and_ties_are_stable() {
        let names = ["images", "edges", "montage", "image"];
        assert_eq!(nearest("imagess", names), Some("images"));
        assert_eq!(nearest("imag", names), Some("image"));
        assert_eq!(nearest("montag", names), Some("montage"));
        assert_eq!(nearest("images", names), Some("image"), "never itself");
        assert_eq!(nearest("xyz", names), None);
        assert_eq!(nearest("", names), None);
        assert_eq!(nearest("a", ["b", "c"]), Some("b"), "tie: first in order");
        assert_eq!(nearest("a", ["c", "b"]), Some("b"), "tie: first in order");
        assert_eq!(nearest("a", std::iter::empty()), None);
        assert!(!is_close("img", "images"));
    }
}

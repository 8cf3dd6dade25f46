//! Hiding secret values in user code's output and in error messages.
//!
//! A [`Redactor`] holds the values (bytes). Every byte that lies inside **any** occurrence of
//! **any** value is hidden; each run of hidden bytes becomes one `<redacted>` (so overlapping
//! or adjacent secrets leave no fragment of either). Newlines are never hidden, so a
//! multi-line value (a PEM key) reads `<redacted>` on each of its lines and the line count of
//! the output is kept. A value ending in a newline is also looked for without it (a shell's
//! `$(...)` drops trailing newlines).
//!
//! [`RedactStream`] does the same on a stream cut anywhere: it holds back only the bytes that
//! could still be the start of a value (at most the longest value's length − 1), so a value
//! split between two reads, or across the [`super::lines::LineSplitter`]'s line limit, is
//! still hidden whole. Redaction works on the raw bytes, before any lossy UTF-8 conversion,
//! and memory is bounded by the longest value plus the bytes pushed.

use std::fmt;

/// What a run of hidden bytes is replaced with.
pub const REDACTED: &str = "<redacted>";

/// A set of secret values to hide. `Debug` prints how many, never the values.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Distinct non-empty values.
    needles: Vec<Vec<u8>>,
    /// Indices into `needles`, by first byte.
    by_first: Vec<Vec<usize>>,
    longest: usize,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} values)", self.needles.len())
    }
}

impl Redactor {
    /// A redactor hiding every non-empty value of `values`.
    pub fn new<V: AsRef<[u8]>>(values: impl IntoIterator<Item = V>) -> Self {
        let mut needles: Vec<Vec<u8>> = Vec::new();
        for v in values {
            let v = v.as_ref();
            let trimmed = trim_newlines(v);
            for n in [v, trimmed] {
                if !n.is_empty() && !needles.iter().any(|x| x == n) {
                    needles.push(n.to_vec());
                }
            }
        }
        let mut by_first = vec![Vec::new(); 256];
        for (i, n) in needles.iter().enumerate() {
            by_first[usize::from(n[0])].push(i);
        }
        let longest = needles.iter().map(Vec::len).max().unwrap_or(0);
        Redactor {
            needles,
            by_first,
            longest,
        }
    }

    /// Whether there is nothing to hide.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every value hidden.
    pub fn redact_str(&self, text: &str) -> String {
        if self.is_empty() {
            return text.to_string();
        }
        let mut hidden = vec![false; text.len()];
        self.mark(text.as_bytes(), &mut hidden);
        if !hidden.contains(&true) {
            return text.to_string();
        }
        let mut out = Vec::with_capacity(text.len());
        emit(text.as_bytes(), &hidden, &mut false, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Marks in `hidden` every byte of `buf` inside an occurrence of a value.
    fn mark(&self, buf: &[u8], hidden: &mut [bool]) {
        for start in 0..buf.len() {
            let Some(candidates) = self.by_first.get(usize::from(buf[start])) else {
                continue;
            };
            for &i in candidates {
                let n = &self.needles[i];
                if buf[start..].starts_with(n) {
                    hidden[start..start + n.len()].fill(true);
                }
            }
        }
    }

    /// The first position from which `buf`'s tail is a proper prefix of some value (so
    /// might still become an occurrence), or `buf.len()`.
    fn undecided_from(&self, buf: &[u8]) -> usize {
        let from = buf.len().saturating_sub(self.longest.saturating_sub(1));
        (from..buf.len())
            .find(|&s| {
                let tail = &buf[s..];
                self.by_first[usize::from(tail[0])].iter().any(|&i| {
                    self.needles[i].len() > tail.len() && self.needles[i].starts_with(tail)
                })
            })
            .unwrap_or(buf.len())
    }
}

/// Appends `bytes` to `out`, each run of hidden bytes (newlines excepted) as one
/// [`REDACTED`]; `in_run` carries whether the byte before was hidden.
fn emit(bytes: &[u8], hidden: &[bool], in_run: &mut bool, out: &mut Vec<u8>) {
    for (&b, &hide) in bytes.iter().zip(hidden) {
        if hide && b != b'\n' {
            if !*in_run {
                out.extend_from_slice(REDACTED.as_bytes());
            }
            *in_run = true;
        } else {
            out.push(b);
            *in_run = false;
        }
    }
}

fn trim_newlines(v: &[u8]) -> &[u8] {
    let mut end = v.len();
    while end > 0 && matches!(v[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &v[..end]
}

/// Redacts a byte stream pushed in pieces cut anywhere (see the module docs).
#[derive(Debug)]
pub struct RedactStream {
    redactor: Redactor,
    /// Bytes not emitted yet, and which of them are known to be hidden.
    pending: Vec<u8>,
    hidden: Vec<bool>,
    /// Whether the last byte emitted was hidden (a run continues without a second marker).
    in_run: bool,
}

impl RedactStream {
    /// A stream hiding `redactor`'s values.
    pub fn new(redactor: Redactor) -> Self {
        RedactStream {
            redactor,
            pending: Vec::new(),
            hidden: Vec::new(),
            in_run: false,
        }
    }

    /// Takes the next bytes; appends to `out` every byte that can be decided.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        self.pending.extend_from_slice(bytes);
        self.hidden.resize(self.pending.len(), false);
        self.redactor.mark(&self.pending, &mut self.hidden);
        let ready = self.redactor.undecided_from(&self.pending);
        self.emit(ready, out);
    }

    /// The stream ended: appends the rest.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.emit(self.pending.len(), out);
        self.in_run = false;
    }

    fn emit(&mut self, upto: usize, out: &mut Vec<u8>) {
        emit(
            &self.pending[..upto],
            &self.hidden[..upto],
            &mut self.in_run,
            out,
        );
        self.pending.drain(..upto);
        self.hidden.drain(..upto);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(values: &[&str], input: &[u8], chunk: usize) -> String {
        let mut s = RedactStream::new(Redactor::new(values));
        let mut out = Vec::new();
        for c in input.chunks(chunk.max(1)) {
            s.push(c, &mut out);
        }
        s.finish(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn values_are_hidden_however_the_stream_is_cut() {
        let input = b"user=admin pw=hunter2 again:hunter2!";
        for chunk in 1..=input.len() {
            assert_eq!(
                stream(&["hunter2", "admin"], input, chunk),
                "user=<redacted> pw=<redacted> again:<redacted>!",
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn overlapping_values_leave_no_fragment() {
        assert_eq!(stream(&["abcd", "cdef"], b"xabcdefx", 3), "x<redacted>x");
        assert_eq!(stream(&["aa"], b"aaaaab", 1), "<redacted>b");
    }

    #[test]
    fn newlines_stay_and_multiline_values_are_hidden_per_line() {
        assert_eq!(
            stream(&["line1\nline2\n"], b"key:\nline1\nline2\nend\n", 4),
            "key:\n<redacted>\n<redacted>\nend\n"
        );
        // A value with a trailing newline is found without it too.
        assert_eq!(stream(&["tok\n"], b"[tok]", 2), "[<redacted>]");
    }

    #[test]
    fn undecided_bytes_only_are_held() {
        let mut s = RedactStream::new(Redactor::new(["secret"]));
        let mut out = Vec::new();
        s.push(b"hello\nsec", &mut out);
        assert_eq!(out, b"hello\n", "only a possible start of the value waits");
        s.push(b"ond", &mut out);
        assert_eq!(out, b"hello\nsecond");
    }

    proptest::proptest! {
        /// Cut anywhere, the stream gives what redacting the whole text gives, and no value
        /// (with anything but newlines in it) survives.
        #[test]
        fn streaming_is_whole_text_redaction(
            secrets in proptest::collection::vec("[xyz\n]{1,6}", 1..4),
            text in "[xyzw\n]{0,120}",
            cuts in proptest::collection::vec(1usize..9, 1..30),
        ) {
            let r = Redactor::new(&secrets);
            let whole = r.redact_str(&text);
            let mut stream = RedactStream::new(r.clone());
            let mut out = Vec::new();
            let (mut at, mut i) = (0, 0);
            while at < text.len() {
                let end = (at + cuts[i % cuts.len()]).min(text.len());
                stream.push(&text.as_bytes()[at..end], &mut out);
                at = end;
                i += 1;
            }
            stream.finish(&mut out);
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), whole.clone());
            for s in secrets.iter().filter(|s| !s.trim_matches('\n').is_empty()) {
                proptest::prop_assert!(!whole.contains(s.as_str()), "{:?} in {:?}", s, whole);
            }
            proptest::prop_assert_eq!(whole.matches('\n').count(), text.matches('\n').count());
        }
    }

    #[test]
    fn bytes_not_text_and_debug_is_silent() {
        let r = Redactor::new([&b"\xe2\x82\xac\xe2\x82"[..]]);
        assert_eq!(r.redact_str("a\u{20ac}\u{20ac}b"), "a<redacted>\u{fffd}b");
        assert_eq!(format!("{r:?}"), "Redactor(1 values)");
        assert_eq!(Redactor::new([""]).redact_str("x"), "x");
    }
}

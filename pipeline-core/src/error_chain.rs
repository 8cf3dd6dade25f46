//! [`ErrorChain`]: an error printed with all its sources, each once.
//!
//! Every error type of this workspace prints only its own message; its cause is reachable
//! through [`std::error::Error::source`]. Where an error becomes text (a job's failure
//! reason, a diagnostic, the CLI's last line), wrap it in [`ErrorChain`] so its causes are
//! not lost.

use std::error::Error;
use std::fmt;

/// Displays an error followed by each of its sources: `outer: middle: inner`.
///
/// ```
/// use pipeline_core::error_chain::ErrorChain;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("reading the spec")]
/// struct ReadSpec(#[source] std::io::Error);
///
/// let e = ReadSpec(std::io::Error::other("disk on fire"));
/// assert_eq!(ErrorChain(&e).to_string(), "reading the spec: disk on fire");
/// ```
#[derive(Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'a));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

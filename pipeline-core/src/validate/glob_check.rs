//! Glob checks for `input.pfs.glob`, through the engine's own glob compiler
//! ([`crate::glob::Glob`]), so validation accepts exactly what datum planning can run.

use crate::error_chain::ErrorChain;
use crate::glob::{Glob, Template};

/// Whether `glob` compiles as a Pachyderm glob (after Pachyderm's normalisation).
pub(crate) fn check_glob(glob: &str) -> Result<Glob, String> {
    Glob::new(&crate::glob::normalize(glob)).map_err(|e| {
        format!(
            "invalid glob: {} (Pachyderm only finds this when the job runs, and then retries forever)",
            ErrorChain(&e)
        )
    })
}

/// Parses a `join_on`/`group_by` template with the engine's template parser.
pub(crate) fn check_template(template: &str) -> Result<Template, String> {
    Template::parse(template).map_err(|e| match &e {
        crate::glob::TemplateError::LeadingZero { digits, .. } => {
            let trimmed = digits.trim_start_matches('0');
            let fixed = if trimmed.is_empty() { "0" } else { trimmed };
            format!("{e}; Pachyderm's worker crashes on it, write ${fixed}")
        }
        _ => e.to_string(),
    })
}

/// A warning when `template` names a capture group the glob does not have (Pachyderm then
/// uses an empty key for every file).
pub(crate) fn template_beyond_captures(glob: &Glob, template: &Template) -> Option<String> {
    let captures = glob.capture_count();
    let highest = template.max_group()?;
    (highest > captures).then(|| {
        format!(
            "template {:?} refers to group ${highest} but glob {:?} has {captures} capture group(s), so every file gets the empty key",
            template.as_str(),
            glob.as_str()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_templates() {
        for ok in [
            "/",
            "*",
            "abc/",
            "/*/*",
            "/(*).txt",
            "/{a,b}/*",
            "/!(*.txt)",
        ] {
            assert!(check_glob(ok).is_ok(), "{ok}");
        }
        for bad in ["/[", "/(*", "/{a,b", "/a\\"] {
            assert!(check_glob(bad).is_err(), "{bad}");
        }
        let g = check_glob("/(*)").unwrap();
        let two = check_template("$2").unwrap();
        let one = check_template("${1}").unwrap();
        assert!(template_beyond_captures(&g, &two).is_some());
        assert!(template_beyond_captures(&g, &one).is_none());
        assert!(check_template("$01").unwrap_err().contains("write $1"));
    }
}

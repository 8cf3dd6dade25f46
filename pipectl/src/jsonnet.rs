//! `create|update pipeline --jsonnet TEMPLATE [--arg K=V ...]`: a Jsonnet template
//! evaluated to pipeline specs, as pachctl does. A template that evaluates to a function is
//! called with the `--arg` values as string top-level arguments; the result (one spec or a
//! list of specs) is sent as JSON like any spec file.
//!
//! Evaluation uses `rsjsonnet-lang` (a pure-Rust Jsonnet implementation that passes the
//! language's test suite) through `rsjsonnet-front`, which resolves `import` paths next to a
//! template file and prints evaluation errors with their source lines on stderr.

use std::path::Path;

use crate::error::{CliError, Res};

/// The deepest Jsonnet call stack a template may use (runaway recursion ends with an error).
const MAX_STACK: usize = 500;

/// Evaluates the template at `source` (a file, `-` or an `http(s)://` URL) with top-level
/// arguments `args` (`KEY=VALUE`); returns the specs as JSON text and a source name.
pub fn evaluate(source: &Path, args: &[String]) -> Res<(String, String)> {
    let named = parse_args(args)?;
    let (bytes, name) = crate::spec_source::read(source)?;
    let arena = rsjsonnet_lang::arena::Arena::new();
    let mut session = rsjsonnet_front::Session::new(&arena);
    session.program_mut().set_max_stack(MAX_STACK);
    if let Some(dir) = source.parent().filter(|_| source.is_file()) {
        session.add_search_path(dir.to_path_buf());
    }
    let failed = || {
        CliError::BadArgs(format!(
            "{name}: the Jsonnet template did not evaluate (the error is above)"
        ))
    };
    let thunk = session.load_virt_file(&name, bytes).ok_or_else(failed)?;
    let value = session.eval_value(&thunk).ok_or_else(failed)?;
    let value = if value.is_function() {
        let program = session.program_mut();
        let tla: Vec<_> = named
            .iter()
            .map(|(k, v)| {
                let value = rsjsonnet_lang::program::Value::string(v);
                (program.intern_str(k), program.value_to_thunk(&value))
            })
            .collect();
        session.eval_call(&thunk, &[], &tla).ok_or_else(failed)?
    } else if let Some((k, _)) = named.first() {
        return Err(CliError::BadArgs(format!(
            "--arg {k}: {name} is not a function, so it takes no arguments (write it as `function({k}) ...`)"
        )));
    } else {
        value
    };
    let json = session.manifest_json(&value, true).ok_or_else(failed)?;
    Ok((json, format!("{name} (Jsonnet)")))
}

/// `KEY=VALUE` pairs; a key must be a Jsonnet identifier.
fn parse_args(args: &[String]) -> Res<Vec<(String, String)>> {
    args.iter()
        .map(|a| {
            let (k, v) = a
                .split_once('=')
                .ok_or_else(|| CliError::BadArgs(format!("--arg {a:?}: expected KEY=VALUE")))?;
            let ident = k
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ident {
                return Err(CliError::BadArgs(format!(
                    "--arg {a:?}: {k:?} is not a Jsonnet identifier (letters, digits, `_`)"
                )));
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str, args: &[&str]) -> Res<String> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.jsonnet");
        std::fs::write(&f, text).unwrap();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        evaluate(&f, &args).map(|(j, _)| j)
    }

    #[test]
    fn templates_take_string_arguments_and_imports() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lib.libsonnet"), "{ glob: '/*' }").unwrap();
        let f = dir.path().join("p.jsonnet");
        std::fs::write(
            &f,
            "local lib = import 'lib.libsonnet';\nfunction(suffix, src='images') {\n  pipeline: { name: 'edges-' + suffix },\n  transform: { cmd: ['sh'] },\n  input: { pfs: { repo: src, glob: lib.glob } },\n}\n",
        )
        .unwrap();
        let (json, name) = evaluate(&f, &["suffix=1".to_string()]).unwrap();
        assert!(name.ends_with("(Jsonnet)"), "{name}");
        let specs = pipeline_core::spec::parse_str(&json, &name).unwrap();
        assert_eq!(specs[0].pipeline_name(), Some("edges-1"));
        assert!(
            json.contains("\"images\"") && json.contains("\"/*\""),
            "{json}"
        );
    }

    #[test]
    fn bad_templates_and_arguments_are_errors() {
        assert!(eval("{ a: }", &[]).is_err());
        assert!(eval("error 'no'", &[]).is_err());
        assert!(
            eval("function(x) { a: x }", &[]).is_err(),
            "a missing argument"
        );
        let e = eval("{ a: 1 }", &["x=1"]).unwrap_err().to_string();
        assert!(e.contains("not a function"), "{e}");
        let e = eval("function(x) x", &["x"]).unwrap_err().to_string();
        assert!(e.contains("KEY=VALUE"), "{e}");
        let e = eval("function(x) x", &["1x=2"]).unwrap_err().to_string();
        assert!(e.contains("identifier"), "{e}");
        assert!(
            eval("local f(n) = f(n + 1); f(0)", &[]).is_err(),
            "deep recursion ends"
        );
    }
}

//! "Reproduce locally": the shell commands that fetch one datum's inputs from the job's input
//! commits into `./pfs` and run the transform over them as its executor would (a `docker
//! run` for Docker pipelines, the command itself for the process executor).

use pipeline_core::pps::{DatumInfo, JobInfo};
use pipeline_core::spec::EffectiveSpec;

use super::datum_fields::input_commit;

/// What the commands leave out, shown next to them.
pub const NOT_REPRODUCED: &str = "Not reproduced: secrets (transform.secrets are left out; set \
    them yourself), resource limits and requests, the datum timeout and retries, err_cmd, \
    the user and sandbox of the worker, and sidecars.";

/// The commands, one per line, for a pipeline whose jobs run on executor `executor`; `None`
/// when there is no local equivalent (Kubernetes runs Docker images: those get `docker run`).
pub fn commands(
    spec: &EffectiveSpec,
    executor: &str,
    job: &JobInfo,
    d: &DatumInfo,
) -> Option<String> {
    if spec.transform.cmd.is_empty() {
        return None;
    }
    let mut out = fetch_inputs(job, d);
    out.push(String::new());
    if executor == "process" {
        out.push("# Run the transform here (the process executor's /pfs is ./pfs).".into());
        out.push(process_run(spec, job, d));
    } else {
        out.push("# Run the transform in its image, the inputs mounted at /pfs/<input>.".into());
        out.push(docker_run(spec, job, d));
    }
    Some(out.join("\n"))
}

/// `mkdir` and `pipectl get file` lines that put each input where user code reads it.
fn fetch_inputs(job: &JobInfo, d: &DatumInfo) -> Vec<String> {
    let mut out = vec![
        "# Fetch the datum's inputs from the job's input commits.".to_string(),
        "mkdir -p pfs/out".to_string(),
    ];
    for i in &d.inputs {
        let commit = input_commit(job, &i.repo).map_or(job.id.as_str(), |c| c.id.as_str());
        let local = format!("pfs/{}{}", i.name, i.path.trim_end_matches('/'));
        let source = format!("{}@{}:{}", i.repo, commit, i.path);
        if i.path.ends_with('/') {
            out.push(format!("mkdir -p {}", sh(&local)));
            out.push(format!(
                "pipectl get file -r {} -o {}",
                sh(&source),
                sh(&local)
            ));
        } else {
            let parent = local.rsplit_once('/').map_or("pfs", |(dir, _)| dir);
            out.push(format!("mkdir -p {}", sh(parent)));
            out.push(format!(
                "pipectl get file {} -o {}",
                sh(&source),
                sh(&local)
            ));
        }
    }
    out
}

/// The datum's environment as user code sees it (`/pfs` paths), transform `env` first.
fn datum_env(spec: &EffectiveSpec, job: &JobInfo, d: &DatumInfo) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = spec
        .transform
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for i in &d.inputs {
        env.push((
            i.name.clone(),
            format!("/pfs/{}{}", i.name, i.path.trim_end_matches('/')),
        ));
        let commit = input_commit(job, &i.repo).map_or(job.id.as_str(), |c| c.id.as_str());
        env.push((format!("{}_COMMIT", i.name), commit.to_string()));
    }
    env.push(("PACH_DATUM_ID".into(), d.id.clone()));
    env.push(("PACH_JOB_ID".into(), job.id.clone()));
    env.push((
        "PACH_OUTPUT_COMMIT_ID".into(),
        job.output_commit.id.as_str().to_string(),
    ));
    env.push(("PPS_PIPELINE_NAME".into(), job.pipeline.clone()));
    env
}

/// `printf ... | ` feeding `transform.stdin`, or nothing.
fn stdin_pipe(spec: &EffectiveSpec, rewrite: impl Fn(&str) -> String) -> String {
    if spec.transform.stdin.is_empty() {
        return String::new();
    }
    let lines: Vec<String> = spec
        .transform
        .stdin
        .iter()
        .map(|l| sh(&rewrite(l)))
        .collect();
    format!("printf '%s\\n' {} | ", lines.join(" "))
}

/// The process executor's run: `env` with the datum's variables, then the command, with
/// `/pfs` rewritten to `./pfs` (as the executor's substitution mode does).
fn process_run(spec: &EffectiveSpec, job: &JobInfo, d: &DatumInfo) -> String {
    let local = |s: &str| s.replace("/pfs/", "./pfs/");
    let mut parts = vec!["env".to_string()];
    for (k, v) in datum_env(spec, job, d) {
        parts.push(sh(&format!("{k}={}", local(&v))));
    }
    parts.extend(spec.transform.cmd.iter().map(|a| sh(&local(a))));
    format!("{}{}", stdin_pipe(spec, local), parts.join(" "))
}

/// `docker run` of the pipeline's image with the inputs and `/pfs/out` mounted.
fn docker_run(spec: &EffectiveSpec, job: &JobInfo, d: &DatumInfo) -> String {
    let mut parts = vec!["docker run --rm -i".to_string()];
    let mut names: Vec<&str> = d.inputs.iter().map(|i| i.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for n in names {
        parts.push(format!(
            "-v \"$PWD\"/{}",
            sh(&format!("pfs/{n}:/pfs/{n}:ro"))
        ));
    }
    parts.push("-v \"$PWD\"/pfs/out:/pfs/out".into());
    for (k, v) in datum_env(spec, job, d) {
        parts.push(format!("-e {}", sh(&format!("{k}={v}"))));
    }
    if let Some(w) = &spec.transform.working_dir {
        parts.push(format!("-w {}", sh(w)));
    }
    if let Some(u) = &spec.transform.user {
        parts.push(format!("-u {}", sh(u)));
    }
    parts.push(sh(spec.image()));
    parts.extend(spec.transform.cmd.iter().map(|a| sh(a)));
    format!("{}{}", stdin_pipe(spec, str::to_string), parts.join(" "))
}

/// `s` as one shell word: bare when it is plainly safe, otherwise single-quoted.
pub fn sh(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(sh("pfs/raw/a.txt"), "pfs/raw/a.txt");
        assert_eq!(sh("a b"), "'a b'");
        assert_eq!(sh("it's"), r"'it'\''s'");
        assert_eq!(sh(""), "''");
        assert_eq!(sh("$raw"), "'$raw'");
    }
}

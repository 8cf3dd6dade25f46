//! One test per validation rule: each asserts the rule's code, field path and message.

use pipeline_core::spec::{Diagnostic, parse_str};
use pipeline_core::validate::{Report, validate};

fn report(yaml: &str) -> Report {
    let specs = parse_str(yaml, "t.yaml").unwrap_or_else(|e| panic!("parse failed: {e}"));
    validate(&specs[0])
}

const HEAD: &str = "pipeline: {name: p}\ntransform: {image: 'img:1', cmd: [sh]}\n";

fn with(rest: &str) -> String {
    format!("{HEAD}{rest}")
}

fn find<'a>(list: &'a [Diagnostic], code: &str) -> &'a Diagnostic {
    list.iter()
        .find(|d| d.code == code)
        .unwrap_or_else(|| panic!("no {code} in {list:#?}"))
}

/// Asserts an error with `code` at `path` whose message contains `message`.
fn error(yaml: &str, code: &str, path: &str, message: &str) -> Diagnostic {
    let r = report(yaml);
    let d = find(&r.errors, code).clone();
    assert_eq!(d.path.to_string(), path, "{d:?}");
    assert!(
        d.message.contains(message),
        "message {:?} lacks {message:?}",
        d.message
    );
    assert!(d.location.line > 0, "{d:?}");
    d
}

fn warning(yaml: &str, code: &str, path: &str, message: &str) {
    let r = report(yaml);
    assert!(r.is_valid(), "unexpected errors: {:#?}", r.errors);
    let d = find(&r.warnings, code);
    assert_eq!(d.path.to_string(), path, "{d:?}");
    assert!(
        d.message.contains(message),
        "message {:?} lacks {message:?}",
        d.message
    );
}

fn valid(yaml: &str) {
    let r = report(yaml);
    assert!(r.is_valid(), "unexpected errors: {:#?}", r.errors);
}

const PFS: &str = "input:\n  pfs: {repo: images, glob: /*}\n";

#[test]
fn baseline_is_valid() {
    let r = report(&with(PFS));
    assert!(r.is_valid() && r.warnings.is_empty(), "{r:#?}");
}

#[test]
fn pipeline_missing() {
    error(
        "transform: {cmd: [sh]}\n",
        "pipeline.missing",
        "pipeline",
        "no `pipeline` specified",
    );
}

#[test]
fn pipeline_name_empty() {
    error(
        &format!("pipeline: {{project: {{name: x}}}}\ntransform: {{cmd: [sh]}}\n{PFS}"),
        "pipeline.name.empty",
        "pipeline.name",
        "no pipeline `name` specified",
    );
}

#[test]
fn pipeline_name_chars() {
    let d = error(
        &format!("pipeline: {{name: my.pipe}}\ntransform: {{cmd: [sh]}}\n{PFS}"),
        "pipeline.name.chars",
        "pipeline.name",
        "pipeline name \"my.pipe\" is invalid: only alphanumeric characters, underscores, and dashes are allowed",
    );
    assert_eq!((d.location.line, d.location.column), (1, 12));
}

#[test]
fn pipeline_name_start() {
    error(
        &format!("pipeline: {{name: _p}}\ntransform: {{cmd: [sh]}}\n{PFS}"),
        "pipeline.name.start",
        "pipeline.name",
        "must start with an alphanumeric character",
    );
    // A trailing `-` or `_` is accepted, as in Pachyderm.
    valid(&format!(
        "pipeline: {{name: p_}}\ntransform: {{image: 'i:1', cmd: [sh]}}\n{PFS}"
    ));
}

#[test]
fn pipeline_name_length() {
    let name = "a".repeat(52);
    error(
        &format!("pipeline: {{name: {name}}}\ntransform: {{cmd: [sh]}}\n{PFS}"),
        "pipeline.name.length",
        "pipeline.name",
        "is 1 characters longer than the 51 max",
    );
}

#[test]
fn pipeline_name_kubernetes() {
    let name = "a".repeat(40);
    error(
        &format!(
            "pipeline: {{name: {name}, project: {{name: projectname-long-enough}}}}\ntransform: {{cmd: [sh]}}\n{PFS}"
        ),
        "pipeline.name.kubernetes",
        "pipeline.name",
        "characters longer than the 63 max",
    );
}

#[test]
fn pipeline_project_name() {
    error(
        &format!("pipeline: {{name: p, project: {{name: -x}}}}\ntransform: {{cmd: [sh]}}\n{PFS}"),
        "pipeline.project.name",
        "pipeline.project.name",
        "must start with an alphanumeric character",
    );
}

#[test]
fn transform_null() {
    error(
        &format!("pipeline: {{name: p}}\ntransform: null\n{PFS}"),
        "transform.null",
        "transform",
        "pipeline must specify a transform",
    );
}

#[test]
fn transform_cmd_missing() {
    error(
        &format!("pipeline: {{name: p}}\ntransform: {{image: 'i:1'}}\n{PFS}"),
        "transform.cmd.missing",
        "transform.cmd",
        "nothing to run",
    );
    error(
        &format!("pipeline: {{name: p}}\n{PFS}"),
        "transform.cmd.missing",
        "transform.cmd",
        "nothing to run",
    );
}

#[test]
fn transform_cmd_program() {
    error(
        &format!("pipeline: {{name: p}}\ntransform: {{cmd: ['', x]}}\n{PFS}"),
        "transform.cmd.program",
        "transform.cmd[0]",
        "cannot be empty",
    );
}

#[test]
fn transform_secret_key() {
    error(
        &format!(
            "pipeline: {{name: p}}\ntransform:\n  cmd: [sh]\n  secrets: [{{name: s, env_var: TOKEN}}]\n{PFS}"
        ),
        "transform.secret.key",
        "transform.secrets[0].key",
        "secret \"s\" has env_var set but is missing key",
    );
}

#[test]
fn transform_secret_name() {
    error(
        &format!(
            "pipeline: {{name: p}}\ntransform:\n  cmd: [sh]\n  secrets: [{{key: k, env_var: TOKEN}}]\n{PFS}"
        ),
        "transform.secret.name",
        "transform.secrets[0].name",
        "secret must specify a `name`",
    );
}

#[test]
fn tf_job_rejected() {
    error(
        &with(&format!("tf_job: {{spec: x}}\n{PFS}")),
        "tf_job.unsupported",
        "tf_job",
        "embedding TFJobs in pipelines is not supported",
    );
}

#[test]
fn reprocess_spec_value() {
    error(
        &with(&format!("reprocess_spec: sometimes\n{PFS}")),
        "reprocess_spec.value",
        "reprocess_spec",
        "must be one of 'until_success' or 'every_job'",
    );
    valid(&with(&format!("reprocess_spec: every_job\n{PFS}")));
}

#[test]
fn output_branch_name() {
    error(
        &with(&format!("output_branch: 'dev/x'\n{PFS}")),
        "output_branch.name",
        "output_branch",
        "branch name \"dev/x\" is invalid",
    );
}

#[test]
fn datum_set_spec_zero() {
    error(
        &with(&format!("datum_set_spec: {{number: 0}}\n{PFS}")),
        "datum_set_spec.zero",
        "datum_set_spec",
        "all 0",
    );
}

#[test]
fn datum_set_spec_negative() {
    error(
        &with(&format!("datum_set_spec: {{number: -2}}\n{PFS}")),
        "datum_set_spec.negative",
        "datum_set_spec.number",
        "cannot be negative",
    );
}

#[test]
fn maximum_expected_uptime_needs_autoscaling() {
    error(
        &with(&format!("maximum_expected_uptime: 1h\n{PFS}")),
        "maximum_expected_uptime.autoscaling",
        "maximum_expected_uptime",
        "autoscaling must be true when maximum_expected_uptime is set",
    );
    valid(&with(&format!(
        "maximum_expected_uptime: 1h\nautoscaling: true\n{PFS}"
    )));
}

#[test]
fn service_type() {
    error(
        &with(&format!(
            "service: {{internal_port: 80, external_port: 30080, type: Ingress}}\n{PFS}"
        )),
        "service.type",
        "service.type",
        "the following service type Ingress is not allowed",
    );
}

#[test]
fn service_parallelism() {
    error(
        &with(&format!(
            "service: {{internal_port: 80, external_port: 30080}}\nparallelism_spec: {{constant: 0}}\n{PFS}"
        )),
        "service.parallelism",
        "parallelism_spec.constant",
        "services can only be run with a constant parallelism of 1",
    );
}

#[test]
fn service_with_spout() {
    error(
        &with("service: {internal_port: 80, external_port: 30080}\nspout: {}\n"),
        "service.spout",
        "service",
        "only one of `service` or `spout` can be set",
    );
}

#[test]
fn spout_autoscaling() {
    error(
        &with("spout: {}\nautoscaling: true\n"),
        "spout.autoscaling",
        "autoscaling",
        "autoscaling can't be used with spouts",
    );
}

#[test]
fn spout_input() {
    error(
        &with(&format!("spout: {{}}\n{PFS}")),
        "spout.input",
        "input",
        "spout pipelines (without a service) must not have an input",
    );
    valid(&with(&format!(
        "spout: {{service: {{internal_port: 80, external_port: 30080}}}}\n{PFS}"
    )));
}

#[test]
fn s3_out_with_service_or_spout() {
    error(
        &with("spout: {}\ns3_out: true\n"),
        "s3_out.service_spout",
        "s3_out",
        "s3 output is not supported in spouts or services",
    );
}

#[test]
fn pod_spec_json() {
    error(
        &with(&format!("pod_spec: '{{not json'\n{PFS}")),
        "pod_spec.json",
        "pod_spec",
        "malformed PodSpec",
    );
}

#[test]
fn pod_patch_json() {
    error(
        &with(&format!("pod_patch: '[{{\"op\": '\n{PFS}")),
        "pod_patch.json",
        "pod_patch",
        "malformed PodPatch",
    );
    valid(&with(&format!(
        "pod_patch: '[{{\"op\": \"add\", \"path\": \"/x\", \"value\": 1}}]'\n{PFS}"
    )));
}

#[test]
fn toleration_operator() {
    error(
        &with(&format!(
            "tolerations: [{{key: gpu, effect: NO_SCHEDULE}}]\n{PFS}"
        )),
        "toleration.operator",
        "tolerations[0].operator",
        "toleration 0/1: cannot omit key/value comparison operator; specify EQUAL or EXISTS",
    );
}

#[test]
fn toleration_effect() {
    error(
        &with(&format!(
            "tolerations: [{{key: gpu, operator: EXISTS, effect: NoSchedule}}]\n{PFS}"
        )),
        "toleration.effect",
        "tolerations[0].effect",
        "effect \"NoSchedule\" is invalid",
    );
}

#[test]
fn egress_sql_secret() {
    error(
        &with(&format!(
            "egress: {{sql_database: {{url: 'snowflake://x'}}}}\n{PFS}"
        )),
        "egress.sql.secret",
        "egress.sql_database.secret",
        "egress.sql_database.secret is required",
    );
    error(
        &with(&format!(
            "egress: {{sql_database: {{url: 'snowflake://x', secret: {{name: s}}}}}}\n{PFS}"
        )),
        "egress.sql.secret",
        "egress.sql_database.secret.key",
        "secret.name and egress.sql_database.secret.key are required",
    );
}

#[test]
fn egress_sql_format() {
    error(
        &with(&format!(
            "egress: {{sql_database: {{url: 'x://', secret: {{name: s, key: k}}, file_format: {{type: XML}}}}}}\n{PFS}"
        )),
        "egress.sql.format",
        "egress.sql_database.file_format.type",
        "file format \"XML\" is invalid",
    );
}

#[test]
fn input_none() {
    error(&with("input: {}\n"), "input.none", "input", "no input set");
    error(
        &with("input:\n  cross: []\n"),
        "input.none",
        "input.cross",
        "no input set",
    );
    error(
        &with("input:\n  union: [{pfs: {repo: a, glob: /}}, {}]\n"),
        "input.none",
        "input.union[1]",
        "no input set",
    );
}

#[test]
fn input_multiple() {
    error(
        &with("input:\n  pfs: {repo: a, glob: /}\n  cron: {name: t, spec: '@daily'}\n"),
        "input.multiple",
        "input",
        "multiple input types set (pfs, cron)",
    );
}

#[test]
fn input_repo_required() {
    error(
        &with("input:\n  pfs: {name: a, glob: /}\n"),
        "input.repo.required",
        "input.pfs.repo",
        "input must specify a repo",
    );
}

#[test]
fn input_repo_name() {
    error(
        &with("input:\n  pfs: {repo: 'a b', glob: /}\n"),
        "input.repo.name",
        "input.pfs.repo",
        "repo name \"a b\" is invalid",
    );
}

#[test]
fn input_glob_required() {
    let d = error(
        &with("input:\n  pfs: {repo: a}\n"),
        "input.glob.required",
        "input.pfs.glob",
        "input must specify a glob",
    );
    assert_eq!(
        d.location.line, 4,
        "missing field points at its parent: {d:?}"
    );
}

#[test]
fn input_glob_syntax() {
    let d = error(
        &with(
            "input:\n  cross:\n    - pfs: {repo: a, glob: /*}\n    - pfs: {repo: b, glob: '/['}\n",
        ),
        "input.glob.syntax",
        "input.cross[1].pfs.glob",
        "unclosed character class",
    );
    assert_eq!((d.location.line, d.location.column), (6, 22));
}

#[test]
fn input_commit() {
    error(
        &with("input:\n  pfs: {repo: a, glob: /, commit: abc123}\n"),
        "input.commit",
        "input.pfs.commit",
        "input cannot come from a commit",
    );
}

#[test]
fn input_branch_name() {
    error(
        &with("input:\n  pfs: {repo: a, glob: /, branch: 'feature/x'}\n"),
        "input.branch.name",
        "input.pfs.branch",
        "branch name \"feature/x\" is invalid",
    );
}

#[test]
fn input_project_name() {
    error(
        &with("input:\n  pfs: {repo: a, glob: /, project: 'my project'}\n"),
        "input.project.name",
        "input.pfs.project",
        "project name \"my project\" is invalid",
    );
}

#[test]
fn input_repo_type() {
    error(
        &with("input:\n  pfs: {repo: a, glob: /, repo_type: system}\n"),
        "input.repo_type",
        "input.pfs.repo_type",
        "repo_type \"system\" is invalid",
    );
}

#[test]
fn input_name_reserved() {
    error(
        &with("input:\n  pfs: {repo: out, glob: /}\n"),
        "input.name.reserved",
        "input.pfs.repo",
        "input cannot be named out",
    );
    error(
        &with("input:\n  pfs: {name: .env, repo: a, glob: /}\n"),
        "input.name.reserved",
        "input.pfs.name",
        "input cannot be named .env",
    );
}

#[test]
fn input_name_path() {
    error(
        &with("input:\n  pfs: {name: ../etc, repo: a, glob: /}\n"),
        "input.name.path",
        "input.pfs.name",
        "cannot contain `/`",
    );
}

#[test]
fn input_name_duplicate() {
    error(
        &with(
            "input:\n  cross:\n    - pfs: {repo: foo, glob: /*}\n    - pfs: {repo: foo, glob: /}\n",
        ),
        "input.name.duplicate",
        "input.cross[1].pfs.repo",
        "name \"foo\" was used more than once",
    );
    // Union children may share a name...
    valid(&with(
        "input:\n  union:\n    - pfs: {repo: foo, glob: /*}\n    - pfs: {repo: foo, project: staging, glob: /*}\n",
    ));
    // ...but a union's names count against inputs outside it.
    error(
        &with(
            "input:\n  cross:\n    - union:\n        - pfs: {repo: x, glob: /*}\n    - pfs: {repo: x, glob: /}\n",
        ),
        "input.name.duplicate",
        "input.cross[1].pfs.repo",
        "name \"x\" was used more than once",
    );
    valid(&with(
        "input:\n  cross:\n    - union:\n        - pfs: {repo: x, glob: /*}\n        - pfs: {repo: x, glob: /a}\n    - pfs: {repo: y, glob: /}\n",
    ));
}

#[test]
fn input_cron_name() {
    error(
        &with("input:\n  cron: {spec: '@every 1m'}\n"),
        "input.cron.name",
        "input.cron.name",
        "input must specify a name",
    );
}

#[test]
fn input_cron_spec() {
    error(
        &with("input:\n  cron: {name: tick, spec: 'every 5m'}\n"),
        "input.cron.spec",
        "input.cron.spec",
        "error parsing cron-spec",
    );
    error(
        &with("input:\n  cron: {name: tick}\n"),
        "input.cron.spec",
        "input.cron.spec",
        "empty spec string",
    );
}

#[test]
fn input_cron_repo() {
    error(
        &with("input:\n  cron: {name: tick, spec: '@daily', repo: 'a.b'}\n"),
        "input.cron.repo",
        "input.cron.repo",
        "repo name \"a.b\" is invalid",
    );
}

#[test]
fn input_cron_start() {
    error(
        &with("input:\n  cron: {name: tick, spec: '@daily', start: yesterday}\n"),
        "input.cron.start",
        "input.cron.start",
        "expected RFC 3339",
    );
}

#[test]
fn input_s3_glob() {
    error(
        &with("input:\n  pfs: {repo: a, glob: /*, s3: true}\n"),
        "input.s3.glob",
        "input.pfs.glob",
        "must also set 'glob' to \"/\"",
    );
    valid(&with("input:\n  pfs: {repo: a, s3: true}\n"));
}

#[test]
fn input_s3_lazy() {
    error(
        &with("input:\n  pfs: {repo: a, glob: /, s3: true, lazy: true}\n"),
        "input.s3.lazy",
        "input.pfs.lazy",
        "both 's3' and 'lazy'",
    );
}

#[test]
fn input_s3_empty_files() {
    error(
        &with("input:\n  pfs: {repo: a, glob: /, s3: true, empty_files: true}\n"),
        "input.s3.empty_files",
        "input.pfs.empty_files",
        "both 's3' and 'empty_files'",
    );
}

#[test]
fn input_s3_nested() {
    error(
        &with(
            "input:\n  join:\n    - pfs: {repo: a, glob: /, s3: true}\n    - pfs: {repo: b, glob: /}\n",
        ),
        "input.s3.nested",
        "input.join[0].pfs.s3",
        "S3 inputs in join expressions are not supported",
    );
    error(
        &with("input:\n  union:\n    - pfs: {repo: a, glob: /, s3: true}\n"),
        "input.s3.nested",
        "input.union[0].pfs.s3",
        "S3 inputs in union expressions are not supported",
    );
    valid(&with(
        "input:\n  cross:\n    - pfs: {repo: a, glob: /, s3: true}\n    - pfs: {repo: b, glob: /*}\n",
    ));
}

#[test]
fn input_join_on_template() {
    error(
        &with(
            "input:\n  join:\n    - pfs: {repo: a, glob: '/(*)', join_on: '$01'}\n    - pfs: {repo: b, glob: '/(*)', join_on: '$1'}\n",
        ),
        "input.join_on.template",
        "input.join[0].pfs.join_on",
        "group number \"01\" has a leading zero; Pachyderm's worker crashes on it, write $1",
    );
}

#[test]
fn input_group_by_template() {
    error(
        &with("input:\n  group:\n    - pfs: {repo: a, glob: '/(*)', group_by: '${007}'}\n"),
        "input.group_by.template",
        "input.group[0].pfs.group_by",
        "bad group_by template: template \"${007}\", position 0: group number \"007\" has a leading zero",
    );
}

#[test]
fn warning_template_literal_dollar() {
    warning(
        &with("input:\n  group:\n    - pfs: {repo: a, glob: '/(*)', group_by: '${x}'}\n"),
        "input.template.literal",
        "input.group[0].pfs.group_by",
        "Pachyderm keeps it as literal text",
    );
}

#[test]
fn input_trigger_checks() {
    let base = "input:\n  pfs:\n    repo: a\n    glob: /\n    trigger: ";
    error(
        &with(&format!("{base}{{size: huge}}\n")),
        "input.trigger.size",
        "input.pfs.trigger.size",
        "invalid trigger size",
    );
    error(
        &with(&format!("{base}{{rate_limit_spec: often}}\n")),
        "input.trigger.cron",
        "input.pfs.trigger.rate_limit_spec",
        "invalid trigger rate limit spec",
    );
    error(
        &with(&format!("{base}{{cron_spec: '* *'}}\n")),
        "input.trigger.cron",
        "input.pfs.trigger.cron_spec",
        "invalid trigger cron spec",
    );
    error(
        &with(&format!("{base}{{commits: -1}}\n")),
        "input.trigger.commits",
        "input.pfs.trigger.commits",
        "can't trigger on a negative number of commits",
    );
    error(
        &with(&format!("{base}{{branch: 'a b'}}\n")),
        "input.trigger.branch",
        "input.pfs.trigger.branch",
        "branch name \"a b\" is invalid",
    );
    valid(&with(&format!(
        "{base}{{branch: staging, size: 1M, commits: 10}}\n"
    )));
}

// Accepted as in Pachyderm (reference §5 rows 44-46).
#[test]
fn accepted_shapes() {
    valid(&with("input:\n  cross:\n    - pfs: {repo: a, glob: /*}\n"));
    valid(&with(
        "input:\n  join:\n    - pfs: {repo: a, glob: /*}\n    - pfs: {repo: b, glob: /*}\n",
    ));
    valid(&with(
        "input:\n  group:\n    - pfs: {repo: a, glob: '/(*)'}\n",
    ));
}

#[test]
fn warning_image_tag() {
    warning(
        &format!("pipeline: {{name: p}}\ntransform: {{image: python, cmd: [sh]}}\n{PFS}"),
        "transform.image.tag",
        "transform.image",
        "has no tag",
    );
    warning(
        &format!("pipeline: {{name: p}}\ntransform: {{image: 'python:latest', cmd: [sh]}}\n{PFS}"),
        "transform.image.tag",
        "transform.image",
        "uses the `latest` tag",
    );
}

#[test]
fn warning_inert_fields() {
    warning(
        &format!(
            "pipeline: {{name: p}}\ntransform: {{image: 'i:1', cmd: [sh], debug: true}}\n{PFS}"
        ),
        "transform.debug.inert",
        "transform.debug",
        "no effect",
    );
    warning(
        &format!(
            "pipeline: {{name: p}}\ntransform: {{image: 'i:1', cmd: [sh], dockerfile: Dockerfile}}\n{PFS}"
        ),
        "transform.dockerfile.inert",
        "transform.dockerfile",
        "no effect",
    );
}

#[test]
fn warning_secret_unused() {
    warning(
        &format!(
            "pipeline: {{name: p}}\ntransform: {{image: 'i:1', cmd: [sh], secrets: [{{name: s}}]}}\n{PFS}"
        ),
        "transform.secret.unused",
        "transform.secrets[0]",
        "neither `mount_path` nor `env_var`",
    );
}

#[test]
fn warning_lazy_and_empty_files() {
    warning(
        &with("input:\n  pfs: {repo: a, glob: /*, lazy: true, empty_files: true}\n"),
        "input.lazy_empty_files",
        "input.pfs.empty_files",
        "`lazy` wins",
    );
}

#[test]
fn warning_join_on_outside_join() {
    warning(
        &with("input:\n  pfs: {repo: a, glob: '/(*)', join_on: '$1'}\n"),
        "input.join_on.ignored",
        "input.pfs.join_on",
        "no effect outside a join",
    );
    warning(
        &with("input:\n  cross:\n    - pfs: {repo: a, glob: '/(*)', group_by: '$1'}\n"),
        "input.group_by.ignored",
        "input.cross[0].pfs.group_by",
        "no effect outside a group",
    );
}

#[test]
fn warning_template_beyond_captures() {
    warning(
        &with(
            "input:\n  join:\n    - pfs: {repo: a, glob: '/(*)', join_on: '$2'}\n    - pfs: {repo: b, glob: '/(*)', join_on: '$1'}\n",
        ),
        "input.template.group",
        "input.join[0].pfs.join_on",
        "refers to group $2",
    );
}

#[test]
fn warning_no_input_and_negative_tries_and_pod_spec() {
    warning(HEAD, "input.missing", "input", "no input");
    warning(
        &with(&format!("datum_tries: -1\n{PFS}")),
        "datum_tries.negative",
        "datum_tries",
        "negative",
    );
    warning(
        &with(&format!("pod_spec: '{{}}'\n{PFS}")),
        "pod_spec.deprecated",
        "pod_spec",
        "deprecated",
    );
}

#[test]
fn all_errors_are_reported_at_once() {
    let r = report(
        "pipeline: {name: 'bad name'}\ninput:\n  cross:\n    - pfs: {repo: a}\n    - cron: {name: out, spec: nope}\n",
    );
    let codes: Vec<_> = r.errors.iter().map(|d| d.code).collect();
    for code in [
        "pipeline.name.chars",
        "transform.cmd.missing",
        "input.glob.required",
        "input.name.reserved",
        "input.cron.spec",
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
}

#[test]
fn resources_must_be_enforceable_amounts() {
    valid(&with(&format!(
        "{PFS}resource_limits: {{cpu: 0.5, memory: 100M, pids: 64}}\nresource_requests: {{memory: 64Mi}}\n"
    )));
    error(
        &with(&format!("{PFS}resource_limits: {{memory: lots}}\n")),
        "resources.value",
        "resource_limits.memory",
        "expected a memory quantity",
    );
    error(
        &with(&format!("{PFS}resource_limits: {{pids: 0}}\n")),
        "resources.value",
        "resource_limits.pids",
        "process count",
    );
}

/// #13 item 9: every numeric field that sizes something has an upper bound, and the finding
/// names the field and the limit.
#[test]
fn numeric_bounds() {
    error(
        &with(
            "input: {pfs: {repo: r, glob: /*}}\nparallelism_spec: {constant: 18446744073709551615}\n",
        ),
        "limit.exceeded",
        "parallelism_spec.constant",
        "18446744073709551615 is over the limit of 1024",
    );
    valid(&with(
        "input: {pfs: {repo: r, glob: /*}}\nparallelism_spec: {constant: 1024}\n",
    ));
    error(
        &with("input: {pfs: {repo: r, glob: /*}}\ndatum_tries: 9223372036854775807\n"),
        "limit.exceeded",
        "datum_tries",
        "over the limit of 100",
    );
    for (field, v, limit) in [
        ("number", "1000000001", "1000000000"),
        ("per_worker", "1000000001", "1000000000"),
        ("size_bytes", "1125899906842625", "1125899906842624"),
    ] {
        error(
            &with(&format!(
                "input: {{pfs: {{repo: r, glob: /*}}}}\ndatum_set_spec: {{{field}: {v}}}\n"
            )),
            "limit.exceeded",
            &format!("datum_set_spec.{field}"),
            &format!("over the limit of {limit}"),
        );
    }
    error(
        &with("input: {pfs: {repo: r, glob: /*}}\nresource_limits: {cpu: 1e300}\n"),
        "limit.exceeded",
        "resource_limits.cpu",
        "over the limit of 4096",
    );
    error(
        &with("input: {pfs: {repo: r, glob: /*}}\nresource_requests: {cpu: -1}\n"),
        "limit.negative",
        "resource_requests.cpu",
        "cannot be negative",
    );
    error(
        &with(
            "input: {pfs: {repo: r, glob: /*}}\nsidecar_resource_limits: {gpu: {type: g, number: 5000}}\n",
        ),
        "limit.exceeded",
        "sidecar_resource_limits.gpu.number",
        "over the limit of 1024",
    );
    error(
        &with(
            "input: {cross: [{pfs: {repo: r, glob: /*}}, {pfs: {repo: s, glob: /*, trigger: {commits: 2000000000}}}]}\n",
        ),
        "limit.exceeded",
        "input.cross[1].pfs.trigger.commits",
        "over the limit of 1000000000",
    );
}

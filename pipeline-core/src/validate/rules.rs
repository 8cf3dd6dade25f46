//! The store-free rules. Each finding carries a stable `code` (listed in the table of
//! [`crate::validate`]) and the path of the field it is about.

use std::collections::BTreeSet;
use std::fmt::Display;

use crate::error_chain::ErrorChain;
use crate::spec::{
    CronInput, Diagnostic, FieldPath, FileFormatType, Input, InputAt, PfsInput, PipelineSpec,
    RepoType, ReprocessSpec, Resources, SecretMount, Service, ServiceType, Toleration,
    TolerationEffect, Trigger,
};

use super::syntax;

/// Collects findings.
#[derive(Default)]
pub(crate) struct Findings(pub Vec<Diagnostic>);

impl Findings {
    pub(crate) fn error(&mut self, code: &'static str, path: FieldPath, message: impl Display) {
        self.0
            .push(Diagnostic::error(code, path, message.to_string()));
    }
    fn warn(&mut self, code: &'static str, path: FieldPath, message: impl Display) {
        self.0
            .push(Diagnostic::warning(code, path, message.to_string()));
    }
}

fn root() -> FieldPath {
    FieldPath::root()
}

/// A written value, unless absent or empty (Pachyderm reads `""` as unset).
fn nonempty<T: AsRef<str>>(s: &Option<T>) -> Option<&str> {
    s.as_ref().map(AsRef::as_ref).filter(|s| !s.is_empty())
}

/// A written closed-set value outside its set (absent and `""` are not).
fn unknown<T: AsRef<str>>(value: &Option<T>, known: impl Fn(&T) -> bool) -> Option<&str> {
    value
        .as_ref()
        .filter(|v| !known(v))
        .and_then(|_| nonempty(value))
}

/// Every store-free rule on one spec.
pub(crate) fn check(spec: &PipelineSpec, out: &mut Findings) {
    check_pipeline(spec, out);
    check_transform(spec, out);
    check_top_level(spec, out);
    check_service_spout(spec, out);
    check_kubernetes(spec, out);
    check_egress(spec, out);
    check_resources(spec, out);
    super::bounds::check(spec, out);
    if let Some(input) = &spec.input {
        let pipeline = spec
            .pipeline
            .as_ref()
            .map(|p| p.name.as_str())
            .unwrap_or("");
        let path = root().field("input");
        input.for_each(&mut |at| check_input(at, pipeline, out));
        let mut names = BTreeSet::new();
        check_names(input, &path, &mut names, out);
    }
}

fn check_pipeline(spec: &PipelineSpec, out: &mut Findings) {
    let Some(pipeline) = &spec.pipeline else {
        out.error(
            "pipeline.missing",
            root().field("pipeline"),
            "no `pipeline` specified: add `pipeline: {name: ...}`",
        );
        return;
    };
    let path = root().field("pipeline").field("name");
    if pipeline.name.is_empty() {
        out.error("pipeline.name.empty", path, "no pipeline `name` specified");
        return;
    }
    let project = pipeline
        .project
        .as_ref()
        .map(|p| p.name.as_str())
        .filter(|p| !p.is_empty())
        .unwrap_or("default");
    if let Err(e) = syntax::check_name_chars("pipeline", &pipeline.name) {
        out.error("pipeline.name.chars", path, e);
    } else if let Err(e) = syntax::check_pipeline_like_name("pipeline", &pipeline.name) {
        let code = if pipeline.name.len() > syntax::MAX_PIPELINE_NAME {
            "pipeline.name.length"
        } else {
            "pipeline.name.start"
        };
        out.error(code, path, e);
    } else {
        let k8s = format!("{project}-{}-v99", pipeline.name);
        if k8s.len() > syntax::MAX_K8S_NAME {
            out.error(
                "pipeline.name.kubernetes",
                path,
                format!(
                    "Kubernetes name {k8s:?} is {} characters longer than the {} max; shorten the pipeline or project name",
                    k8s.len() - syntax::MAX_K8S_NAME,
                    syntax::MAX_K8S_NAME
                ),
            );
        }
    }
    if let Some(p) = &pipeline.project
        && project != "default"
        && let Err(e) = syntax::check_pipeline_like_name("project", &p.name)
    {
        out.error(
            "pipeline.project.name",
            root().field("pipeline").field("project").field("name"),
            e,
        );
    }
}

fn check_transform(spec: &PipelineSpec, out: &mut Findings) {
    let path = root().field("transform");
    let Some(t) = &spec.transform else {
        out.error(
            "transform.cmd.missing",
            path.field("cmd"),
            "nothing to run: `transform.cmd` is not set (Pachyderm fails the pipeline when its workers start); give the program and its arguments, e.g. [\"python3\", \"/app/main.py\"]",
        );
        return;
    };
    if t.cmd.is_empty() {
        out.error(
            "transform.cmd.missing",
            path.field("cmd"),
            "nothing to run: `transform.cmd` is empty (Pachyderm fails the pipeline when its workers start); give the program and its arguments, e.g. [\"python3\", \"/app/main.py\"]",
        );
    } else if t.cmd.first().is_some_and(String::is_empty) {
        out.error(
            "transform.cmd.program",
            path.field("cmd").index(0),
            "`transform.cmd[0]` is the program to run and cannot be empty",
        );
    }
    if let Some(image) = nonempty(&t.image)
        && let Some(w) = syntax::image_tag_warning(image)
    {
        out.warn("transform.image.tag", path.field("image"), w);
    }
    if t.debug {
        out.warn(
            "transform.debug.inert",
            path.field("debug"),
            "`transform.debug` has no effect in Pachyderm 2.x and is ignored",
        );
    }
    if t.dockerfile.is_some() {
        out.warn(
            "transform.dockerfile.inert",
            path.field("dockerfile"),
            "`transform.dockerfile` has no effect in Pachyderm 2.x and is ignored; build the image yourself",
        );
    }
    for (i, secret) in t.secrets.iter().enumerate() {
        check_secret(secret, &path.field("secrets").index(i), out);
    }
}

fn check_secret(secret: &SecretMount, path: &FieldPath, out: &mut Findings) {
    if secret.name.is_empty() {
        out.error(
            "transform.secret.name",
            path.field("name"),
            "secret must specify a `name`",
        );
    }
    if nonempty(&secret.env_var).is_some() && nonempty(&secret.key).is_none() {
        out.error(
            "transform.secret.key",
            path.field("key"),
            format!(
                "secret {:?} has env_var set but is missing key: name the key of the secret to expose",
                secret.name
            ),
        );
    }
    if nonempty(&secret.env_var).is_none() && nonempty(&secret.mount_path).is_none() {
        out.warn(
            "transform.secret.unused",
            path.clone(),
            format!(
                "secret {:?} sets neither `mount_path` nor `env_var`, so user code cannot see it",
                secret.name
            ),
        );
    }
}

/// `resource_requests` / `resource_limits` must be amounts every backend can enforce.
fn check_resources(spec: &PipelineSpec, out: &mut Findings) {
    let problems = Resources::problems(
        spec.resource_requests.as_ref(),
        spec.resource_limits.as_ref(),
    );
    for p in problems {
        let (side, field) = p.field.split_once('.').unwrap_or((&p.field, ""));
        out.error(
            "resources.value",
            root().field(side).field(field),
            p.message,
        );
    }
}

fn check_top_level(spec: &PipelineSpec, out: &mut Findings) {
    if spec.tf_job.is_some() {
        out.error(
            "tf_job.unsupported",
            root().field("tf_job"),
            "embedding TFJobs in pipelines is not supported",
        );
    }
    if let Some(r) = unknown(&spec.reprocess_spec, ReprocessSpec::is_known) {
        out.error(
            "reprocess_spec.value",
            root().field("reprocess_spec"),
            format!(
                "reprocess_spec {r:?} is invalid: must be one of 'until_success' or 'every_job'"
            ),
        );
    }
    if let Some(b) = nonempty(&spec.output_branch)
        && let Err(e) = syntax::check_name_chars("branch", b)
    {
        out.error("output_branch.name", root().field("output_branch"), e);
    }
    if let Some(tries) = spec.datum_tries
        && tries < 0
    {
        out.warn(
            "datum_tries.negative",
            root().field("datum_tries"),
            format!("datum_tries {tries} is negative; the default (3 attempts) is used"),
        );
    }
    if let Some(d) = &spec.datum_set_spec {
        let zero = |v: Option<i64>| v.unwrap_or(0) == 0;
        if zero(d.number) && zero(d.size_bytes) && zero(d.per_worker) {
            out.error(
                "datum_set_spec.zero",
                root().field("datum_set_spec"),
                "datum_set_spec has number, size_bytes and per_worker all 0, which makes Pachyderm's worker divide by zero; set one of them or remove datum_set_spec",
            );
        }
        for (field, v) in [
            ("number", d.number),
            ("size_bytes", d.size_bytes),
            ("per_worker", d.per_worker),
        ] {
            if v.unwrap_or(0) < 0 {
                out.error(
                    "datum_set_spec.negative",
                    root().field("datum_set_spec").field(field),
                    format!("datum_set_spec.{field} cannot be negative"),
                );
            }
        }
    }
    if spec
        .maximum_expected_uptime
        .is_some_and(|d| !d.as_std().is_zero())
        && !spec.autoscaling
    {
        out.error(
            "maximum_expected_uptime.autoscaling",
            root().field("maximum_expected_uptime"),
            "autoscaling must be true when maximum_expected_uptime is set",
        );
    }
    if spec.input.is_none() && spec.spout.is_none() {
        out.warn(
            "input.missing",
            root().field("input"),
            "the pipeline has no input, so no job can produce datums; add an `input` (or make it a `spout`)",
        );
    }
}

fn check_service(service: &Service, path: &FieldPath, out: &mut Findings) {
    if let Some(t) = unknown(&service.service_type, ServiceType::is_known) {
        out.error(
                "service.type",
                path.field("type"),
                format!("the following service type {t} is not allowed: use ClusterIP, LoadBalancer or NodePort"),
            );
    }
}

fn check_service_spout(spec: &PipelineSpec, out: &mut Findings) {
    if let Some(service) = &spec.service {
        check_service(service, &root().field("service"), out);
        if let Some(p) = &spec.parallelism_spec
            && p.constant != 1
        {
            out.error(
                "service.parallelism",
                root().field("parallelism_spec").field("constant"),
                format!(
                    "services can only be run with a constant parallelism of 1 (found {})",
                    p.constant
                ),
            );
        }
        if spec.spout.is_some() {
            out.error(
                "service.spout",
                root().field("service"),
                "only one of `service` or `spout` can be set (for a spout that serves, use spout.service)",
            );
        }
    }
    if let Some(spout) = &spec.spout {
        if let Some(service) = &spout.service {
            check_service(service, &root().field("spout").field("service"), out);
        }
        if spec.autoscaling {
            out.error(
                "spout.autoscaling",
                root().field("autoscaling"),
                "autoscaling can't be used with spouts (spouts aren't triggered externally)",
            );
        }
        if spout.service.is_none() && spec.input.is_some() {
            out.error(
                "spout.input",
                root().field("input"),
                "spout pipelines (without a service) must not have an input",
            );
        }
    }
    if spec.s3_out && (spec.service.is_some() || spec.spout.is_some()) {
        out.error(
            "s3_out.service_spout",
            root().field("s3_out"),
            "s3 output is not supported in spouts or services",
        );
    }
}

fn check_toleration(t: &Toleration, i: usize, n: usize, out: &mut Findings) {
    let path = root().field("tolerations").index(i);
    match t.operator.as_ref().filter(|op| !op.is_blank()) {
        None => out.error(
            "toleration.operator",
            path.field("operator"),
            format!("toleration {i}/{n}: cannot omit key/value comparison operator; specify EQUAL or EXISTS"),
        ),
        Some(op) if op.is_known() => {}
        Some(op) => out.error(
            "toleration.operator",
            path.field("operator"),
            format!(
                "toleration {i}/{n}: operator {:?} is invalid; specify EQUAL or EXISTS",
                op.as_str()
            ),
        ),
    }
    if let Some(effect) = unknown(&t.effect, TolerationEffect::is_known) {
        out.error(
                "toleration.effect",
                path.field("effect"),
                format!("toleration {i}/{n}: effect {effect:?} is invalid; use ALL_EFFECTS, NO_SCHEDULE, PREFER_NO_SCHEDULE or NO_EXECUTE"),
            );
    }
}

fn check_kubernetes(spec: &PipelineSpec, out: &mut Findings) {
    for (field, value, what) in [
        ("pod_spec", &spec.pod_spec, "PodSpec"),
        ("pod_patch", &spec.pod_patch, "PodPatch"),
    ] {
        if let Some(text) = value
            && let Err(e) = serde_json::from_str::<serde_json::Value>(text)
        {
            out.error(
                if field == "pod_spec" {
                    "pod_spec.json"
                } else {
                    "pod_patch.json"
                },
                root().field(field),
                format!("malformed {what}: {field} must be a JSON document ({e})"),
            );
        }
    }
    if spec.pod_spec.is_some() {
        out.warn(
            "pod_spec.deprecated",
            root().field("pod_spec"),
            "`pod_spec` is deprecated; use `pod_patch` (an RFC 6902 JSON patch)",
        );
    }
    let n = spec.tolerations.len();
    for (i, t) in spec.tolerations.iter().enumerate() {
        check_toleration(t, i, n, out);
    }
}

fn check_egress(spec: &PipelineSpec, out: &mut Findings) {
    let Some(egress) = &spec.egress else { return };
    let path = root().field("egress");
    if let Some(sql) = &egress.sql_database {
        let sql_path = path.field("sql_database");
        match &sql.secret {
            None => out.error(
                "egress.sql.secret",
                sql_path.field("secret"),
                "egress.sql_database.secret is required",
            ),
            Some(secret) if secret.name.is_empty() || secret.key.is_empty() => out.error(
                "egress.sql.secret",
                sql_path.field("secret").field(if secret.name.is_empty() {
                    "name"
                } else {
                    "key"
                }),
                "egress.sql_database.secret.name and egress.sql_database.secret.key are required",
            ),
            Some(_) => {}
        }
        if let Some(t) = sql
            .file_format
            .as_ref()
            .and_then(|f| unknown(&f.format_type, FileFormatType::is_known))
        {
            out.error(
                "egress.sql.format",
                sql_path.field("file_format").field("type"),
                format!("file format {t:?} is invalid; use CSV, JSON or PARQUET"),
            );
        }
    }
}

fn input_kinds(input: &Input) -> Vec<&'static str> {
    [
        ("pfs", input.pfs.is_some()),
        ("cross", input.cross.is_some()),
        ("union", input.union.is_some()),
        ("join", input.join.is_some()),
        ("group", input.group.is_some()),
        ("cron", input.cron.is_some()),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(k, _)| k)
    .collect()
}

/// The rules of one input of the tree (called for every input by [`Input::for_each`]).
fn check_input(at: InputAt<'_>, pipeline: &str, out: &mut Findings) {
    let (input, path) = (at.input, at.path);
    let kinds = input_kinds(input);
    if kinds.is_empty() {
        out.error(
            "input.none",
            path.clone(),
            "no input set: an input needs exactly one of pfs, cross, union, join, group or cron",
        );
        return;
    }
    if kinds.len() > 1 {
        out.error(
            "input.multiple",
            path.clone(),
            format!(
                "multiple input types set ({}): an input needs exactly one; wrap several in cross, union, join or group",
                kinds.join(", ")
            ),
        );
    }
    if let Some(pfs) = &input.pfs {
        check_pfs(pfs, &path.field("pfs"), &at, out);
    }
    if let Some(cron) = &input.cron {
        check_cron(cron, &path.field("cron"), pipeline, out);
    }
    for (kind, children) in input.children() {
        if children.is_empty() {
            out.error(
                "input.none",
                path.field(kind),
                format!("no input set: `{kind}` needs at least one child input"),
            );
        }
    }
}

fn check_cron(cron: &CronInput, cpath: &FieldPath, pipeline: &str, out: &mut Findings) {
    match nonempty(&cron.name) {
        None => out.error(
            "input.cron.name",
            cpath.field("name"),
            "input must specify a name: cron inputs have no default name",
        ),
        Some(name) => {
            check_input_name(name, &cpath.field("name"), out);
            if nonempty(&cron.repo).is_none()
                && !pipeline.is_empty()
                && let Err(e) = syntax::check_name_chars("repo", &format!("{pipeline}_{name}"))
            {
                out.error(
                    "input.cron.repo",
                    cpath.field("name"),
                    format!("the cron repo defaults to <pipeline>_<name>, which is invalid: {e}"),
                );
            }
        }
    }
    match nonempty(&cron.spec) {
        None => out.error(
            "input.cron.spec",
            cpath.field("spec"),
            "error parsing cron-spec: empty spec string; use e.g. \"@every 1m\" or \"0 * * * *\"",
        ),
        Some(s) => {
            if let Err(e) = syntax::check_cron(s) {
                out.error(
                    "input.cron.spec",
                    cpath.field("spec"),
                    format!("error parsing cron-spec: {}", ErrorChain(&e)),
                );
            }
        }
    }
    if let Some(repo) = nonempty(&cron.repo)
        && let Err(e) = syntax::check_name_chars("repo", repo)
    {
        out.error("input.cron.repo", cpath.field("repo"), e);
    }
    if let Some(start) = nonempty(&cron.start)
        && let Err(e) = syntax::check_rfc3339(start)
    {
        out.error("input.cron.start", cpath.field("start"), e);
    }
}

fn check_input_name(name: &str, path: &FieldPath, out: &mut Findings) {
    if name == "out" || name == ".env" {
        out.error(
            "input.name.reserved",
            path.clone(),
            format!(
                "input cannot be named {name}: `/pfs/{name}` is reserved; set a different `name`"
            ),
        );
    } else if name.contains('/') || name == "." || name == ".." || name.contains('\0') {
        out.error(
            "input.name.path",
            path.clone(),
            format!("input name {name:?} cannot contain `/` or be `.`/`..`: it is a directory under /pfs"),
        );
    }
}

fn check_pfs(pfs: &PfsInput, path: &FieldPath, at: &InputAt<'_>, out: &mut Findings) {
    check_pfs_source(pfs, path, out);
    let compiled = check_pfs_glob(pfs, path, out);
    check_pfs_templates(pfs, path, compiled.as_ref(), at, out);
    check_pfs_s3(pfs, path, at, out);
    if let Some(trigger) = &pfs.trigger {
        check_trigger(trigger, &path.field("trigger"), out);
    }
}

/// `repo`, `name`, `project`, `repo_type`, `branch` and `commit` of a pfs input.
fn check_pfs_source(pfs: &PfsInput, path: &FieldPath, out: &mut Findings) {
    let name_written = nonempty(&pfs.name).is_some();
    match (nonempty(&pfs.repo), nonempty(&pfs.name)) {
        (None, _) => out.error(
            "input.repo.required",
            path.field("repo"),
            "input must specify a repo",
        ),
        (Some(repo), _) => {
            if let Err(e) = syntax::check_name_chars("repo", repo) {
                out.error("input.repo.name", path.field("repo"), e);
            }
        }
    }
    if let Some(name) = nonempty(&pfs.name).or(nonempty(&pfs.repo)) {
        let name_path = path.field(if name_written { "name" } else { "repo" });
        check_input_name(name, &name_path, out);
    }
    if let Some(project) = nonempty(&pfs.project)
        && project != "default"
        && let Err(e) = syntax::check_pipeline_like_name("project", project)
    {
        out.error("input.project.name", path.field("project"), e);
    }
    if let Some(t) = unknown(&pfs.repo_type, RepoType::is_known) {
        out.error(
            "input.repo_type",
            path.field("repo_type"),
            format!("repo_type {t:?} is invalid; use user, meta or spec"),
        );
    }
    if let Some(b) = nonempty(&pfs.branch)
        && let Err(e) = syntax::check_name_chars("branch", b)
    {
        out.error("input.branch.name", path.field("branch"), e);
    }
    if nonempty(&pfs.commit).is_some() {
        out.error(
            "input.commit",
            path.field("commit"),
            "input cannot come from a commit; use a branch with head pointing to the commit",
        );
    }
}

/// The glob of a pfs input; returns it compiled when it is valid.
fn check_pfs_glob(
    pfs: &PfsInput,
    path: &FieldPath,
    out: &mut Findings,
) -> Option<crate::glob::Glob> {
    let mut compiled = None;
    match pfs.glob.as_deref() {
        None if !pfs.s3 => out.error(
            "input.glob.required",
            path.field("glob"),
            "input must specify a glob (e.g. \"/*\" for one datum per top-level file, \"/\" for the whole repo)",
        ),
        Some(glob) => {
            if pfs.s3 && crate::spec::normalize_glob(glob) != "/" {
                out.error(
                    "input.s3.glob",
                    path.field("glob"),
                    format!("inputs that set 's3' to 'true' must also set 'glob' to \"/\" (found {glob:?}), as the S3 gateway serves the whole commit"),
                );
            }
            match super::glob_check::check_glob(glob) {
                Ok(g) => compiled = Some(g),
                Err(e) => out.error("input.glob.syntax", path.field("glob"), e),
            }
        }
        None => {}
    }
    compiled
}

/// `join_on` and `group_by`: their templates, and whether an enclosing join/group uses them.
fn check_pfs_templates(
    pfs: &PfsInput,
    path: &FieldPath,
    compiled: Option<&crate::glob::Glob>,
    at: &InputAt<'_>,
    out: &mut Findings,
) {
    for (field, value) in [("join_on", &pfs.join_on), ("group_by", &pfs.group_by)] {
        let Some(t) = nonempty(value) else { continue };
        match super::glob_check::check_template(t) {
            Err(e) => out.error(
                if field == "join_on" {
                    "input.join_on.template"
                } else {
                    "input.group_by.template"
                },
                path.field(field),
                format!("bad {field} template: {e}"),
            ),
            Ok(template) => {
                if let Err(e) = syntax::check_template(t) {
                    out.warn(
                        "input.template.literal",
                        path.field(field),
                        format!("{e}; Pachyderm keeps it as literal text"),
                    );
                }
                if let Some(w) =
                    compiled.and_then(|g| super::glob_check::template_beyond_captures(g, &template))
                {
                    out.warn("input.template.group", path.field(field), w);
                }
            }
        }
    }
    if nonempty(&pfs.join_on).is_some() && !at.is_inside("join") {
        out.warn(
            "input.join_on.ignored",
            path.field("join_on"),
            "join_on has no effect outside a join (it is only exported as PACH_DATUM_<name>_JOIN_ON)",
        );
    }
    if nonempty(&pfs.group_by).is_some() && !at.is_inside("group") {
        out.warn(
            "input.group_by.ignored",
            path.field("group_by"),
            "group_by has no effect outside a group (it is only exported as PACH_DATUM_<name>_GROUP_BY)",
        );
    }
}

/// `s3` with `lazy`/`empty_files` and inside compound inputs; `lazy` with `empty_files`.
fn check_pfs_s3(pfs: &PfsInput, path: &FieldPath, at: &InputAt<'_>, out: &mut Findings) {
    if pfs.s3 {
        if pfs.lazy {
            out.error(
                "input.s3.lazy",
                path.field("lazy"),
                "input cannot specify both 's3' and 'lazy': s3 inputs are not downloaded at all",
            );
        }
        if pfs.empty_files {
            out.error(
                "input.s3.empty_files",
                path.field("empty_files"),
                "input cannot specify both 's3' and 'empty_files': s3 inputs are not downloaded at all",
            );
        }
        let nested = ["join", "group", "union"]
            .into_iter()
            .find(|kind| at.is_inside(kind));
        if let Some(kind) = nested {
            out.error(
                "input.s3.nested",
                path.field("s3"),
                format!(
                    "S3 inputs in {kind} expressions are not supported (s3 inputs may be crossed)"
                ),
            );
        }
    } else if pfs.lazy && pfs.empty_files {
        out.warn(
            "input.lazy_empty_files",
            path.field("empty_files"),
            "both `lazy` and `empty_files` are set; `lazy` wins and `empty_files` is ignored",
        );
    }
}

/// `input.pfs.trigger`.
fn check_trigger(trigger: &Trigger, tpath: &FieldPath, out: &mut Findings) {
    if let Some(b) = nonempty(&trigger.branch)
        && let Err(e) = syntax::check_name_chars("branch", b)
    {
        out.error("input.trigger.branch", tpath.field("branch"), e);
    }
    if let Some(size) = nonempty(&trigger.size)
        && let Err(e) = syntax::check_human_size(size)
    {
        out.error("input.trigger.size", tpath.field("size"), e);
    }
    for (field, value) in [
        ("rate_limit_spec", &trigger.rate_limit_spec),
        ("cron_spec", &trigger.cron_spec),
    ] {
        if let Some(s) = nonempty(value)
            && let Err(e) = syntax::check_cron(s)
        {
            out.error(
                "input.trigger.cron",
                tpath.field(field),
                format!(
                    "invalid trigger {}: {}",
                    field.replace('_', " "),
                    ErrorChain(&e)
                ),
            );
        }
    }
    if trigger.commits.is_some_and(|c| c < 0) {
        out.error(
            "input.trigger.commits",
            tpath.field("commits"),
            "can't trigger on a negative number of commits",
        );
    }
}

/// Pachyderm's `ValidateNames`: names are unique across a cross/join/group subtree and the top
/// level; union children may share names, but every name a union holds counts against inputs
/// outside it.
fn check_names(input: &Input, path: &FieldPath, names: &mut BTreeSet<String>, out: &mut Findings) {
    let mut claim = |name: Option<&str>, name_path: FieldPath, names: &mut BTreeSet<String>| {
        if let Some(name) = name
            && !names.insert(name.to_string())
        {
            out.error(
                    "input.name.duplicate",
                    name_path,
                    format!(
                        "name {name:?} was used more than once: inputs that are crossed, joined or grouped need distinct names (set `name`)"
                    ),
                );
        }
    };
    if let Some(pfs) = &input.pfs {
        let written = nonempty(&pfs.name);
        let field = if written.is_some() { "name" } else { "repo" };
        claim(
            written.or(nonempty(&pfs.repo)),
            path.field("pfs").field(field),
            names,
        );
    } else if let Some(cron) = &input.cron {
        claim(
            nonempty(&cron.name),
            path.field("cron").field("name"),
            names,
        );
    } else if let Some(children) = &input.union {
        let mut union_names = BTreeSet::new();
        for (i, child) in children.iter().enumerate() {
            let mut copy = names.clone();
            check_names(child, &path.field("union").index(i), &mut copy, out);
            union_names.extend(copy);
        }
        names.extend(union_names);
    } else {
        for (kind, children) in [
            ("cross", &input.cross),
            ("join", &input.join),
            ("group", &input.group),
        ] {
            if let Some(children) = children {
                for (i, child) in children.iter().enumerate() {
                    check_names(child, &path.field(kind).index(i), names, out);
                }
            }
        }
    }
}

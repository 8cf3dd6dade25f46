//! Cluster and project defaults in the engine: merged under every spec at create (a spec
//! field beats a project default beats a cluster default), stored with the version as its
//! effective spec, used by jobs, left alone by later changes of the defaults until an update
//! or a `regenerate`, and refused when they would make a spec invalid.

mod pps_common;

use pipeline_core::pps::{
    DefaultsScope, JobState, PipelineInfo, PpsError, SetDefaultsOptions, pool_spec,
};
use pipeline_core::spec::{PipelineDefaults, parse_defaults, parse_str};
use pps_common::{Env, env};

fn defaults(text: &str) -> PipelineDefaults {
    parse_defaults(text, "defaults.yaml").unwrap_or_else(|e| panic!("{e}"))
}

fn set(e: &Env, scope: &DefaultsScope, text: &str) {
    e.engine
        .set_defaults(scope, &defaults(text), SetDefaultsOptions::default())
        .unwrap();
}

fn project(name: &str) -> DefaultsScope {
    DefaultsScope::Project(name.to_string())
}

const CLUSTER: &str = "create_pipeline_request:\n  datum_tries: 2\n  parallelism_spec: {constant: 3}\n  resource_requests: {cpu: 0.5, memory: 64M}\n  transform: {env: {FROM: cluster, LEVEL: cluster}}\n";

/// A pipeline whose user code fails on every attempt (so `datum_tries` is visible).
const FAILS: &str = "pipeline: {name: fails}\ntransform: {cmd: [sh, -c, 'exit 3']}\ninput: {pfs: {repo: in, glob: /*}}\n";

#[test]
fn cluster_defaults_reach_the_stored_effective_spec_and_the_job() {
    let e = env();
    e.repo("in");
    e.commit("in", &[], &[("/a", "a")]);
    set(&e, &DefaultsScope::Cluster, CLUSTER);
    let info = e.create(FAILS);
    let eff = &info.effective;
    assert_eq!(eff.datum_tries, 2);
    assert_eq!(eff.workers(), 3);
    let requests = eff.resource_requests.as_ref().expect("requests defaulted");
    assert_eq!(requests.cpu, Some(0.5));
    assert_eq!(requests.memory.as_deref(), Some("64M"));
    assert_eq!(eff.transform.env["FROM"], "cluster");
    // The spec as written is kept apart from its effective form.
    assert_eq!(info.spec.datum_tries, None);
    assert!(info.user_spec_json.is_some());
    // Stored: the record read back, every version, and the workers' pool.
    let stored = e.engine.inspect_pipeline("fails").unwrap();
    assert_eq!(stored.effective, info.effective);
    assert_eq!(
        e.engine.pipeline_version("fails", 1).unwrap().effective,
        info.effective
    );
    let pool = pool_spec(&stored, &Default::default());
    assert_eq!(pool.workers, 3);
    assert_eq!(pool.spec.datum_tries, 2);
    // The job ran each datum twice, as the cluster default says.
    let job = &e.run()[0];
    assert_eq!(job.state, JobState::JobFailure);
    let datums = e.engine.list_datums("fails", &job.id).unwrap();
    assert_eq!(datums.len(), 1);
    assert_eq!(datums[0].attempts, 2);
}

#[test]
fn a_spec_field_beats_a_project_default_beats_a_cluster_default() {
    let e = env();
    e.repo("in");
    set(&e, &DefaultsScope::Cluster, CLUSTER);
    set(
        &e,
        &project("default"),
        "createPipelineRequest:\n  datumTries: 4\n  resourceRequests: {memory: 128M}\n  transform: {env: {LEVEL: project}}\n  resource_limits: {memory: 1G}\n",
    );
    let info = e.create(
        "pipeline: {name: mine}\ntransform:\n  cmd: [sh]\n  env: {MINE: spec}\nparallelism_spec: {constant: 1}\nresource_limits: null\ninput: {pfs: {repo: in, glob: /*}}\n",
    );
    let eff = &info.effective;
    assert_eq!(eff.datum_tries, 4, "project beats cluster");
    assert_eq!(eff.workers(), 1, "spec beats cluster");
    let requests = eff.resource_requests.as_ref().unwrap();
    assert_eq!(requests.cpu, Some(0.5), "objects merge field by field");
    assert_eq!(requests.memory.as_deref(), Some("128M"));
    let env: Vec<_> = eff
        .transform
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert_eq!(env, ["FROM=cluster", "LEVEL=project", "MINE=spec"]);
    assert_eq!(
        eff.resource_limits, None,
        "the spec's null removes a default"
    );
    // Built-in defaults still fill what nobody set.
    assert_eq!(eff.output_branch, "master");
    assert_eq!(eff.image(), "ubuntu:20.04");
    // Another project's defaults do not apply.
    e.engine
        .delete_defaults(&project("default"), Default::default())
        .unwrap();
    let missing = e
        .engine
        .set_defaults(
            &project("other"),
            &defaults(CLUSTER),
            SetDefaultsOptions::default(),
        )
        .unwrap_err();
    assert!(
        missing.to_string().contains("project other not found"),
        "{missing}"
    );
    e.engine.store().create_project("other", "").unwrap();
    set(
        &e,
        &project("other"),
        "create_pipeline_request: {datum_tries: 9}\n",
    );
    let parsed = parse_str(
        "pipeline: {name: mine}\ntransform: {cmd: [sh]}\ninput: {pfs: {repo: in, glob: /*}}\n",
        "p.yaml",
    )
    .unwrap();
    let merged = e.engine.apply_defaults(&parsed[0]).unwrap();
    assert_eq!(merged.spec.datum_tries, Some(2));
}

#[test]
fn inspect_and_delete_defaults() {
    let e = env();
    let none = e.engine.defaults(&DefaultsScope::Cluster).unwrap();
    assert!(none.defaults.is_empty());
    assert_eq!(serde_json::to_string(&none.defaults).unwrap(), "{}");
    assert_eq!(none.updated_ms, None);
    set(&e, &DefaultsScope::Cluster, CLUSTER);
    let got = e.engine.defaults(&DefaultsScope::Cluster).unwrap();
    assert_eq!(got.defaults, defaults(CLUSTER));
    assert!(got.updated_ms.is_some());
    assert!(
        e.engine
            .defaults(&project("default"))
            .unwrap()
            .defaults
            .is_empty()
    );
    e.engine
        .delete_defaults(&DefaultsScope::Cluster, Default::default())
        .unwrap();
    assert!(
        e.engine
            .defaults(&DefaultsScope::Cluster)
            .unwrap()
            .defaults
            .is_empty()
    );
    let bad = e.engine.defaults(&project("no/such")).unwrap_err();
    assert!(bad.to_string().contains("no/such"), "{bad}");
    let bad = e
        .engine
        .set_defaults(&project(""), &defaults(CLUSTER), Default::default())
        .unwrap_err();
    assert!(matches!(bad, PpsError::Store(_)), "{bad}");
}

#[test]
fn changed_defaults_wait_for_an_update_or_a_regenerate() {
    let e = env();
    e.repo("in");
    set(&e, &DefaultsScope::Cluster, CLUSTER);
    let spec = "pipeline: {name: p}\ntransform: {cmd: [sh, -c, 'true']}\ninput: {pfs: {repo: in, glob: /*}}\n";
    let v1 = e.create(spec);
    let five = defaults("create_pipeline_request: {datum_tries: 5}\n");
    e.engine
        .set_defaults(
            &DefaultsScope::Cluster,
            &five,
            SetDefaultsOptions::default(),
        )
        .unwrap();
    let still: PipelineInfo = e.engine.inspect_pipeline("p").unwrap();
    assert_eq!(still.version, 1);
    assert_eq!(still.effective.datum_tries, 2);
    // A pipeline whose spec sets what the defaults change is not affected by them.
    let untouched = e.create(
        "pipeline: {name: q}\ntransform: {cmd: [sh]}\ndatum_tries: 7\ninput: {pfs: {repo: in, glob: /*}}\n",
    );
    // A dry run lists what would change and writes nothing.
    let dry = SetDefaultsOptions {
        regenerate: true,
        dry_run: true,
        ..Default::default()
    };
    let six = defaults("create_pipeline_request: {datum_tries: 6}\n");
    let change = e
        .engine
        .set_defaults(&DefaultsScope::Cluster, &six, dry)
        .unwrap();
    assert_eq!(change.affected_pipelines, ["p"]);
    assert!(change.dry_run);
    assert_eq!(
        e.engine.defaults(&DefaultsScope::Cluster).unwrap().defaults,
        five
    );
    // Regenerate: only the pipeline whose effective spec changes gets a new version.
    let regenerate = SetDefaultsOptions {
        regenerate: true,
        ..Default::default()
    };
    let change = e
        .engine
        .set_defaults(&DefaultsScope::Cluster, &six, regenerate)
        .unwrap();
    assert_eq!(change.affected_pipelines, ["p"]);
    let v2 = e.engine.inspect_pipeline("p").unwrap();
    assert_eq!((v2.version, v2.effective.datum_tries), (2, 6));
    assert_eq!(v2.salt, v1.salt, "no reprocess: the salt is kept");
    assert_eq!(
        e.engine.inspect_pipeline("q").unwrap().version,
        untouched.version
    );
    // Reprocess implies regenerate and takes a new salt.
    let reprocess = SetDefaultsOptions {
        reprocess: true,
        ..Default::default()
    };
    let change = e
        .engine
        .delete_defaults(&DefaultsScope::Cluster, reprocess)
        .unwrap();
    assert_eq!(change.affected_pipelines, ["p"]);
    let v3 = e.engine.inspect_pipeline("p").unwrap();
    assert_eq!((v3.version, v3.effective.datum_tries), (3, 3));
    assert_ne!(v3.salt, v1.salt);
    // An update takes the defaults in force.
    set(
        &e,
        &DefaultsScope::Cluster,
        "create_pipeline_request: {datum_tries: 8}\n",
    );
    let parsed = parse_str(spec, "p.yaml").unwrap();
    let opts = pipeline_core::pps::CreateOptions {
        update: true,
        ..Default::default()
    };
    let v4 = e.engine.create_pipelines(&parsed, &opts).unwrap().remove(0);
    assert_eq!((v4.version, v4.effective.datum_tries), (4, 8));
    // A rerun keeps the version's effective spec.
    set(
        &e,
        &DefaultsScope::Cluster,
        "create_pipeline_request: {datum_tries: 9}\n",
    );
    let v5 = e
        .engine
        .rerun_pipeline("p", pipeline_core::pps::RerunMode::All)
        .unwrap();
    assert_eq!(v5.effective.datum_tries, 8);
}

#[test]
fn defaults_that_make_a_spec_invalid_are_refused_with_paths() {
    let e = env();
    e.repo("in");
    // A default that is valid alone but breaks a spec: the error names the field (the spec's)
    // and the pipeline, and nothing is created.
    set(
        &e,
        &DefaultsScope::Cluster,
        "create_pipeline_request:\n  transform: {cmd: [sh]}\n  spout: {}\n",
    );
    let parsed = parse_str(
        "pipeline: {name: p}\ninput: {pfs: {repo: in, glob: /*}}\n",
        "p.yaml",
    )
    .unwrap();
    let err = e
        .engine
        .create_pipelines(&parsed, &Default::default())
        .unwrap_err();
    let PpsError::InvalidSpec {
        pipeline,
        diagnostics,
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(pipeline, "p");
    assert_eq!(diagnostics[0].code, "spout.input", "{err}");
    assert_eq!(diagnostics[0].path.to_string(), "input", "{err}");
    assert_eq!(diagnostics[0].location.line, 2, "{err}");
    assert!(e.engine.inspect_pipeline("p").is_err());
    // The spec can remove the default, and the cmd comes from the defaults.
    let parsed = parse_str(
        "pipeline: {name: p}\nspout: null\ninput: {pfs: {repo: in, glob: /*}}\n",
        "p.yaml",
    )
    .unwrap();
    let info = e
        .engine
        .create_pipelines(&parsed, &Default::default())
        .unwrap()
        .remove(0);
    assert_eq!(info.effective.transform.cmd, ["sh"]);
    assert!(info.effective.spout.is_none());
    set(
        &e,
        &DefaultsScope::Cluster,
        "create_pipeline_request:\n  transform: {cmd: [sh]}\n",
    );
    e.create("pipeline: {name: r}\ninput: {pfs: {repo: in, glob: /*}}\n");
    // A regenerate that would break a pipeline writes nothing at all.
    let breaking = defaults("create_pipeline_request:\n  transform: {cmd: [sh]}\n  spout: {}\n");
    let regenerate = SetDefaultsOptions {
        regenerate: true,
        ..Default::default()
    };
    let before = e.engine.defaults(&DefaultsScope::Cluster).unwrap();
    let err = e
        .engine
        .set_defaults(&DefaultsScope::Cluster, &breaking, regenerate)
        .unwrap_err();
    assert!(err.to_string().contains("\"r\""), "{err}");
    assert_eq!(e.engine.defaults(&DefaultsScope::Cluster).unwrap(), before);
    assert_eq!(e.engine.inspect_pipeline("p").unwrap().version, 1);
    assert_eq!(e.engine.inspect_pipeline("r").unwrap().version, 1);
}

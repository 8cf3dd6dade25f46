//! Pipelines with `s3: true` inputs or `s3_out` need a job gateway
//! (`EngineBuilder::job_gateways`; pipectl installs the S3 gateway of `pipeline_server`,
//! whose tests run such pipelines end to end). An engine without one refuses them at
//! create, saying so, and creates nothing.

mod pps_common;

use pipeline_core::pps::{CreateOptions, PpsError};
use pps_common::env;

#[test]
fn an_engine_without_job_gateways_refuses_s3_pipelines_at_create() {
    let e = env();
    e.repo("in");
    for (name, spec) in [
        ("s3in", "input: {pfs: {repo: in, glob: /, s3: true}}\n"),
        (
            "s3out",
            "input: {pfs: {repo: in, glob: /*}}\ns3_out: true\n",
        ),
    ] {
        let yaml = format!("pipeline: {{name: {name}}}\ntransform: {{cmd: [sh]}}\n{spec}");
        let parsed = pipeline_core::spec::parse_str(&yaml, "p.yaml").unwrap();
        let err = e
            .engine
            .create_pipelines(&parsed, &CreateOptions::default())
            .unwrap_err();
        assert!(
            matches!(&err, PpsError::NoJobGateway { pipeline } if pipeline == name),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("EngineBuilder::job_gateways"),
            "{err}"
        );
        assert!(
            e.engine.inspect_pipeline(name).is_err(),
            "{name} was created"
        );
    }
}

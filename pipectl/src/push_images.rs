//! `create|update pipeline --push-images`: each spec's local image is tagged with a
//! content-derived tag, pushed to a registry, and the spec sent with the pushed reference, as
//! pachctl does. The server then pins that reference to the digest the registry stored.

use std::io::Read;

use clap::Args;
use executor_docker::{DockerConfig, DockerExecutor, RegistryAuth};
use pipeline_core::executor::SecretValue;

use crate::error::{CliError, Res};

/// Docker Hub, pachctl's default registry.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// The `--push-images` options of `create|update pipeline`.
#[derive(Debug, Clone, Default, Args)]
pub struct PushArgs {
    /// Tag each pipeline's local image with a content-derived tag, push it to the registry
    /// and create the pipeline with the pushed reference.
    #[arg(long)]
    pub push_images: bool,
    /// Registry to push to, as HOST or HOST:PORT (default: docker.io).
    #[arg(long, requires = "push_images")]
    pub registry: Option<String>,
    /// Registry user name.
    #[arg(long, short = 'u', requires = "push_images")]
    pub username: Option<String>,
    /// Read the registry password from stdin (it is never taken as an argument).
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
}

/// What a push changed: the spec text to send and a line per pushed image for the user.
pub struct Pushed {
    /// The specs as JSON, each image replaced by its pushed reference.
    pub spec: String,
    /// `image -> pushed reference (digest)` lines.
    pub report: Vec<String>,
}

/// Pushes the image of every pipeline in `spec` (parsed from `source_name`) and returns the
/// specs with the pushed references. `spec_from_stdin`: the spec itself came from stdin, so
/// the password cannot.
pub fn push_spec_images(
    spec: &str,
    source_name: &str,
    args: &PushArgs,
    spec_from_stdin: bool,
) -> Res<Pushed> {
    if args.password_stdin && spec_from_stdin {
        return Err(CliError::BadArgs(
            "--password-stdin and -f - both read stdin: give the spec as a file".into(),
        ));
    }
    let auth = credentials(args)?;
    let registry = args.registry.as_deref().unwrap_or(DEFAULT_REGISTRY);
    let mut parsed = pipeline_core::spec::parse_str(spec, source_name)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let docker = rt.block_on(
        DockerExecutor::builder()
            .config(DockerConfig {
                owner: "pipectl-push".into(),
                remove_leftovers_on_connect: false,
                ..DockerConfig::default()
            })
            .build(),
    )?;
    let mut report = Vec::new();
    for p in &mut parsed {
        let Some(t) = p.spec.transform.as_mut() else {
            continue;
        };
        let Some(image) = t.image.clone() else {
            continue;
        };
        let pushed = rt
            .block_on(docker.push_image(&image, registry, auth.as_ref()))
            .map_err(|e| CliError::Usage(format!("--push-images: {e}")))?;
        report.push(format!(
            "pushed {image} as {} ({})",
            pushed.reference, pushed.digest
        ));
        t.image = Some(pushed.reference);
    }
    let specs: Vec<_> = parsed.into_iter().map(|p| p.spec).collect();
    let spec = serde_json::to_string_pretty(&specs)
        .map_err(|e| CliError::Usage(format!("writing the pushed spec: {e}")))?;
    Ok(Pushed { spec, report })
}

/// The registry credentials of `args`: the user name, and the password read from stdin
/// (one line, the newline dropped).
fn credentials(args: &PushArgs) -> Res<Option<RegistryAuth>> {
    let Some(username) = args.username.clone() else {
        return Ok(None);
    };
    if !args.password_stdin {
        return Err(CliError::BadArgs(
            "--username needs --password-stdin (the password is never an argument)".into(),
        ));
    }
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .map_err(|source| CliError::Io {
            path: "-".into(),
            source,
        })?;
    let password = password.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(CliError::BadArgs(
            "--password-stdin: stdin was empty".into(),
        ));
    }
    Ok(Some(RegistryAuth {
        username,
        password: SecretValue(password.into_bytes()),
        server_address: args.registry.clone(),
    }))
}

#[cfg(test)]
mod tests {
    /// The pushed spec is JSON that parses back to the same specs (the server reads it as it
    /// reads any spec file).
    #[test]
    fn specs_round_trip_through_json() {
        let text = "pipeline: {name: edges}\ndescription: d\ntransform:\n  image: x:1\n  cmd: [sh, -c, 'echo $a']\n  env: {A: b}\nparallelism_spec: {constant: 2}\ninput:\n  cross:\n  - pfs: {repo: a, glob: /*}\n  - pfs: {repo: b, glob: /, lazy: true}\n---\npipeline: {name: two}\ntransform: {cmd: ['true']}\ninput: {pfs: {repo: edges, glob: /*}}\n";
        let parsed = pipeline_core::spec::parse_str(text, "x.yaml").unwrap();
        let specs: Vec<_> = parsed.iter().map(|p| p.spec.clone()).collect();
        let json = serde_json::to_string_pretty(&specs).unwrap();
        let back = pipeline_core::spec::parse_str(&json, "x.json").unwrap();
        let back: Vec<_> = back.into_iter().map(|p| p.spec).collect();
        assert_eq!(back, specs);
        for p in pipeline_core::spec::parse_str(&json, "x.json").unwrap() {
            assert!(pipeline_core::validate::validate(&p).is_valid(), "{json}");
        }
    }
}

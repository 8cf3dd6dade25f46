//! Images: making sure a pipeline's image is on the daemon (pulling per the pull policy) and
//! pinning it when a pipeline is created or updated: its content digest, and proof that it
//! can run the workers' `sh`.

use std::collections::HashMap;
use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateImageOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
    WaitContainerOptions,
};
use futures::StreamExt;
use pipeline_core::executor::{ExecutorError, PinnedImage};
use pipeline_core::spec::EffectiveSpec;

use crate::config::{DockerConfig, PullPolicy};
use crate::container::{BACKEND, Inner, backend_err, is_status, labels};

/// How long the `sh` check of an image may take (create, start, wait).
const SHELL_CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// Makes sure `image` is present, pulling per the pull policy within
/// [`DockerConfig::pull_timeout`]. A local image ID (`sha256:…`) cannot be pulled and a
/// present digest reference (`repo@sha256:…`) cannot change, so neither is pulled again.
pub(crate) async fn ensure_image(
    inner: &Inner,
    spec: &EffectiveSpec,
    image: &str,
) -> Result<(), ExecutorError> {
    let docker = &inner.docker;
    let config = &inner.config;
    let present = match docker.inspect_image(image).await {
        Ok(_) => true,
        Err(e) if is_status(&e, 404) => false,
        Err(e) => return Err(backend_err(format!("inspecting image {image:?}"), e)),
    };
    let immutable = image.starts_with("sha256:") || image.contains('@');
    let pull = match config.pull_policy {
        PullPolicy::Always => !(present && immutable),
        PullPolicy::IfNotPresent => !present,
        PullPolicy::Never => false,
    };
    if !pull {
        return if present {
            Ok(())
        } else {
            Err(ExecutorError::ImageNotFound {
                image: image.to_string(),
                message: if config.pull_policy == PullPolicy::Never {
                    "absent from the daemon and the pull policy is Never".to_string()
                } else {
                    "absent from the daemon".to_string()
                },
            })
        };
    }
    pull_image(inner, spec, image).await
}

/// Pulls `image` with the spec's pull credentials within the pull timeout.
async fn pull_image(inner: &Inner, spec: &EffectiveSpec, image: &str) -> Result<(), ExecutorError> {
    let config = &inner.config;
    let credentials = pull_credentials(spec, config);
    let reference = with_default_tag(image);
    tracing::info!(image = %reference, "pulling image");
    let opts = CreateImageOptionsBuilder::default()
        .from_image(&reference)
        .build();
    let pull = async {
        let mut stream = inner.docker.create_image(Some(opts), None, credentials);
        while let Some(item) = stream.next().await {
            item?;
        }
        Ok::<(), bollard::errors::Error>(())
    };
    match tokio::time::timeout(config.pull_timeout, pull).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ExecutorError::ImageNotFound {
            image: image.to_string(),
            message: format!("absent locally and the pull failed: {e}"),
        }),
        Err(_) => Err(ExecutorError::ImageNotFound {
            image: image.to_string(),
            message: format!(
                "absent locally and the pull did not finish within {:?}",
                config.pull_timeout
            ),
        }),
    }
}

/// Resolves the spec's image to its digest (see [`pinned_of`]) after making sure it is
/// present, and checks that it runs `sh` (the workers' keep-alive and wrapper are shell).
pub(crate) async fn pin(inner: &Inner, spec: &EffectiveSpec) -> Result<PinnedImage, ExecutorError> {
    let image = Some(spec.image())
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| ExecutorError::InvalidTask {
            field: "transform.image".to_string(),
            message: "the docker executor needs an image".to_string(),
        })?;
    ensure_image(inner, spec, image).await?;
    let inspected = inner
        .docker
        .inspect_image(image)
        .await
        .map_err(|e| backend_err(format!("inspecting image {image:?}"), e))?;
    let id = inspected.id.unwrap_or_default();
    if id.is_empty() {
        return Err(ExecutorError::ImageNotFound {
            image: image.to_string(),
            message: "the daemon reported no image ID".to_string(),
        });
    }
    check_shell(inner, image, &id).await?;
    Ok(pinned_of(
        image,
        &id,
        &inspected.repo_digests.unwrap_or_default(),
    ))
}

/// The pin of `image` (image ID `id`, registry digests `repo_digests` as the daemon lists
/// them, `repo@sha256:…`): a digest reference stays as it is; otherwise the digest of the
/// image's own repository when the daemon knows one (it was pulled or pushed), else the
/// local image ID.
pub(crate) fn pinned_of(image: &str, id: &str, repo_digests: &[String]) -> PinnedImage {
    if let Some((_, digest)) = image.split_once('@') {
        return PinnedImage {
            image: image.to_string(),
            digest: digest.to_string(),
            reference: image.to_string(),
        };
    }
    let repo = repository(image);
    let registry_digest = repo_digests.iter().find_map(|rd| {
        let (r, d) = rd.split_once('@')?;
        (normalized(r) == normalized(repo)).then_some(d)
    });
    match registry_digest {
        Some(d) => PinnedImage {
            image: image.to_string(),
            digest: d.to_string(),
            reference: format!("{repo}@{d}"),
        },
        None => PinnedImage {
            image: image.to_string(),
            digest: id.to_string(),
            reference: id.to_string(),
        },
    }
}

/// `reg:5000/x/y:1` → `reg:5000/x/y` (the tag is after the last `:` of the last segment).
pub(crate) fn repository(image: &str) -> &str {
    let last = image.rfind('/').map_or(0, |i| i + 1);
    match image[last..].rfind(':') {
        Some(i) => &image[..last + i],
        None => image,
    }
}

/// Docker Hub's implicit prefixes removed, so `busybox`, `library/busybox` and
/// `docker.io/library/busybox` compare equal.
fn normalized(repo: &str) -> &str {
    let r = repo.strip_prefix("docker.io/").unwrap_or(repo);
    r.strip_prefix("library/").unwrap_or(r)
}

/// Runs `sh -c 'exit 0'` in a throwaway container of image `id` (no network): an image
/// without a working `sh` is [`ExecutorError::Unsupported`] naming `image`.
async fn check_shell(inner: &Inner, image: &str, id: &str) -> Result<(), ExecutorError> {
    let docker = &inner.docker;
    let body = ContainerCreateBody {
        image: Some(id.to_string()),
        entrypoint: Some(vec!["sh".into(), "-c".into(), "exit 0".into()]),
        cmd: Some(vec![]),
        labels: Some(HashMap::from([(
            labels::OWNER.to_string(),
            inner.config.owner.clone(),
        )])),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            body,
        )
        .await
        .map_err(|e| backend_err(format!("creating a container of image {image:?}"), e))?;
    let run = async {
        docker
            .start_container(&created.id, None::<StartContainerOptions>)
            .await?;
        let mut wait = docker.wait_container(&created.id, None::<WaitContainerOptions>);
        match wait.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(e),
            None => Ok(-1),
        }
    };
    let outcome = tokio::time::timeout(SHELL_CHECK_TIMEOUT, run).await;
    let remove = RemoveContainerOptionsBuilder::default().force(true).build();
    let _ = docker.remove_container(&created.id, Some(remove)).await;
    let why = match outcome {
        Ok(Ok(0)) => return Ok(()),
        Ok(Ok(code)) => format!("`sh -c 'exit 0'` exited with {code}"),
        Ok(Err(e)) => format!("`sh` could not be started: {e}"),
        Err(_) => format!("`sh -c 'exit 0'` did not finish within {SHELL_CHECK_TIMEOUT:?}"),
    };
    Err(ExecutorError::Unsupported {
        backend: BACKEND,
        what: format!(
            "image {image:?}: its workers need a POSIX `sh` on the image's PATH, and {why}"
        ),
    })
}

/// Credentials for pulling: the first `transform.image_pull_secrets` name the host supplied in
/// [`DockerConfig::registry_auth`]. Names without credentials are skipped with a warning (names
/// only, never values).
fn pull_credentials(spec: &EffectiveSpec, config: &DockerConfig) -> Option<DockerCredentials> {
    for name in &spec.transform.image_pull_secrets {
        match config.registry_auth.get(name) {
            Some(a) => {
                return Some(DockerCredentials {
                    username: Some(a.username.clone()),
                    password: Some(String::from_utf8_lossy(&a.password.0).into_owned()),
                    serveraddress: a.server_address.clone(),
                    ..Default::default()
                });
            }
            None => tracing::warn!(
                secret = %name,
                "image_pull_secrets entry has no credentials in DockerConfig::registry_auth"
            ),
        }
    }
    None
}

/// `busybox` → `busybox:latest`; tagged and digested references are kept.
pub(crate) fn with_default_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || last.contains('@') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline_core::executor::SecretValue;
    use pipeline_core::spec::{PipelineSpec, Transform};

    #[test]
    fn pull_credentials_follow_image_pull_secrets() {
        let spec = EffectiveSpec::from_defaulted(PipelineSpec {
            transform: Some(Transform {
                image_pull_secrets: vec!["absent".into(), "reg".into()],
                ..Default::default()
            }),
            ..Default::default()
        });
        let mut config = DockerConfig::default();
        assert!(pull_credentials(&spec, &config).is_none());
        config.registry_auth.insert(
            "reg".into(),
            crate::RegistryAuth {
                username: "u".into(),
                password: SecretValue(b"pw".to_vec()),
                server_address: Some("registry.example".into()),
            },
        );
        let c = pull_credentials(&spec, &config).unwrap();
        assert_eq!(c.username.as_deref(), Some("u"));
        assert_eq!(c.password.as_deref(), Some("pw"));
        assert_eq!(c.serveraddress.as_deref(), Some("registry.example"));
    }

    #[test]
    fn tags_and_repositories() {
        assert_eq!(with_default_tag("busybox"), "busybox:latest");
        assert_eq!(with_default_tag("reg:5000/x/y"), "reg:5000/x/y:latest");
        assert_eq!(with_default_tag("x/y:1"), "x/y:1");
        assert_eq!(with_default_tag("x@sha256:ab"), "x@sha256:ab");
        assert_eq!(repository("reg:5000/x/y:1"), "reg:5000/x/y");
        assert_eq!(repository("reg:5000/x/y"), "reg:5000/x/y");
        assert_eq!(repository("busybox:1.36"), "busybox");
    }

    #[test]
    fn pins_prefer_the_image_s_own_registry_digest() {
        let digests = [
            "other/x@sha256:aaa".to_string(),
            "127.0.0.1:5000/edges@sha256:bbb".to_string(),
        ];
        let p = pinned_of("127.0.0.1:5000/edges:v1", "sha256:id", &digests);
        assert_eq!(p.digest, "sha256:bbb");
        assert_eq!(p.reference, "127.0.0.1:5000/edges@sha256:bbb");
        assert_eq!(p.image, "127.0.0.1:5000/edges:v1");
        // A local-only image is pinned to its ID.
        let p = pinned_of("edges:latest", "sha256:id", &digests);
        assert_eq!(
            (p.digest.as_str(), p.reference.as_str()),
            ("sha256:id", "sha256:id")
        );
        // Docker Hub's implicit prefixes match.
        let p = pinned_of(
            "busybox:1",
            "sha256:id",
            &["docker.io/library/busybox@sha256:c".into()],
        );
        assert_eq!(p.reference, "busybox@sha256:c");
        // A digest reference is already pinned.
        let p = pinned_of("x@sha256:d", "sha256:id", &[]);
        assert_eq!(
            (p.digest.as_str(), p.reference.as_str()),
            ("sha256:d", "x@sha256:d")
        );
    }
}

//! Images pinned at create/update (their digest recorded and run, a rebuilt tag changing
//! nothing until `update`), images refused at create (absent, without `sh`), and pushing to a
//! real registry (Debian's `docker-registry` on loopback) with and without valid credentials.
//! Skipped outside CI when the daemon or the registry binary is absent.

mod support;

use std::sync::Arc;

use executor_docker::test_registry::{TestRegistry, TestRegistryError};
use executor_docker::testing::{busybox_rootfs_tar_with, import_rootfs, shell_less_rootfs_tar};
use executor_docker::{DataMode, DockerExecutor, PullPolicy, PushError, RegistryAuth};
use pipeline_core::executor::{Executor, ExecutorError, SecretValue};
use pipeline_core::pfs::Store;
use pipeline_core::pps::{CreateOptions, Engine, PpsError};
use pipeline_core::spec::{EffectiveSpec, PipelineSpec, Transform};
use pipeline_core::testkit::engine::EngineEnv;

/// Imports the busybox test rootfs plus `/version` = `version` as `reference` (`repo:tag`).
async fn build_version(exec: &DockerExecutor, reference: &str, version: &str) -> String {
    let (repo, tag) = reference.rsplit_once(':').unwrap();
    let tar = busybox_rootfs_tar_with(&[("version", version.as_bytes())]).unwrap();
    import_rootfs(exec.client(), repo, tag, tar).await.unwrap()
}

fn spec_with_image(image: &str) -> EffectiveSpec {
    EffectiveSpec::from_defaulted(PipelineSpec {
        transform: Some(Transform {
            image: Some(image.to_string()),
            cmd: vec!["sh".into()],
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Removes a test's image (best effort).
async fn remove_image(exec: &DockerExecutor, image: &str) {
    let opts = None::<bollard::query_parameters::RemoveImageOptions>;
    let _ = exec.client().remove_image(image, opts, None).await;
}

/// Starts a test registry, or skips (outside CI) / fails (in CI) when it cannot run here.
fn registry(dir: &std::path::Path, creds: Option<(&str, &str)>) -> Option<TestRegistry> {
    match TestRegistry::start(dir, creds) {
        Ok(r) => Some(r),
        Err(e @ TestRegistryError::NotInstalled) if !support::in_ci() => {
            eprintln!("skipping: {e}");
            None
        }
        Err(e) => panic!("starting the test registry: {e}"),
    }
}

const PIPELINE: &str = "pipeline: {name: which}\ntransform: {cmd: [sh, -c, 'cat /version > /pfs/out/v']}\ninput: {pfs: {repo: in, glob: /}}\n";

/// Creates or updates pipeline `which` as the server does: images pinned first.
async fn create(e: &EngineEnv, image: &str, update: bool) -> pipeline_core::pps::PipelineInfo {
    let mut parsed = pipeline_core::spec::parse_str(PIPELINE, "which.yaml").unwrap();
    parsed[0].spec.transform.as_mut().unwrap().image = Some(image.into());
    let mut opts = CreateOptions {
        update,
        ..CreateOptions::default()
    };
    opts.images = e.engine.pin_images(&parsed, &opts).await.unwrap();
    e.engine.create_pipelines(&parsed, &opts).unwrap().remove(0)
}

/// The seed's warning about floating tags: a pipeline keeps running the content its tag had
/// at create, after the tag is rebuilt, until `update` pins the new content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuilt_tag_changes_running_code_only_at_update() {
    let test = "images-pin";
    let _cleanup = support::Cleanup(support::owner(test));
    let Some(exec) = support::executor(test, DataMode::Bind).await else {
        return;
    };
    let tag = format!("pin-test/{}:latest", support::owner(test));
    let id1 = build_version(&exec, &tag, "one").await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let engine = Engine::builder(store)
        .executor(Arc::new(exec.clone()))
        .build()
        .unwrap();
    let e = EngineEnv::new(engine).shutdown_after_run(true);
    e.repo("in");
    e.commit("in", &[], &[("/a", "x")]);

    let info = create(&e, &tag, false).await;
    let pin = info
        .image
        .clone()
        .expect("a docker pipeline's image is pinned");
    assert_eq!(
        (pin.image.as_str(), pin.digest.as_str()),
        (tag.as_str(), id1.as_str())
    );
    e.run().await;
    assert_eq!(
        e.head_tree("which"),
        [("/v".to_string(), "one".to_string())]
    );

    // Rebuild the same tag; a new input commit runs the old content.
    let id2 = build_version(&exec, &tag, "two").await;
    assert_ne!(id1, id2);
    e.commit("in", &[], &[("/b", "y")]);
    e.run().await;
    assert_eq!(
        e.head_tree("which"),
        [("/v".to_string(), "one".to_string())]
    );
    let stored = e.engine.inspect_pipeline("which").unwrap();
    assert_eq!(
        stored.image.unwrap().digest,
        id1,
        "inspect shows the pinned digest"
    );

    // `update` resolves the tag again; the next datum that runs (the update alone changes
    // no datum: old outputs are kept, as in Pachyderm) runs the new content.
    let info = create(&e, &tag, true).await;
    assert_eq!(info.image.unwrap().digest, id2);
    e.run().await;
    assert_eq!(
        e.head_tree("which"),
        [("/v".to_string(), "one".to_string())]
    );
    e.commit("in", &[], &[("/c", "z")]);
    e.run().await;
    assert_eq!(
        e.head_tree("which"),
        [("/v".to_string(), "two".to_string())]
    );
    e.engine.delete_pipeline("which", false).await.unwrap();
    remove_image(&exec, &tag).await;
}

/// An absent image (not pullable) and an image without `sh` are refused when the pipeline is
/// created, naming the image; nothing is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_images_are_refused_at_create() {
    let test = "images-refused";
    let _cleanup = support::Cleanup(support::owner(test));
    let Some(exec) = support::executor_with(test, DataMode::Bind, |c| {
        c.pull_policy = PullPolicy::Never;
    })
    .await
    else {
        return;
    };
    let absent = format!("pin-test/absent-{}:1", support::owner(test));
    match exec.pin_image(&spec_with_image(&absent)).await {
        Err(ExecutorError::ImageNotFound { image, .. }) => assert_eq!(image, absent),
        other => panic!("absent image: {other:?}"),
    }
    let shell_less = format!("pin-test/no-sh-{}:1", support::owner(test));
    let (repo, tag) = shell_less.rsplit_once(':').unwrap();
    import_rootfs(exec.client(), repo, tag, shell_less_rootfs_tar().unwrap())
        .await
        .unwrap();
    match exec.pin_image(&spec_with_image(&shell_less)).await {
        Err(ExecutorError::Unsupported { what, .. }) => {
            assert!(what.contains(&shell_less) && what.contains("sh"), "{what}")
        }
        other => panic!("shell-less image: {other:?}"),
    }

    // Through the engine: a typed error naming pipeline and image, and no pipeline.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let engine = Engine::builder(store)
        .executor(Arc::new(exec.clone()))
        .build()
        .unwrap();
    let e = EngineEnv::new(engine);
    e.repo("in");
    let mut parsed = pipeline_core::spec::parse_str(PIPELINE, "which.yaml").unwrap();
    parsed[0].spec.transform.as_mut().unwrap().image = Some(absent.clone());
    match e
        .engine
        .pin_images(&parsed, &CreateOptions::default())
        .await
    {
        Err(err @ PpsError::Image { .. }) => {
            let text = pipeline_core::error_chain::ErrorChain(&err).to_string();
            assert!(text.contains("which") && text.contains(&absent), "{text}");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.engine.inspect_pipeline("which").is_err());
    remove_image(&exec, &shell_less).await;
}

/// `--push-images`: a local image pushed to a registry that wants credentials, under a
/// content-derived tag; its pin is the registry digest. Wrong credentials and an unreachable
/// registry are clear errors that never show the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_pushed_with_credentials_and_pinned_to_the_registry_digest() {
    let test = "images-push";
    let _cleanup = support::Cleanup(support::owner(test));
    let Some(exec) = support::executor(test, DataMode::Bind).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(reg) = registry(&dir.path().join("registry"), Some(("alice", "s3cret-pw"))) else {
        return;
    };
    let local = format!("pin-test/{}:dev", support::owner(test));
    let id = build_version(&exec, &local, "pushed").await;
    let good = RegistryAuth {
        username: "alice".into(),
        password: SecretValue(b"s3cret-pw".to_vec()),
        server_address: None,
    };
    let pushed = exec
        .push_image(&local, &reg.address, Some(&good))
        .await
        .unwrap();
    let tag = &id["sha256:".len().."sha256:".len() + 12];
    assert_eq!(
        pushed.reference,
        format!("{}/pin-test/{}:{tag}", reg.address, support::owner(test))
    );
    assert!(pushed.digest.starts_with("sha256:"), "{pushed:?}");
    // Pushing the same content again gives the same reference and digest.
    let again = exec
        .push_image(&local, &reg.address, Some(&good))
        .await
        .unwrap();
    assert_eq!(again, pushed);
    let pin = exec
        .pin_image(&spec_with_image(&pushed.reference))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pin.digest, pushed.digest);
    assert!(
        pin.reference.ends_with(&format!("@{}", pushed.digest)),
        "{pin:?}"
    );

    let bad = RegistryAuth {
        password: SecretValue(b"wrong-pw".to_vec()),
        ..good.clone()
    };
    let err = exec
        .push_image(&local, &reg.address, Some(&bad))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, PushError::Refused { .. }), "{text}");
    assert!(
        text.contains(&reg.address) && !text.contains("wrong-pw"),
        "{text}"
    );
    let err = exec
        .push_image(&local, &reg.address, None)
        .await
        .unwrap_err();
    assert!(matches!(err, PushError::Refused { .. }), "{err}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = exec
        .push_image(&local, &closed.to_string(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, PushError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains(&closed.to_string()), "{err}");

    let err = exec
        .push_image("pin-test/never-built:1", &reg.address, None)
        .await
        .unwrap_err();
    assert!(matches!(err, PushError::ImageNotFound { .. }), "{err}");
    for image in [local, pushed.reference] {
        remove_image(&exec, &image).await;
    }
}

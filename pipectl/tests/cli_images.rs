//! The seed document's five steps ("working with pipelines") as written, with `pipectl` for
//! `pachctl`, against the real Docker Engine and a real registry on loopback (Debian's
//! `docker-registry`, started per test): write code, `docker build` a tagged image, push it
//! (with `docker push`, then with `update pipeline --push-images`), reference it in a JSON
//! spec, create and update the pipeline. Also the refusals: a missing image, an unreachable
//! registry, refused credentials; each leaves the pipeline as it was. Outside CI a missing
//! daemon or registry skips the test with a printed reason; with `CI=true` it fails.

use std::path::Path;
use std::process::Command;

use executor_docker::test_registry::{TestRegistry, TestRegistryError};

mod common;

use common::Env;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Skips outside CI (printing why) or fails in CI when `what` is missing.
fn unavailable(what: &str) -> bool {
    assert!(!in_ci(), "cli_images: {what} is required in CI");
    eprintln!("skipping cli_images: {what}");
    true
}

fn docker(args: &[&str]) -> String {
    // The classic builder: `docker build` needs nothing pulled for `FROM scratch`.
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("running docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Step 1 and 2: the analysis code and `docker build -t TAG .` of an image holding a static
/// busybox and the script; `suffix` changes the code.
fn build(ctx: &Path, tag: &str, suffix: &str) {
    std::fs::create_dir_all(ctx).unwrap();
    std::fs::copy("/bin/busybox", ctx.join("busybox")).unwrap();
    std::fs::write(
        ctx.join("upper.sh"),
        format!("#!/bin/sh\nfor f in \"$@\"; do tr a-z A-Z < \"$f\" > /pfs/out/\"${{f##*/}}\"; printf '{suffix}' >> /pfs/out/\"${{f##*/}}\"; done\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(ctx.join("upper.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCOPY upper.sh /upper.sh\nENV PATH=/bin\n",
    )
    .unwrap();
    docker(&["build", "-q", "-t", tag, ctx.to_str().unwrap()]);
}

/// Step 4: the seed's JSON spec with `image`.
fn spec(e: &Env, file: &str, image: &str) -> String {
    e.local(
        file,
        &format!(
            r#"{{
  "pipeline": {{"name": "my-pipeline"}},
  "transform": {{
    "image": "{image}",
    "cmd": ["sh", "-c", "/upper.sh /pfs/data/*"]
  }},
  "input": {{"pfs": {{"repo": "data", "glob": "/*"}}}}
}}"#
        ),
    )
}

/// Runs `pipectl ARGS` with `stdin` on the test's store.
fn with_stdin(e: &Env, args: &[&str], stdin: &str) -> assert_cmd::assert::Assert {
    e.command().args(args).write_stdin(stdin).assert()
}

fn version(e: &Env) -> u64 {
    let p = &e.json(&["inspect", "pipeline", "my-pipeline", "-o", "json"])[0];
    p["version"].as_u64().unwrap()
}

#[test]
fn the_seed_s_five_steps_with_a_local_registry() {
    if Command::new("docker")
        .arg("version")
        .output()
        .map_or(true, |o| !o.status.success())
        && unavailable("the Docker daemon")
    {
        return;
    }
    let e = Env::new();
    let reg = match TestRegistry::start(&e.dir.path().join("registry"), None) {
        Ok(r) => r,
        Err(err @ TestRegistryError::NotInstalled) => {
            if unavailable(&err.to_string()) {
                return;
            }
            unreachable!()
        }
        Err(err) => panic!("{err}"),
    };
    let name = format!("seed-{}/upper", std::process::id());
    let ctx = e.dir.path().join("ctx");

    // Steps 1-3: code, image with a unique tag, pushed to the registry.
    build(&ctx, &format!("{name}:v1"), "");
    let remote = format!("{}/{name}:v1", reg.address);
    docker(&["tag", &format!("{name}:v1"), &remote]);
    docker(&["push", "-q", &remote]);
    let digests = docker(&["inspect", "--format", "{{json .RepoDigests}}", &remote]);

    // Steps 4-5: the spec names the pushed image; create runs it.
    e.ok(&["create", "repo", "data"]);
    e.ok(&[
        "put",
        "file",
        "data@master:/a.txt",
        "-f",
        &e.local("a.txt", "hello"),
    ]);
    let file = spec(&e, "my-pipeline.json", &remote);
    e.ok(&["create", "pipeline", "--executor", "docker", "-f", &file]);
    assert_eq!(e.ok(&["get", "file", "my-pipeline@master:/a.txt"]), "HELLO");
    let info = &e.json(&["inspect", "pipeline", "my-pipeline", "-o", "json"])[0];
    let digest = info["image"]["digest"].as_str().unwrap().to_string();
    assert!(
        digests.contains(&digest),
        "pinned {digest}, registry has {digests}"
    );
    let text = e.ok(&["inspect", "pipeline", "my-pipeline"]);
    assert!(
        text.contains(&format!("Image: {remote} (digest {digest})")),
        "{text}"
    );

    // The code changes; `update pipeline --push-images` tags the local build uniquely, pushes
    // it and updates the pipeline to it. New data runs the new code; old outputs are kept.
    build(&ctx, &format!("{name}:v1"), "!");
    let local = spec(&e, "local.json", &format!("{name}:v1"));
    let out = e.cmd(&[
        "update",
        "pipeline",
        "-f",
        &local,
        "--push-images",
        "--registry",
        &reg.address,
    ]);
    let stderr = String::from_utf8_lossy(&out.success().get_output().stderr).into_owned();
    assert!(
        stderr.contains(&format!("pushed {name}:v1 as {}/{name}:", reg.address)),
        "{stderr}"
    );
    e.ok(&[
        "put",
        "file",
        "data@master:/b.txt",
        "-f",
        &e.local("b.txt", "world"),
    ]);
    assert_eq!(
        e.ok(&["get", "file", "my-pipeline@master:/b.txt"]),
        "WORLD!"
    );
    assert_eq!(e.ok(&["get", "file", "my-pipeline@master:/a.txt"]), "HELLO");
    let info = &e.json(&["inspect", "pipeline", "my-pipeline", "-o", "json"])[0];
    let pushed = info["effective"]["transform"]["image"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        pushed.starts_with(&format!("{}/{name}:", reg.address)),
        "{pushed}"
    );
    assert_ne!(info["image"]["digest"].as_str().unwrap(), digest);

    // Refusals leave version 2 in place and name what failed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let err = e.fails(&[
        "update",
        "pipeline",
        "-f",
        &local,
        "--push-images",
        "--registry",
        &closed,
    ]);
    assert!(
        err.contains(&closed) && err.contains("unreachable"),
        "{err}"
    );
    let missing = spec(&e, "missing.json", &format!("{name}-absent:v9"));
    let err = e.fails(&["update", "pipeline", "-f", &missing]);
    assert!(err.contains(&format!("{name}-absent:v9")), "{err}");
    assert_eq!(version(&e), 2);

    // A registry that wants credentials refuses wrong ones; the password is never printed.
    let locked =
        TestRegistry::start(&e.dir.path().join("locked"), Some(("alice", "right-pw"))).unwrap();
    let push_as_alice = |password: &str| {
        let args = [
            "update",
            "pipeline",
            "-f",
            &local,
            "--push-images",
            "--registry",
            &locked.address,
            "-u",
            "alice",
            "--password-stdin",
        ];
        with_stdin(&e, &args, password)
    };
    let out = push_as_alice("wrong-pw\n").failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains(&locked.address) && err.contains("refused"),
        "{err}"
    );
    assert!(!err.contains("wrong-pw"), "{err}");
    let out = push_as_alice("right-pw\n").success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains(&format!("{}/{name}:", locked.address)),
        "{stderr}"
    );
    assert_eq!(version(&e), 3);

    e.ok(&["delete", "pipeline", "my-pipeline"]);
    for image in [format!("{name}:v1"), remote] {
        let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
    }
}

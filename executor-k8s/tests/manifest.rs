//! Worker pod manifests for every Kubernetes-relevant spec field, compared with expected
//! manifests (an insta snapshot of the full YAML, plus targeted JSON comparisons).

use std::collections::BTreeMap;
use std::sync::Arc;

use executor_k8s::{
    K8sConfig, ManifestError, SharedVolume, build_worker_pod, parse_user, render_worker_manifests,
};
use pipeline_core::executor::{Secrets, WorkerPoolSpec};
use pipeline_core::spec::{
    EffectiveSpec, GpuSpec, Metadata, PipelineSpec, ResourceSpec, SchedulingSpec, SecretMount,
    Toleration, Transform,
};
use serde_json::json;

fn config() -> K8sConfig {
    K8sConfig {
        namespace: Some("pipelines".into()),
        owner: "host-a".into(),
        ..K8sConfig::default()
    }
}

fn pool(spec: PipelineSpec) -> WorkerPoolSpec {
    WorkerPoolSpec {
        project: "default".into(),
        pipeline: "edges".into(),
        version: 3,
        workers: 2,
        spec: Arc::new(EffectiveSpec::from_defaulted(spec)),
        secrets: Secrets::default(),
    }
}

fn full_spec() -> PipelineSpec {
    PipelineSpec {
        metadata: Some(Metadata {
            labels: BTreeMap::from([
                ("team".into(), "vision".into()),
                // Must not override our own key.
                ("pipeline-core.dev/pipeline".into(), "spoofed".into()),
            ]),
            annotations: BTreeMap::from([("owner".into(), "alice@example.com".into())]),
        }),
        transform: Some(Transform {
            image: Some("registry.example.com/edges:1.2".into()),
            cmd: vec!["python3".into(), "/edges.py".into()],
            env: BTreeMap::from([("MODE".into(), "fast".into())]),
            secrets: vec![
                SecretMount {
                    name: "s3-creds".into(),
                    key: Some("access_key".into()),
                    env_var: Some("AWS_ACCESS_KEY_ID".into()),
                    mount_path: None,
                },
                SecretMount {
                    name: "tls".into(),
                    key: None,
                    env_var: None,
                    mount_path: Some("/etc/tls".into()),
                },
            ],
            image_pull_secrets: vec!["regcred".into()],
            user: Some("1000:2000".into()),
            working_dir: Some("/app".into()),
            memory_volume: true,
            ..Default::default()
        }),
        resource_requests: Some(ResourceSpec {
            cpu: Some(0.5),
            memory: Some("256Mi".into()),
            gpu: None,
            disk: Some("1Gi".into()),
            pids: None,
        }),
        resource_limits: Some(ResourceSpec {
            cpu: Some(2.0),
            memory: Some("1Gi".into()),
            gpu: Some(GpuSpec {
                gpu_type: "nvidia.com/gpu".into(),
                number: 1,
            }),
            disk: None,
            pids: None,
        }),
        scheduling_spec: Some(SchedulingSpec {
            node_selector: BTreeMap::from([("disktype".into(), "ssd".into())]),
            priority_class_name: Some("high".into()),
        }),
        tolerations: vec![
            Toleration {
                key: Some("dedicated".into()),
                operator: Some("EQUAL".into()),
                value: Some("gpu".into()),
                effect: Some("NO_SCHEDULE".into()),
                toleration_seconds: None,
            },
            Toleration {
                key: Some("flaky".into()),
                operator: Some("EXISTS".into()),
                value: None,
                effect: Some("NO_EXECUTE".into()),
                toleration_seconds: Some(60),
            },
            Toleration {
                key: None,
                operator: Some("EXISTS".into()),
                value: None,
                effect: Some("ALL_EFFECTS".into()),
                toleration_seconds: None,
            },
        ],
        pod_spec: Some(r#"{"hostNetwork": false, "dnsPolicy": "ClusterFirst"}"#.into()),
        pod_patch: Some(
            r#"[{"op": "add", "path": "/containers/0/resources/limits/example.com~1fpga", "value": "1"}]"#
                .into(),
        ),
        ..Default::default()
    }
}

#[test]
fn full_spec_manifest_snapshot() {
    let yaml = render_worker_manifests(&pool(full_spec()), &config()).unwrap();
    insta::assert_snapshot!("full_spec", yaml);
}

#[test]
fn default_spec_manifest_snapshot() {
    let mut p = pool(PipelineSpec::default());
    p.workers = 1;
    let yaml = render_worker_manifests(&p, &config()).unwrap();
    insta::assert_snapshot!("default_spec", yaml);
}

fn pod_json(spec: PipelineSpec, config: &K8sConfig) -> serde_json::Value {
    serde_json::to_value(build_worker_pod(&pool(spec), config, 1).unwrap()).unwrap()
}

#[test]
fn identity_labels_and_annotations() {
    let pod = pod_json(full_spec(), &config());
    let labels = &pod["metadata"]["labels"];
    assert_eq!(labels["pipeline-core.dev/pipeline"], "edges");
    assert_eq!(labels["pipeline-core.dev/project"], "default");
    assert_eq!(labels["pipeline-core.dev/version"], "3");
    assert_eq!(labels["pipeline-core.dev/worker"], "1");
    assert_eq!(labels["pipeline-core.dev/owner"], "host-a");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "executor-k8s");
    assert_eq!(labels["team"], "vision");
    assert_eq!(pod["metadata"]["annotations"]["owner"], "alice@example.com");
    assert_eq!(
        pod["metadata"]["annotations"]["pipeline-core.dev/pipeline-name"],
        "edges"
    );
    assert_eq!(pod["metadata"]["generateName"], "default-edges-v3-w1-");
    assert_eq!(pod["metadata"]["namespace"], "pipelines");
}

#[test]
fn container_fields() {
    let pod = pod_json(full_spec(), &config());
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["name"], "user");
    assert_eq!(c["image"], "registry.example.com/edges:1.2");
    assert_eq!(c["command"][0], "/bin/sh");
    assert_eq!(c["workingDir"], "/app");
    assert_eq!(
        c["securityContext"],
        json!({"runAsUser": 1000, "runAsGroup": 2000})
    );
    let env = c["env"].as_array().unwrap();
    assert!(env.contains(&json!({"name": "MODE", "value": "fast"})));
    assert!(
        env.contains(&json!({"name": "AWS_ACCESS_KEY_ID", "valueFrom":
        {"secretKeyRef": {"name": "s3-creds", "key": "access_key"}}}))
    );
    assert!(env.contains(&json!({"name": "PPS_PIPELINE_NAME", "value": "edges"})));
    let mounts = c["volumeMounts"].as_array().unwrap();
    assert!(mounts.contains(&json!({"name": "pfs", "mountPath": "/pfs"})));
    assert!(
        mounts.contains(&json!({"name": "secret-1", "mountPath": "/etc/tls", "readOnly": true}))
    );
    assert_eq!(
        c["resources"],
        json!({
            "requests": {"cpu": "500m", "memory": "256Mi", "ephemeral-storage": "1Gi"},
            "limits": {"cpu": "2", "memory": "1Gi", "nvidia.com/gpu": "1", "example.com/fpga": "1"}
        })
    );
}

#[test]
fn pod_level_fields() {
    let pod = pod_json(full_spec(), &config());
    let s = &pod["spec"];
    assert_eq!(s["imagePullSecrets"], json!([{"name": "regcred"}]));
    assert_eq!(s["nodeSelector"], json!({"disktype": "ssd"}));
    assert_eq!(s["priorityClassName"], "high");
    assert_eq!(s["restartPolicy"], "Never");
    assert_eq!(
        s["dnsPolicy"], "ClusterFirst",
        "pod_spec merge patch applied"
    );
    assert_eq!(
        s["tolerations"],
        json!([
            {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
            {"key": "flaky", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
            {"operator": "Exists"}
        ])
    );
    let volumes = s["volumes"].as_array().unwrap();
    assert!(volumes.contains(&json!({"name": "pfs", "emptyDir": {"medium": "Memory"}})));
    assert!(volumes.contains(&json!({"name": "secret-1", "secret": {"secretName": "tls"}})));
}

#[test]
fn memory_volume_off_gives_plain_empty_dir() {
    let pod = pod_json(PipelineSpec::default(), &config());
    assert_eq!(
        pod["spec"]["volumes"][0],
        json!({"name": "pfs", "emptyDir": {}})
    );
    assert_eq!(pod["spec"]["containers"][0]["image"], "ubuntu:20.04");
    assert!(
        pod["spec"]["containers"][0]
            .get("securityContext")
            .is_none()
    );
}

#[test]
fn gpu_request_is_mirrored_into_limits() {
    let spec = PipelineSpec {
        resource_requests: Some(ResourceSpec {
            gpu: Some(GpuSpec {
                gpu_type: "amd.com/gpu".into(),
                number: 2,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let pod = pod_json(spec, &config());
    assert_eq!(
        pod["spec"]["containers"][0]["resources"],
        json!({"requests": {"amd.com/gpu": "2"}, "limits": {"amd.com/gpu": "2"}})
    );
}

#[test]
fn shared_volume_is_mounted() {
    let cfg = K8sConfig {
        shared_volume: Some(SharedVolume {
            claim_name: "pipeline-scratch".into(),
            mount_path: "/shared".into(),
            host_path: "/mnt/shared".into(),
        }),
        ..config()
    };
    let pod = pod_json(PipelineSpec::default(), &cfg);
    assert!(pod["spec"]["volumes"].as_array().unwrap().contains(&json!(
        {"name": "pach-shared", "persistentVolumeClaim": {"claimName": "pipeline-scratch"}}
    )));
    assert!(
        pod["spec"]["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .contains(&json!(
                {"name": "pach-shared", "mountPath": "/shared"}
            ))
    );
}

#[test]
fn long_names_stay_within_limits() {
    let mut p = pool(PipelineSpec::default());
    p.project = "p".repeat(51);
    p.pipeline = format!("{}_", "Long_Name".repeat(5));
    let pod = build_worker_pod(&p, &config(), 7).unwrap();
    let g = pod.metadata.generate_name.unwrap();
    assert!(g.len() <= 58 && g.ends_with("-v3-w7-"), "{g}");
    assert!(
        g.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    );
    for v in pod.metadata.labels.unwrap().values() {
        assert!(v.len() <= 63, "{v}");
        assert!(!v.ends_with('_') && !v.ends_with('-'), "{v}");
    }
    assert_eq!(
        pod.metadata.annotations.unwrap()["pipeline-core.dev/pipeline-name"],
        p.pipeline
    );
}

fn err(spec: PipelineSpec) -> ManifestError {
    build_worker_pod(&pool(spec), &config(), 0).unwrap_err()
}

fn with_transform(t: Transform) -> PipelineSpec {
    PipelineSpec {
        transform: Some(t),
        ..Default::default()
    }
}

#[test]
fn users() {
    assert_eq!(parse_user("1000").unwrap(), (1000, None));
    assert_eq!(parse_user("1000:50").unwrap(), (1000, Some(50)));
    assert_eq!(parse_user("root:root").unwrap(), (0, Some(0)));
    let e = err(with_transform(Transform {
        user: Some("alice".into()),
        ..Default::default()
    }));
    assert_eq!(e.field, "transform.user");
    assert!(
        e.message.contains("\"alice\"") && e.message.contains("uid[:gid]"),
        "{e}"
    );
    assert_eq!(
        parse_user("1000:staff").unwrap_err().field,
        "transform.user"
    );
    assert!(parse_user("-1").is_err());
}

#[test]
fn bad_tolerations_name_the_entry() {
    let spec = |op: Option<&str>, effect: Option<&str>| PipelineSpec {
        tolerations: vec![
            Toleration {
                operator: Some("EXISTS".into()),
                ..Default::default()
            },
            Toleration {
                key: Some("k".into()),
                operator: op.map(Into::into),
                effect: effect.map(Into::into),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let e = err(spec(None, None));
    assert_eq!(e.field, "tolerations[1].operator");
    assert!(e.message.contains("specify EQUAL or EXISTS"));
    assert_eq!(
        err(spec(Some("LIKE"), None)).field,
        "tolerations[1].operator"
    );
    assert_eq!(
        err(spec(Some("EQUAL"), Some("SOMETIMES"))).field,
        "tolerations[1].effect"
    );
}

#[test]
fn bad_resources_name_the_field() {
    let e = err(PipelineSpec {
        resource_limits: Some(ResourceSpec {
            gpu: Some(GpuSpec {
                gpu_type: "".into(),
                number: 1,
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    assert_eq!(e.field, "resource_limits.gpu.type");
    let e = err(PipelineSpec {
        resource_requests: Some(ResourceSpec {
            cpu: Some(-1.0),
            ..Default::default()
        }),
        ..Default::default()
    });
    assert_eq!(e.field, "resource_requests.cpu");
    let e = err(PipelineSpec {
        resource_requests: Some(ResourceSpec {
            memory: Some(" ".into()),
            ..Default::default()
        }),
        ..Default::default()
    });
    assert_eq!(e.field, "resource_requests.memory");
}

#[test]
fn bad_secrets_name_the_field() {
    let e = err(with_transform(Transform {
        secrets: vec![SecretMount {
            name: "s".into(),
            env_var: Some("X".into()),
            ..Default::default()
        }],
        ..Default::default()
    }));
    assert_eq!(e.field, "transform.secrets[0].key");
    assert!(e.message.contains("has env_var set but is missing key"));
    let e = err(with_transform(Transform {
        secrets: vec![SecretMount {
            name: "s".into(),
            mount_path: Some("relative".into()),
            ..Default::default()
        }],
        ..Default::default()
    }));
    assert_eq!(e.field, "transform.secrets[0].mount_path");
}

#[test]
fn patches_apply_in_pachyderm_order_and_errors_name_the_field() {
    // Merge patch first, then the JSON patch sees its result.
    let pod = pod_json(
        PipelineSpec {
            pod_spec: Some(r#"{"hostname": "from-merge"}"#.into()),
            pod_patch: Some(
                r#"[{"op": "replace", "path": "/hostname", "value": "from-patch"}]"#.into(),
            ),
            ..Default::default()
        },
        &config(),
    );
    assert_eq!(pod["spec"]["hostname"], "from-patch");
    // A null in the merge patch deletes a key.
    let pod = pod_json(
        PipelineSpec {
            pod_spec: Some(r#"{"restartPolicy": null}"#.into()),
            ..Default::default()
        },
        &config(),
    );
    assert!(pod["spec"].get("restartPolicy").is_none());

    let e = err(PipelineSpec {
        pod_patch: Some("{not json".into()),
        ..Default::default()
    });
    assert_eq!(e.field, "pod_patch");
    assert!(e.message.contains("malformed PodPatch"), "{e}");
    let e = err(PipelineSpec {
        pod_patch: Some(r#"{"op": "add"}"#.into()),
        ..Default::default()
    });
    assert_eq!(e.field, "pod_patch");
    let e = err(PipelineSpec {
        pod_patch: Some(r#"[{"op": "remove", "path": "/nodeName"}]"#.into()),
        ..Default::default()
    });
    assert_eq!(e.field, "pod_patch");
    assert!(e.message.contains("cannot apply"), "{e}");
    let e = err(PipelineSpec {
        pod_patch: Some(r#"[{"op": "replace", "path": "/containers", "value": 5}]"#.into()),
        ..Default::default()
    });
    assert_eq!(e.field, "pod_patch");
    assert!(e.message.contains("not a valid Kubernetes PodSpec"), "{e}");
    let e = err(PipelineSpec {
        pod_spec: Some("[1]".into()),
        ..Default::default()
    });
    assert_eq!(e.field, "pod_spec");
    assert!(e.message.contains("malformed PodSpec"), "{e}");
    let e = err(PipelineSpec {
        pod_spec: Some("{".into()),
        ..Default::default()
    });
    assert_eq!(e.field, "pod_spec");
}

//! TLS to the PostgreSQL metadata server (`sslmode`, `sslrootcert` in the store URL), against
//! the test server (`PIPELINE_TEST_POSTGRES`, `.ci/postgres`): Debian's PostgreSQL serves TLS
//! with the machine's self-signed "snakeoil" certificate, issued for the host name, not for
//! 127.0.0.1. Each store's connections are found in `pg_stat_ssl` by their application name,
//! through a separate plain connection, to tell encrypted sessions from plain ones.

use std::path::Path;

use pipeline_core::pfs::{PfsError, Store, StoreLocation};
use pipeline_core::testkit::store::{PlainClient, postgres_url, with_schema};

/// A self-signed CA certificate that signed nothing (`openssl req -x509`, P-256).
const UNRELATED_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBjzCCATWgAwIBAgIUezFofsRe4uVe3oUVsqXtotaI3ZkwCgYIKoZIzj0EAwIw
HDEaMBgGA1UEAwwRdW5yZWxhdGVkLXRlc3QtY2EwIBcNMjYxMjA3MDg1MzQzWhgP
MjEyNjExMTMwODUzNDNaMBwxGjAYBgNVBAMMEXVucmVsYXRlZC10ZXN0LWNhMFkw
EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE93D/fSjRwSYUrSHC2ZwRRSPuGuMLuIrS
g4sk13J9lcgMG/EH6IamfZGUbF6PfgYCOSiSS+v1DvoRKz00fIV4vaNTMFEwHQYD
VR0OBBYEFCBXnV1zBjgk4P7zrsIYMM2D+V9CMB8GA1UdIwQYMBaAFCBXnV1zBjgk
4P7zrsIYMM2D+V9CMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIg
HQGfuU56i94Vfy4rvb78VZs8ErJloqukQOjrnhSfETcCIQCgmFCOTCIHVIeokklX
lc+bWxcHZKIVPpJdRV0AOOM9mg==
-----END CERTIFICATE-----
";

/// A plain client of the test server, reading its settings and sessions.
struct Probe(PlainClient);

impl Probe {
    fn new(url: &str) -> Probe {
        Probe(PlainClient::new(url))
    }

    fn setting(&self, name: &str) -> String {
        self.0.rows(&format!("SHOW {name}")).remove(0).remove(0)
    }

    /// Whether every session named `app` is encrypted (`None`: there is none).
    fn encrypted(&self, app: &str) -> Option<bool> {
        let rows = self.0.rows(&format!(
            "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = '{app}'"
        ));
        match rows[0][0].as_str() {
            "t" => Some(true),
            "f" => Some(false),
            _ => None,
        }
    }
}

/// The test server when it serves TLS; `None` (after saying why) when it does not outside
/// CI. In CI the server must (Debian's PostgreSQL does by default).
fn tls_server() -> Option<(String, Probe)> {
    let base = postgres_url()?;
    let probe = Probe::new(&base);
    if probe.setting("ssl") != "on" {
        assert!(
            std::env::var("CI").is_err(),
            "the test PostgreSQL server has ssl off"
        );
        eprintln!("skipped: the test PostgreSQL server has ssl off");
        return None;
    }
    Some((base, probe))
}

/// A store location on a fresh schema of `base` with extra URL `params`, objects in `dir`.
fn location(base: &str, dir: &Path, tag: &str, params: &str) -> StoreLocation {
    let schema = format!("tls_{tag}_{}", std::process::id());
    StoreLocation {
        store: format!("{}&{params}", with_schema(base, &schema)),
        objects: Some(dir.join("objects").display().to_string()),
        local: dir.to_path_buf(),
    }
}

/// Makes the store at `loc` and opens it (pool and owner-lock sessions); its error as text.
fn init_and_connect(loc: &StoreLocation) -> Result<Store, String> {
    let text = |e: PfsError| pipeline_core::error_chain::ErrorChain(&e).to_string();
    drop(Store::init(loc).map_err(text)?);
    Store::connect(loc).map_err(text)
}

#[test]
fn sslmode_require_encrypts_every_session_and_disable_none() {
    let Some((base, probe)) = tls_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (mode, want) in [("require", true), ("disable", false), ("prefer", true)] {
        let app = format!("tls-test-{mode}-{}", std::process::id());
        let params = format!("sslmode={mode}&application_name={app}");
        let loc = location(&base, &dir.path().join(mode), mode, &params);
        let store = init_and_connect(&loc).unwrap_or_else(|e| panic!("sslmode={mode}: {e}"));
        let repo = pipeline_core::pfs::RepoRef::new("data").unwrap();
        store.create_repo(&repo, "").unwrap();
        assert_eq!(probe.encrypted(&app), Some(want), "sslmode={mode}");
        drop(store);
    }
}

#[test]
fn verify_modes_check_the_servers_certificate() {
    let Some((base, probe)) = tls_server() else {
        return;
    };
    let cert = probe.setting("ssl_cert_file");
    let dir = tempfile::tempdir().unwrap();
    // Trusting only another CA: the server's certificate is refused.
    let other = dir.path().join("other-ca.pem");
    std::fs::write(&other, UNRELATED_CA).unwrap();
    for (tag, mode) in [("ca", "verify-ca"), ("req1", "require")] {
        let params = format!("sslmode={mode}&sslrootcert={}", other.display());
        let loc = location(&base, &dir.path().join(tag), tag, &params);
        let e = init_and_connect(&loc).expect_err("an unknown issuer is refused");
        assert!(
            e.contains("certificate") || e.contains("TLS"),
            "{mode}: {e}"
        );
    }
    // Trusting it with sslrootcert: verify-ca passes, and so does require (as libpq).
    for (tag, mode) in [("ca2", "verify-ca"), ("req", "require")] {
        let app = format!("tls-test-{tag}-{}", std::process::id());
        let params = format!("sslmode={mode}&sslrootcert={cert}&application_name={app}");
        let loc = location(&base, &dir.path().join(tag), tag, &params);
        let store = init_and_connect(&loc).unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(probe.encrypted(&app), Some(true), "{mode}");
        drop(store);
    }
    // verify-full also wants the certificate issued for the URL's host: not for 127.0.0.1.
    let params = format!("sslmode=verify-full&sslrootcert={cert}");
    let loc = location(&base, &dir.path().join("full"), "full", &params);
    let e = init_and_connect(&loc).expect_err("a wrong host is refused");
    assert!(e.contains("certificate") || e.contains("TLS"), "{e}");
}

#[test]
fn bad_tls_parameters_are_typed_errors_naming_them() {
    let Some((base, _probe)) = tls_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let loc = location(&base, dir.path(), "bad", "sslmode=verify_full");
    let e = Store::connect(&loc).unwrap_err();
    assert!(matches!(e, PfsError::InvalidLocation { .. }), "{e}");
    assert!(e.to_string().contains("sslmode \"verify_full\""), "{e}");
    let loc = location(
        &base,
        dir.path(),
        "bad2",
        "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
    );
    let e = Store::connect(&loc).unwrap_err().to_string();
    assert!(e.contains("sslrootcert /nonexistent/ca.pem"), "{e}");
    let password = base
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(user, _)| user.split_once(':'))
        .map(|(_, p)| p.to_string());
    if let Some(p) = password {
        assert!(!e.contains(&p), "the password is shown: {e}");
    }
}

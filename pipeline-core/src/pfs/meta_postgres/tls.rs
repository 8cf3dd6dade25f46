//! TLS to the metadata server, chosen in the URL with libpq's parameters: `sslmode`
//! (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`) and `sslrootcert=FILE` (PEM
//! certificates to trust).
//!
//! | `sslmode` | encrypted | server certificate checked |
//! |---|---|---|
//! | absent, `disable` | no | — |
//! | `prefer` | when the server offers TLS | no |
//! | `require` | always (refused otherwise) | no; with `sslrootcert`, as `verify-ca` (as libpq) |
//! | `verify-ca` | always | signed by a trusted root |
//! | `verify-full` | always | signed by a trusted root and issued for the URL's host |
//!
//! Trusted roots are the certificates of `sslrootcert`, or without it the system's
//! (`rustls-native-certs`; libpq would read `~/.postgresql/root.crt`). Without `sslmode` the
//! connection is plain, as libpq's `disable` (libpq's default is `prefer`, which encrypts
//! without checking who answers, so it protects against nothing that matters here).
//!
//! Built on `tokio-postgres-rustls` (the maintained rustls adapter of the driver) with
//! rustls on `ring`, the TLS stack the object-store backend already uses.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How the server's certificate is checked (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Not at all (`disable`, `prefer`, `require`): encryption only.
    None,
    /// Signed by a trusted root (`verify-ca`).
    Ca,
    /// Signed by a trusted root and issued for the host (`verify-full`).
    Full,
}

/// The TLS settings of a server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    /// What the driver does about TLS.
    pub mode: SslMode,
    /// How the certificate is checked.
    pub check: Check,
    /// `sslrootcert`: the certificates to trust instead of the system's.
    pub root_cert: Option<PathBuf>,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            mode: SslMode::Disable,
            check: Check::None,
            root_cert: None,
        }
    }
}

impl TlsSettings {
    /// Applies `sslmode=value`; the error says what was expected.
    fn set_mode(&mut self, value: &str) -> std::result::Result<(), String> {
        (self.mode, self.check) = match value {
            "disable" => (SslMode::Disable, Check::None),
            "prefer" => (SslMode::Prefer, Check::None),
            "require" => (SslMode::Require, Check::None),
            "verify-ca" => (SslMode::Require, Check::Ca),
            "verify-full" => (SslMode::Require, Check::Full),
            other => {
                return Err(format!(
                    "sslmode {other:?}: expected disable, prefer, require, verify-ca or verify-full"
                ));
            }
        };
        Ok(())
    }

    /// The check made: `require` with `sslrootcert` checks the chain, as in libpq.
    fn effective_check(&self) -> Check {
        match (self.check, &self.root_cert) {
            (Check::None, Some(_)) if self.mode == SslMode::Require => Check::Ca,
            (check, _) => check,
        }
    }
}

/// `url` without libpq's TLS parameters (`sslmode`, `sslrootcert`), which the driver does
/// not know in full, and the settings they give; the error says what was expected.
pub(crate) fn take_params(url: &str) -> std::result::Result<(String, TlsSettings), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), TlsSettings::default()));
    };
    let mut tls = TlsSettings::default();
    let mut kept = Vec::new();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        match param.split_once('=') {
            Some(("sslmode", mode)) => tls.set_mode(mode)?,
            Some(("sslrootcert", file)) if !file.is_empty() => tls.root_cert = Some(file.into()),
            _ => kept.push(param),
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, tls))
}

/// The driver's TLS connector for `settings`; the error is the reason (a root file that
/// cannot be read, no roots to check against).
pub(crate) fn connector(settings: &TlsSettings) -> std::result::Result<MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("setting up TLS: {e}"))?;
    let verifier: Arc<dyn ServerCertVerifier> = match settings.effective_check() {
        Check::Full => WebPkiServerVerifier::builder_with_provider(
            Arc::new(trusted_roots(settings)?),
            provider,
        )
        .build()
        .map_err(|e| format!("setting up certificate checks: {e}"))?,
        check => {
            let chain = match check {
                Check::Ca => Some(
                    WebPkiServerVerifier::builder_with_provider(
                        Arc::new(trusted_roots(settings)?),
                        provider.clone(),
                    )
                    .build()
                    .map_err(|e| format!("setting up certificate checks: {e}"))?,
                ),
                _ => None,
            };
            Arc::new(Partial { chain, provider })
        }
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// The roots a certificate must chain to: `sslrootcert`'s, or the system's.
fn trusted_roots(settings: &TlsSettings) -> std::result::Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    if let Some(file) = &settings.root_cert {
        let shown = file.display();
        let certs = CertificateDer::pem_file_iter(file)
            .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| format!("sslrootcert {shown}: {e}"))?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(format!(
                "sslrootcert {shown}: expected PEM certificates, found none"
            ));
        }
        return Ok(roots);
    }
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        return Err(
            "no trusted root certificates on this system: name the server's CA with \
                    sslrootcert=FILE in the URL"
                .into(),
        );
    }
    Ok(roots)
}

/// The checks short of `verify-full`: the certificate's chain against the roots when
/// there are some (libpq's `verify-ca`: any host name), nothing of it otherwise (`prefer`,
/// `require`); the handshake's signatures always, so the session is with whoever holds the
/// certificate's key.
#[derive(Debug)]
struct Partial {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Partial {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_of_a_url() {
        let (rest, tls) =
            take_params("postgres://u@h/d?schema=s&sslmode=verify-ca&sslrootcert=/ca.pem&x=1")
                .unwrap();
        assert_eq!(rest, "postgres://u@h/d?schema=s&x=1");
        assert_eq!((tls.mode, tls.check), (SslMode::Require, Check::Ca));
        assert_eq!(
            tls.root_cert.as_deref(),
            Some(std::path::Path::new("/ca.pem"))
        );
        let (rest, tls) = take_params("postgres://u@h/d?sslmode=disable").unwrap();
        assert_eq!(
            (rest.as_str(), tls),
            ("postgres://u@h/d", TlsSettings::default())
        );
        assert!(take_params("postgres://u@h/d?sslmode=on").is_err());
    }

    #[test]
    fn modes_map_as_libpq_and_bad_ones_say_what_is_expected() {
        let mut s = TlsSettings::default();
        assert_eq!((s.mode, s.check), (SslMode::Disable, Check::None));
        s.set_mode("verify-full").unwrap();
        assert_eq!((s.mode, s.check), (SslMode::Require, Check::Full));
        s.set_mode("require").unwrap();
        assert_eq!(s.effective_check(), Check::None);
        s.root_cert = Some("/ca.pem".into());
        assert_eq!(
            s.effective_check(),
            Check::Ca,
            "require + sslrootcert = verify-ca"
        );
        let e = s.set_mode("verify_full").unwrap_err();
        assert!(
            e.contains("verify-full") && e.contains("\"verify_full\""),
            "{e}"
        );
    }

    #[test]
    fn an_unreadable_or_empty_root_file_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        for file in [dir.path().join("missing.pem"), empty] {
            let settings = TlsSettings {
                mode: SslMode::Require,
                check: Check::Full,
                root_cert: Some(file.clone()),
            };
            let e = connector(&settings).err().expect("refused");
            assert!(
                e.contains(&format!("sslrootcert {}", file.display())),
                "{e}"
            );
        }
    }
}

//! Who may use the gateway. With the server's token (a TCP listener with auth), the token
//! is both the access key ID and the secret access key, as Pachyderm's gateway takes its
//! auth token; requests are checked with SigV4 by `s3s` (wrong key → `InvalidAccessKeyId`,
//! wrong secret → `SignatureDoesNotMatch`). Without auth any credentials are accepted: the
//! signature is dropped before `s3s` sees the request, which then is anonymous.
use std::sync::Arc;

use axum::extract::Request;
use axum::http::header::AUTHORIZATION;
use s3s::auth::{S3Auth, SecretKey};
use s3s::validation::NameValidation;
use s3s::{S3Result, s3_error};

use crate::auth::constant_time_eq;

/// The server's token as the one S3 credential.
pub struct TokenAuth {
    token: Arc<str>,
}

impl TokenAuth {
    /// Accepts `token` as access key ID and secret.
    pub fn new(token: Arc<str>) -> Self {
        TokenAuth { token }
    }
}

#[async_trait::async_trait]
impl S3Auth for TokenAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if constant_time_eq(access_key.as_bytes(), self.token.as_bytes()) {
            Ok(SecretKey::from(&*self.token))
        } else {
            Err(s3_error!(
                InvalidAccessKeyId,
                "the access key ID is not this server's token (`pipectl serve --print-token` shows it; use it as both access key ID and secret)"
            ))
        }
    }
}

/// Bucket names are checked by [`super::bucket::Bucket::parse`] (repo names may hold
/// capitals and underscores, which AWS's own rules refuse), so `s3s` lets every name pass.
pub struct AnyBucketName;

impl NameValidation for AnyBucketName {
    fn validate_bucket_name(&self, _name: &str) -> bool {
        true
    }
}

/// Drops a request's SigV4/SigV2 signature (header and presigned query) so that `s3s`, with no
/// auth provider, serves it as anonymous: the gateway without auth accepts any credentials.
pub fn strip_signature(mut req: Request) -> Request {
    req.headers_mut().remove(AUTHORIZATION);
    let signed_query = req.uri().query().is_some_and(|q| {
        q.split('&').any(|kv| {
            let k = kv.split('=').next().unwrap_or("");
            k.starts_with("X-Amz-") || k == "Signature" || k == "AWSAccessKeyId"
        })
    });
    if signed_query {
        let kept: Vec<&str> = req
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|kv| {
                let k = kv.split('=').next().unwrap_or("");
                !(k.starts_with("X-Amz-") || k == "Signature" || k == "AWSAccessKeyId")
            })
            .collect();
        let pq = if kept.is_empty() {
            req.uri().path().to_string()
        } else {
            format!("{}?{}", req.uri().path(), kept.join("&"))
        };
        let mut parts = req.uri().clone().into_parts();
        if let Ok(pq) = pq.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    req
}

//! The S3 gateway: repos as S3 buckets for any S3 client (`pipectl serve --s3 ADDR`).
//!
//! A bucket is a branch, named as Pachyderm's gateway names it: `BRANCH.REPO` (default
//! project), `BRANCH.REPO.PROJECT`, `REPO` for `master.REPO`, and `COMMIT.BRANCH.REPO[.PROJECT]`
//! for one commit (read-only). Objects are the files of the branch's head, keys their paths
//! without the leading `/`. ListBuckets lists every branch of every repo. Writes (PutObject,
//! DeleteObject, CompleteMultipartUpload) follow `pipectl put file`'s auto-commit rule: each
//! is a commit of its own, or goes into the branch's open commit; output branches of
//! pipelines refuse them (`AccessDenied`) as the rest of the API does. CreateBucket creates
//! the repo and branch, DeleteBucket deletes the branch (and the repo with its last branch).
//! Errors are S3's own XML (`NoSuchBucket`, `NoSuchKey`, `InvalidBucketName`, ...), with the
//! store's message.
//!
//! | module | what |
//! |---|---|
//! | `bucket` | bucket names ↔ branches and commits |
//! | `auth` | the server's token as the S3 credential (SigV4); no auth: any credentials |
//! | `gateway` | the `s3s::S3` implementation and what its operations share; its scope: every branch, or one job's buckets |
//! | `job` | job gateways: one per job of a pipeline with S3 inputs or `s3_out` |
//! | `buckets` | ListBuckets, CreateBucket, DeleteBucket |
//! | `list` / `listing` | one page of a listing over the store's streaming listing; v1 and v2 |
//! | `objects` | GetObject (Range), PutObject, multipart uploads |
//! | `multipart` | uploads in progress and their parts spooled to files |
//! | `body` | request and response bodies streamed to and from the store |
//! | `errors` | store errors as S3 errors |
//!
//! Why `s3s`: it implements the S3 REST protocol as a hyper/tower service: request routing
//! and parsing of every operation, SigV4 (header, presigned, aws-chunked bodies) and S3's
//! XML responses and errors, generated from AWS's own API models; we implement only the
//! operations over the store. It is the crate our tests' S3 server (`s3s-fs`) is built on.
use std::path::PathBuf;
use std::sync::Arc;

use axum::error_handling::HandleError;
use axum::http::StatusCode;
use s3s::service::S3ServiceBuilder;

use crate::state::AppState;

mod auth;
mod body;
pub mod bucket;
mod buckets;
mod errors;
mod gateway;
mod job;
mod list;
mod listing;
mod multipart;
mod objects;

pub use bucket::{Bucket, BucketNameError};
pub use gateway::Gateway;
pub use job::S3JobGateways;

/// How the gateway checks requests.
#[derive(Debug, Clone)]
pub enum S3Auth {
    /// The server's token is the access key ID and the secret (SigV4 checked).
    Token(Arc<str>),
    /// Any credentials (and none) are accepted.
    Open,
}

/// The gateway over `state`'s engine as an axum router (every path is S3's), with auth as
/// given; multipart parts are spooled below `spool` (the system's temporary directory when
/// `None`).
pub fn router(state: AppState, auth: S3Auth, spool: Option<PathBuf>) -> axum::Router {
    service_router(Gateway::new(state, spool), auth)
}

/// `gateway` as an axum router, with auth as given.
fn service_router(gateway: Gateway, auth: S3Auth) -> axum::Router {
    let mut b = S3ServiceBuilder::new(gateway);
    b.set_validation(auth::AnyBucketName);
    let open = match auth {
        S3Auth::Token(t) => {
            b.set_auth(auth::TokenAuth::new(t));
            false
        }
        S3Auth::Open => true,
    };
    let service = HandleError::new(b.build(), |e: s3s::HttpError| async move {
        tracing::warn!(error = ?e, "s3 gateway: a request failed outside S3's error handling");
        (StatusCode::INTERNAL_SERVER_ERROR, "S3 gateway error")
    });
    let r = axum::Router::new().fallback_service(service);
    if open {
        r.layer(axum::middleware::map_request(|req| async move {
            auth::strip_signature(req)
        }))
    } else {
        r
    }
}

//! `pipeline-server`: the store's one owner as a server, and the client that talks to it.
//!
//! A [`router()`] serves a versioned HTTP/JSON API (`/api/v1/...`) over one
//! [`pipeline_core::pps::Engine`] (and through it its store): repos, branches, commits, files,
//! pipelines, jobs, datums, logs, secrets. Its OpenAPI document is served at
//! `/api/v1/openapi.json` and kept in the repo as `pipeline-server/openapi.json`. A host
//! application can embed the router in its own axum server; `pipectl serve` runs it on the
//! store's Unix socket (and optionally TCP with a bearer token), and every other `pipectl`
//! command is a [`Client`]: of that server when one runs, otherwise of the same router in its
//! own process for the length of one command.
//!
//! | module | what |
//! |---|---|
//! | `error` | the one error shape (`kind` + message) and the HTTP status of each kind |
//! | `extract` | body, query and path extractors whose rejections are API errors |
//! | `state` | what handlers share: the engine, who runs jobs, the change signal |
//! | `routes` | one module per resource, each handler with its OpenAPI description |
//! | `router` | the whole API and its OpenAPI document |
//! | `console` | the web console: HTML pages over the same engine, served by the same router |
//! | `client` | the client: in-process, Unix socket or TCP, one method per route |
//! | `server` | [`Server`]: the store's one owner (`pipectl serve`): listeners, runner, clean stop |
//! | `listen` | the owner-only Unix socket, TCP, per-connection limits (header size and time) |
//! | `auth` | the bearer token of TCP listeners: its file, the middleware |
//! | `s3` | the S3 gateway (`pipectl serve --s3`): repos as `BRANCH.REPO` buckets for any S3 client |
//! | `runner` | the background runner: pending jobs, crons and triggers, woken by writes |
//! | `shutdown` | 503 `unavailable` once a stop began |
//!
//! Crates, and why: `axum` (the tokio project's HTTP framework: routing, extractors, SSE) on
//! `hyper` (the HTTP implementation under it, also our client over Unix sockets, which
//! higher-level clients lack); `utoipa` with `utoipa-axum` derive the OpenAPI document from
//! the handlers themselves, so the document cannot drift from the routes; `s3s` for the S3
//! gateway (the S3 protocol, SigV4 and S3's XML errors as a hyper service, generated from AWS's
//! API models: we write only the operations over the store).

pub mod auth;
pub mod client;
pub mod console;
pub mod error;
pub mod extract;
pub mod listen;
pub mod router;
pub mod routes;
pub mod runner;
pub mod s3;
pub mod server;
pub mod shutdown;
pub mod spout;
pub mod state;

pub use client::{Client, ClientError, ClientResult};
pub use error::{ApiError, ErrorBody, ErrorKind};
pub use router::{openapi, router};
pub use server::{ServeError, ServeOptions, Server};
pub use state::{AppState, JobRunner};

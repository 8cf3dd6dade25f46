//! The client of the API: the same requests whether the server lives in this process
//! (`pipectl`'s embedded mode), behind the store's Unix socket, or at a TCP address.
//!
//! Every method is one request; errors the server answered with come back as
//! [`ClientError::Api`] with the server's kind and message, so a caller prints and maps them
//! the same way in every mode.

mod admin;
mod branches;
mod commit_history;
mod commit_sets;
mod commit_verbs;
mod commits;
mod datums;
mod defaults;
mod events;
mod files;
mod jobs;
mod logs;
mod ndjson;
mod pipelines;
mod projects;
mod repos;
mod secrets;
mod transactions;

pub use files::{BodyOutcome, Download, body_from_reader, tar_body_of_dir};
pub use ndjson::NdjsonStream;

use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::ServiceExt;

use crate::error::{ErrorBody, ErrorKind};
use crate::state::AppState;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error("{message}")]
    Api {
        /// Its kind.
        kind: ErrorKind,
        /// Its message.
        message: String,
    },
    /// The server could not be reached.
    #[error("cannot reach the server at {target}")]
    Connect {
        /// The socket path or address.
        target: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The exchange broke off (the connection closed, a body could not be read).
    #[error("talking to the server at {target}: {message}")]
    Protocol {
        /// The socket path or address.
        target: String,
        /// What went wrong.
        message: String,
    },
}

impl ClientError {
    /// The kind the server gave, or [`ErrorKind::Internal`] for transport failures.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ClientError::Api { kind, .. } => *kind,
            _ => ErrorKind::Internal,
        }
    }
}

/// The result of a client call.
pub type ClientResult<T> = Result<T, ClientError>;

/// Where the server is.
#[derive(Clone)]
enum Endpoint {
    /// In this process: requests go straight to the router.
    InProcess(Router),
    /// Behind a Unix socket.
    Unix(PathBuf),
    /// At `host:port` over TCP.
    Tcp(String),
}

/// A client of one server. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    endpoint: Endpoint,
    token: Option<String>,
}

impl Client {
    /// A client of a server in this process (no socket; the same handlers).
    pub fn in_process(state: AppState) -> Self {
        Client {
            endpoint: Endpoint::InProcess(crate::router::router(state)),
            token: None,
        }
    }

    /// A client of the server behind the Unix socket at `path`.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        Client {
            endpoint: Endpoint::Unix(path.into()),
            token: None,
        }
    }

    /// A client of the server at `url` (`http://HOST:PORT`, or `unix:PATH`) sending `token`
    /// as a bearer token when given.
    pub fn from_url(url: &str, token: Option<String>) -> Result<Self, ClientError> {
        let endpoint = if let Some(path) = url.strip_prefix("unix:") {
            Endpoint::Unix(PathBuf::from(path))
        } else if let Some(rest) = url.strip_prefix("http://") {
            let authority = rest.trim_end_matches('/');
            if authority.is_empty() || authority.contains('/') {
                return Err(bad_url(url));
            }
            Endpoint::Tcp(authority.to_string())
        } else {
            return Err(bad_url(url));
        };
        Ok(Client { endpoint, token })
    }

    /// A description of where the server is, for messages.
    pub fn target(&self) -> String {
        match &self.endpoint {
            Endpoint::InProcess(_) => "in-process".into(),
            Endpoint::Unix(p) => format!("unix:{}", p.display()),
            Endpoint::Tcp(a) => format!("http://{a}"),
        }
    }

    /// Whether the server is in this process.
    pub fn is_in_process(&self) -> bool {
        matches!(self.endpoint, Endpoint::InProcess(_))
    }

    /// Sends one request; the response's body streams.
    pub async fn send(&self, mut req: Request<Body>) -> ClientResult<Response<Body>> {
        if let Some(t) = &self.token
            && let Ok(v) = HeaderValue::from_str(&format!("Bearer {t}"))
        {
            req.headers_mut().insert(header::AUTHORIZATION, v);
        }
        match &self.endpoint {
            Endpoint::InProcess(router) => Ok(router
                .clone()
                .oneshot(req)
                .await
                .unwrap_or_else(|never| match never {})),
            Endpoint::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|source| self.connect_error(source))?;
                self.exchange(stream, req).await
            }
            Endpoint::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr.as_str())
                    .await
                    .map_err(|source| self.connect_error(source))?;
                let _ = stream.set_nodelay(true);
                self.exchange(stream, req).await
            }
        }
    }

    /// One HTTP/1.1 exchange over a fresh connection.
    async fn exchange<S>(&self, stream: S, mut req: Request<Body>) -> ClientResult<Response<Body>>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| self.protocol(e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        if !req.headers().contains_key(header::HOST) {
            req.headers_mut()
                .insert(header::HOST, HeaderValue::from_static("localhost"));
        }
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| self.protocol(e))?;
        Ok(resp.map(Body::new))
    }

    fn connect_error(&self, source: std::io::Error) -> ClientError {
        ClientError::Connect {
            target: self.target(),
            source,
        }
    }

    fn protocol(&self, e: impl std::fmt::Display) -> ClientError {
        ClientError::Protocol {
            target: self.target(),
            message: e.to_string(),
        }
    }

    /// Sends a request with an optional JSON body; returns the response when its status is a
    /// success, or the server's error.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> ClientResult<Response<Body>> {
        let mut builder = Request::builder().method(method).uri(path);
        let body = match body {
            Some(b) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(b).map_err(|e| self.protocol(e))?)
            }
            None => Body::empty(),
        };
        let req = builder.body(body).map_err(|e| self.protocol(e))?;
        self.checked(self.send(req).await?).await
    }

    /// `resp` when its status is a success; otherwise the error its body carries.
    pub async fn checked(&self, resp: Response<Body>) -> ClientResult<Response<Body>> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let bytes = self.bytes(resp).await?;
        Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => ClientError::Api {
                kind: b.error.kind,
                message: b.error.message,
            },
            Err(_) => ClientError::Api {
                kind: kind_of_status(status),
                message: format!("{status}: {}", String::from_utf8_lossy(&bytes)),
            },
        })
    }

    /// The whole body of a response.
    pub async fn bytes(&self, resp: Response<Body>) -> ClientResult<bytes::Bytes> {
        Ok(resp
            .into_body()
            .collect()
            .await
            .map_err(|e| self.protocol(e))?
            .to_bytes())
    }

    /// A request with an optional JSON body whose answer is JSON.
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> ClientResult<T> {
        let resp = self.request(method, path, body).await?;
        let bytes = self.bytes(resp).await?;
        serde_json::from_slice(&bytes).map_err(|e| self.protocol(format!("bad answer: {e}")))
    }
}

/// No JSON body (for [`Client::request`] and [`Client::json`]).
pub const NO_BODY: Option<&()> = None;

fn bad_url(url: &str) -> ClientError {
    ClientError::Api {
        kind: ErrorKind::Invalid,
        message: format!("server {url:?}: expected http://HOST:PORT or unix:PATH"),
    }
}

fn kind_of_status(status: StatusCode) -> ErrorKind {
    match status.as_u16() {
        400 | 422 => ErrorKind::Invalid,
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Forbidden,
        404 => ErrorKind::NotFound,
        405 => ErrorKind::MethodNotAllowed,
        409 => ErrorKind::Conflict,
        413 => ErrorKind::TooLarge,
        503 => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    }
}

/// One path segment, percent-encoded (a repo `project/name` becomes `project%2Fname`).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query string from `(name, value)` pairs (values percent-encoded), with its `?`; empty
/// when there are none.
pub fn query(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", seg(v)))
        .collect();
    format!("?{}", parts.join("&"))
}

//! Where a `-f` spec comes from: a file, standard input (`-`), or an `http://` / `https://`
//! URL (as `pachctl create pipeline -f URL`).
//!
//! Every failure is a [`ParseError::Io`] naming the file or URL, so `create`, `update`,
//! `--dry-run` and `validate` report an unreadable URL exactly as an unreadable file. A URL is
//! fetched with GET (redirects followed, at most [`MAX_REDIRECTS`]) within [`FETCH_TIMEOUT`]
//! for the whole exchange; anything but a 2xx answer is an error ([`FetchError`]); the body
//! may be at most [`spec::parse::MAX_FILE_BYTES`]. A password in the URL is never printed.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::{StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;
use pipeline_core::spec::{self, ParseError};

/// How long fetching a spec URL may take, connection, redirects and body included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Most redirects followed for one spec URL.
pub const MAX_REDIRECTS: usize = 5;

/// The name standard input is reported under.
pub const STDIN_NAME: &str = "<stdin>";

/// Why a spec URL could not be fetched (the URL itself is named by the enclosing
/// [`ParseError::Io`]).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Not a URL `hyper` can request.
    #[error("not a valid URL: {0}")]
    BadUrl(String),
    /// No TLS trust roots could be loaded for an `https://` URL.
    #[error("no TLS root certificates could be loaded")]
    Tls(#[source] std::io::Error),
    /// The request could not be sent or answered (DNS, refused connection, TLS, reset).
    #[error("no answer")]
    Request(#[source] hyper_util::client::legacy::Error),
    /// The server answered with a status other than 2xx.
    #[error("the server answered HTTP {0}")]
    Status(StatusCode),
    /// A redirect without a usable `Location`, or too many of them.
    #[error("{0}")]
    Redirect(String),
    /// The exchange took longer than the timeout.
    #[error("no complete answer within {} s", .0.as_secs_f32())]
    Timeout(Duration),
    /// The body was cut short or is larger than a spec file may be.
    #[error(
        "reading the answer failed (a spec may be at most {} bytes)",
        spec::parse::MAX_FILE_BYTES
    )]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Whether a `-f` argument names a URL rather than a file.
pub fn is_url(arg: &Path) -> bool {
    arg.to_str()
        .is_some_and(|s| s.starts_with("http://") || s.starts_with("https://"))
}

/// `url` for messages: any `user:password@` is dropped.
pub fn display_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// The name a `-f` argument is reported under (`<stdin>`, the URL without a password, or
/// the path).
pub fn display_name(arg: &Path) -> String {
    if arg.as_os_str() == "-" {
        STDIN_NAME.to_string()
    } else if is_url(arg) {
        display_url(&arg.to_string_lossy())
    } else {
        arg.display().to_string()
    }
}

/// Reads the spec a `-f` argument names: its bytes and the name to report them under.
/// Files are read whole (the parser refuses one over the size limit); standard input and URLs
/// up to one byte over the limit, so the parser's size error applies to them too.
pub fn read(arg: &Path) -> Result<(Vec<u8>, String), ParseError> {
    let name = display_name(arg);
    let io = |source| ParseError::Io {
        path: name.clone(),
        source,
    };
    if arg.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .take(spec::parse::MAX_FILE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        return Ok((bytes, name));
    }
    if is_url(arg) {
        let bytes = fetch(&arg.to_string_lossy(), FETCH_TIMEOUT).map_err(|e| {
            let kind = match e {
                FetchError::Timeout(_) => std::io::ErrorKind::TimedOut,
                _ => std::io::ErrorKind::Other,
            };
            io(std::io::Error::new(kind, e))
        })?;
        return Ok((bytes, name));
    }
    if std::fs::metadata(arg).map_err(io)?.is_dir() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "is a directory",
        )));
    }
    Ok((std::fs::read(arg).map_err(io)?, name))
}

/// Fetches `url` (GET, redirects followed) within `timeout`; the body of a 2xx answer.
pub fn fetch(url: &str, timeout: Duration) -> Result<Vec<u8>, FetchError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| FetchError::Body(Box::new(e)))?;
    rt.block_on(async {
        tokio::time::timeout(timeout, follow(url))
            .await
            .map_err(|_| FetchError::Timeout(timeout))?
    })
}

/// GETs `url`, following redirects, and reads the body.
async fn follow(url: &str) -> Result<Vec<u8>, FetchError> {
    let mut uri: Uri = url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| FetchError::BadUrl(e.to_string()))?;
    for _ in 0..=MAX_REDIRECTS {
        let resp = if uri.scheme_str() == Some("https") {
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_native_roots()
                .map_err(FetchError::Tls)?
                .https_or_http()
                .enable_http1()
                .build();
            get(https, &uri).await?
        } else {
            get(HttpConnector::new(), &uri).await?
        };
        let status = resp.status();
        if status.is_redirection() {
            uri = redirect_target(&uri, &resp)?;
            continue;
        }
        if !status.is_success() {
            return Err(FetchError::Status(status));
        }
        let body = Limited::new(resp.into_body(), spec::parse::MAX_FILE_BYTES);
        let bytes = body.collect().await.map_err(FetchError::Body)?;
        return Ok(bytes.to_bytes().to_vec());
    }
    Err(FetchError::Redirect(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

/// One GET through `connector`.
async fn get<C>(
    connector: C,
    uri: &Uri,
) -> Result<hyper::Response<hyper::body::Incoming>, FetchError>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let client: Client<C, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    client.get(uri.clone()).await.map_err(FetchError::Request)
}

/// Where a 3xx answer points (a relative `Location` resolved against `from`).
fn redirect_target<B>(from: &Uri, resp: &hyper::Response<B>) -> Result<Uri, FetchError> {
    let bad = || FetchError::Redirect(format!("HTTP {} without a usable Location", resp.status()));
    let location = resp
        .headers()
        .get(hyper::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(bad)?;
    let target: Uri = location.parse().map_err(|_| bad())?;
    if target.scheme().is_some() {
        return Ok(target);
    }
    let mut parts = from.clone().into_parts();
    parts.path_and_query = target.path_and_query().cloned();
    Uri::from_parts(parts).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    /// A one-connection server on loopback that reads a request and answers `response`
    /// (or, with `None`, never answers); returns its base URL.
    fn serve_once(response: Option<String>) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            match response {
                Some(r) => {
                    let _ = s.write_all(r.as_bytes());
                }
                None => std::thread::sleep(Duration::from_secs(5)),
            }
        });
        format!("http://{addr}")
    }

    #[test]
    fn urls_are_told_from_paths_and_passwords_are_not_shown() {
        assert!(is_url(Path::new("https://h/x.yaml")));
        assert!(is_url(Path::new("http://h/x.yaml")));
        assert!(!is_url(Path::new("http.yaml")));
        assert!(!is_url(Path::new("ftp://h/x")));
        assert_eq!(
            display_url("https://u:secret@h:8/p@q?x"),
            "https://h:8/p@q?x"
        );
        assert_eq!(display_url("http://h/p@q"), "http://h/p@q");
        assert_eq!(display_name(Path::new("-")), STDIN_NAME);
    }

    #[test]
    fn a_2xx_answer_is_the_spec_and_anything_else_an_error() {
        let ok = serve_once(Some(
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello".into(),
        ));
        assert_eq!(fetch(&format!("{ok}/s"), FETCH_TIMEOUT).unwrap(), b"hello");
        let missing = serve_once(Some(
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into(),
        ));
        let e = fetch(&format!("{missing}/s"), FETCH_TIMEOUT).unwrap_err();
        assert!(matches!(e, FetchError::Status(s) if s == 404), "{e}");
        assert!(e.to_string().contains("404"), "{e}");
    }

    #[test]
    fn redirects_are_followed_and_loops_end() {
        let target = serve_once(Some(
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".into(),
        ));
        let hop = serve_once(Some(format!(
            "HTTP/1.1 302 Found\r\nlocation: {target}/real\r\ncontent-length: 0\r\n\r\n"
        )));
        assert_eq!(fetch(&format!("{hop}/s"), FETCH_TIMEOUT).unwrap(), b"ok");
        let nowhere = serve_once(Some(
            "HTTP/1.1 301 Moved\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into(),
        ));
        let e = fetch(&format!("{nowhere}/s"), FETCH_TIMEOUT).unwrap_err();
        assert!(matches!(e, FetchError::Redirect(_)), "{e}");
    }

    #[test]
    fn a_silent_server_times_out_and_a_closed_port_is_no_answer() {
        let silent = serve_once(None);
        let e = fetch(&format!("{silent}/s"), Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, FetchError::Timeout(_)), "{e}");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = fetch(&format!("http://127.0.0.1:{port}/s"), FETCH_TIMEOUT).unwrap_err();
        assert!(matches!(e, FetchError::Request(_)), "{e}");
        let e = fetch("http://[::1", FETCH_TIMEOUT).unwrap_err();
        assert!(matches!(e, FetchError::BadUrl(_)), "{e}");
    }

    #[test]
    fn a_body_over_the_spec_limit_is_refused() {
        let len = spec::parse::MAX_FILE_BYTES + 10;
        let big = serve_once(Some(format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n{}",
            "a".repeat(len)
        )));
        let e = fetch(&format!("{big}/s"), FETCH_TIMEOUT).unwrap_err();
        assert!(matches!(e, FetchError::Body(_)), "{e}");
    }
}

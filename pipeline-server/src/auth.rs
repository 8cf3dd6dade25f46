//! Who may talk to the server over TCP: a bearer token created at the first start, kept in
//! the store (`api.token`, mode 0600), required on every request by [`require_token`]. The
//! owner-only Unix socket needs none.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorKind};

/// The token file's name inside the store directory.
pub const TOKEN_FILE: &str = "api.token";

/// Random bytes in a token (shown as twice as many hex digits).
pub const TOKEN_BYTES: usize = 32;

/// Why the token could not be read or created.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Reading, creating or writing the token file failed.
    #[error("token file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file holds something other than a token.
    #[error("token file {path}: expected {} hex digits; delete it to make a new token", TOKEN_BYTES * 2)]
    Malformed {
        /// The file.
        path: PathBuf,
    },
}

/// The token file of the store at `root`.
pub fn token_path(root: &Path) -> PathBuf {
    root.join(TOKEN_FILE)
}

/// The store's token: read from `<root>/api.token`, or created there (32 random bytes as hex,
/// mode 0600 from the start) when there is none yet.
pub fn load_or_create_token(root: &Path) -> Result<String, TokenError> {
    let path = token_path(root);
    let io = |source| TokenError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut f) => {
            let token = random_hex(TOKEN_BYTES).map_err(io)?;
            f.write_all(token.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
            let token = std::fs::read_to_string(&path).map_err(io)?;
            let token = token.trim();
            if token.len() != TOKEN_BYTES * 2 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(TokenError::Malformed { path });
            }
            Ok(token.to_string())
        }
        Err(e) => Err(io(e)),
    }
}

/// `n` bytes from the kernel's random source, as lowercase hex.
pub(crate) fn random_hex(n: usize) -> std::io::Result<String> {
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `a` equals `b`, in a time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware: answers 401 `unauthorized` (and never runs the handler) unless the request
/// carries `Authorization: Bearer <token>` or the console's session cookie holding the same
/// token. The console's sign-in page and assets are open; other console pages redirect a
/// browser without the cookie to the sign-in page.
///
/// API requests that change something (`/api/` with a method other than GET or HEAD) take the
/// bearer token only: a browser sends the cookie with any request another site makes it send,
/// so the cookie alone may change data only through the console's forms, which also check
/// the CSRF token.
pub async fn require_token(
    State(token): State<Arc<str>>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let open = path == "/login" || path.starts_with("/assets/");
    let safe_method = matches!(*req.method(), Method::GET | Method::HEAD);
    let api_write = path.starts_with("/api/") && !safe_method;
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let cookie = crate::console::session::cookie_token(req.headers());
    let given = if api_write { bearer } else { bearer.or(cookie) };
    let console_page = !path.starts_with("/api/") && req.method() == Method::GET;
    let login = || {
        let next = req
            .uri()
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/");
        let to = format!("/login?next={}", crate::console::view::enc(next));
        axum::response::Redirect::to(&to).into_response()
    };
    match given {
        Some(t) if constant_time_eq(t.as_bytes(), token.as_bytes()) => {}
        _ if open => {}
        _ if console_page => return login(),
        Some(_) => return unauthorized("wrong bearer token"),
        None if api_write && cookie.is_some() => {
            return unauthorized(
                "API requests that change something need `Authorization: Bearer <token>`; \
                 the console's sign-in cookie is accepted only for reads and the console's forms",
            );
        }
        None => {
            return unauthorized(
                "this listener requires `Authorization: Bearer <token>` (`pipectl serve --print-token` shows it)",
            );
        }
    }
    req.extensions_mut()
        .insert(crate::console::session::RequiredToken(token));
    next.run(req).await
}

fn unauthorized(message: &str) -> Response {
    let mut resp = ApiError::new(ErrorKind::Unauthorized, message).into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_whole_tokens_only() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn a_token_is_created_once_owner_only_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let t = load_or_create_token(dir.path()).unwrap();
        assert_eq!(t.len(), 64);
        let mode = std::fs::metadata(token_path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create_token(dir.path()).unwrap(), t);
        std::fs::write(token_path(dir.path()), "nope").unwrap();
        assert!(matches!(
            load_or_create_token(dir.path()),
            Err(TokenError::Malformed { .. })
        ));
    }
}

//! Who may use the console, and proof that a form came from it.
//!
//! - **Signing in** (TCP listeners with a token): `/login` takes the API token and sets it as
//!   an `HttpOnly`, `SameSite=Strict` cookie; [`crate::auth::require_token`] accepts that
//!   cookie for console pages, console actions and API reads, never for API writes (those
//!   take the bearer token only). Pages requested without it redirect to `/login`. The Unix
//!   socket and `--no-auth` listeners need no sign-in.
//! - **CSRF**: every console form carries the server's random CSRF token
//!   ([`crate::AppState::csrf`]); an action without it is refused with 403, whatever the
//!   listener, so another site cannot make a signed-in browser (or one on a `--no-auth`
//!   loopback listener) press a button.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::view::{Crumb, Html, shell, with_headers};
use crate::auth::constant_time_eq;
use crate::error::{ApiError, ErrorKind};
use crate::state::AppState;

/// The session cookie's name; its value is the API token.
pub const COOKIE: &str = "pipectl_token";

/// A new random CSRF token (64 hex digits): from the kernel's random source, or, should that
/// fail, from the standard library's randomly seeded hasher keys.
pub fn new_csrf_token() -> String {
    crate::auth::random_hex(crate::auth::TOKEN_BYTES).unwrap_or_else(|_| {
        (0..4)
            .map(|i| {
                let mut h = RandomState::new().build_hasher();
                h.write_u32(i);
                format!("{:016x}", h.finish())
            })
            .collect()
    })
}

/// The token in a request's session cookie, if any.
pub fn cookie_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim())
}

/// The fields every console action form carries.
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    /// The CSRF token.
    #[serde(default)]
    pub csrf: String,
    /// `rerun`: `all` or `failed` (default).
    #[serde(default)]
    pub mode: Option<String>,
}

impl ActionForm {
    /// Refuses (403 `forbidden`) a form without the server's CSRF token.
    pub fn check(&self, state: &AppState) -> Result<(), ApiError> {
        if constant_time_eq(self.csrf.as_bytes(), state.csrf().as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorKind::Forbidden,
                "this action needs the console's form token: reload the page and press the button again",
            ))
        }
    }
}

/// `?next=` of the login page.
#[derive(Debug, Deserialize)]
pub struct Next {
    /// Where to go after signing in (a path on this server).
    #[serde(default)]
    pub next: Option<String>,
}

/// A `next` that stays on this server (a path, not `//host` or a URL).
fn local_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

/// `GET /login`: the token form.
pub async fn login_form(Query(q): Query<Next>) -> Html {
    Html(login_page(local_next(q.next.as_deref()), None))
}

fn login_page(next: &str, error: Option<&str>) -> maud::Markup {
    shell(
        "Sign in",
        &[Crumb::here("sign in")],
        html! {
            div.login {
                h1 { "Sign in" }
                p { "This server needs its API token. "
                    code { "pipectl serve --print-token" } " shows it." }
                @if let Some(e) = error { p.error-message { (e) } }
                form method="post" action="/login" {
                    input type="hidden" name="next" value=(next);
                    label for="token" { "Token" }
                    input #token type="password" name="token" autocomplete="current-password" required;
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// The API token.
    #[serde(default)]
    pub token: String,
    /// Where to go next.
    #[serde(default)]
    pub next: Option<String>,
}

/// The token the TCP listener requires (`None`: no sign-in needed), set by the server as an
/// extension of the request.
#[derive(Debug, Clone)]
pub struct RequiredToken(pub std::sync::Arc<str>);

/// `POST /login`: checks the token and sets the session cookie.
pub async fn login(
    State(_s): State<AppState>,
    required: Option<axum::Extension<RequiredToken>>,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = local_next(f.next.as_deref()).to_string();
    let Some(axum::Extension(RequiredToken(token))) = required else {
        return Redirect::to(&next).into_response();
    };
    if !constant_time_eq(f.token.trim().as_bytes(), token.as_bytes()) {
        let page = login_page(&next, Some("That is not this server's token."));
        return with_headers((StatusCode::UNAUTHORIZED, page.into_string()).into_response());
    }
    let mut resp = Redirect::to(&next).into_response();
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_server() {
        assert_eq!(local_next(Some("/pipelines/x")), "/pipelines/x");
        assert_eq!(local_next(Some("//evil.example/")), "/");
        assert_eq!(local_next(Some("https://evil.example/")), "/");
        assert_eq!(local_next(Some("/\\evil.example")), "/");
        assert_eq!(local_next(None), "/");
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; pipectl_token=abc; b=2"),
        );
        assert_eq!(cookie_token(&h), Some("abc"));
    }

    #[test]
    fn csrf_tokens_are_random() {
        assert_ne!(new_csrf_token(), new_csrf_token());
        assert_eq!(new_csrf_token().len(), 64);
    }
}

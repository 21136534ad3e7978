//! The browser side: the login form, sessions and the dashboard.
//!
//! A person logs in by pasting an API token (`keytrail token create`) into
//! the form at `/login`; the session that follows acts with that token's
//! name and role. The session cookie is `HttpOnly` and `SameSite=Strict`
//! (and `Secure` with `--secure-cookies`), and only a random id: the
//! store keeps the sessions (table `sessions`, by the SHA-256 of that id),
//! so a restart of serve, or several serve instances, keep them; each
//! request checks that the session has not expired and that its token is
//! still live. Every request that changes something and comes
//! with the cookie must carry the session's CSRF token in `X-CSRF-Token`
//! (the dashboard reads it from `/api/v1/me`); the login form has one of
//! its own (a double-submit cookie). Login attempts are limited per IP.
//!
//! The dashboard is plain HTML, CSS and JavaScript embedded in the binary
//! (`assets/`): no build step, no CDN, nothing fetched at run time but the
//! API. It writes every value with `textContent`, never as HTML.

use crate::{ApiError, AppState};
use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Router, routing::post};
use keytrail_store::ApiToken;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Name of the session cookie.
const SESSION_COOKIE: &str = "keytrail_session";
/// Name of the login form's CSRF cookie.
const LOGIN_COOKIE: &str = "keytrail_login";
/// How long a session lasts.
const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Login attempts one IP may make per window, and the window.
pub const LOGIN_ATTEMPTS: usize = 10;
const LOGIN_WINDOW: Duration = Duration::from_secs(60);

const INDEX_HTML: &str = include_str!("../assets/index.html");
const LOGIN_HTML: &str = include_str!("../assets/login.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");
const FAVICON_SVG: &str = include_str!("../assets/favicon.svg");

/// Recent login attempts per IP (the sessions themselves are in the
/// store).
#[derive(Default)]
pub(crate) struct Sessions {
    attempts: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

fn random_hex() -> String {
    let mut raw = [0u8; 32];
    rand::fill(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest(id: &str) -> String {
    Sha256::digest(id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Equal, in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

impl AppState {
    /// The request's live session, if its cookie names one: the token it
    /// acts with and its CSRF token. `Err` 401 when the cookie names a
    /// session that expired, was ended or whose token was revoked.
    pub(crate) async fn session(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<(ApiToken, String)>, ApiError> {
        let Some(id) = cookie(headers, SESSION_COOKIE).filter(|i| !i.is_empty()) else {
            return Ok(None);
        };
        let key = digest(&id);
        match self.with_store(move |s| s.session(&key)).await? {
            Some(found) => Ok(Some(found)),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the session expired or was ended, or the token it was opened with was revoked: log in again at /login",
            )),
        }
    }

    /// The token a request's session acts with; `writes`: the request
    /// changes something, so it must carry the session's CSRF token.
    pub(crate) async fn session_token(
        &self,
        headers: &HeaderMap,
        writes: bool,
    ) -> Result<Option<ApiToken>, ApiError> {
        let Some((token, csrf)) = self.session(headers).await? else {
            return Ok(None);
        };
        if writes {
            let sent = headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !same(sent, &csrf) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "csrf",
                    "a change made with a session cookie needs the session's CSRF token in `X-CSRF-Token` (from /api/v1/me)",
                ));
            }
        }
        Ok(Some(token))
    }
}

impl Sessions {
    /// Count one login attempt from `ip`; false when it is over the limit.
    fn attempt(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        attempts.retain(|_, q| {
            q.back()
                .is_some_and(|t| now.duration_since(*t) < LOGIN_WINDOW)
        });
        let q = attempts.entry(ip).or_default();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= LOGIN_WINDOW)
        {
            q.pop_front();
        }
        if q.len() >= LOGIN_ATTEMPTS {
            return false;
        }
        q.push_back(now);
        true
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/assets/app.js", get(|| asset("text/javascript", APP_JS)))
        .route("/assets/style.css", get(|| asset("text/css", STYLE_CSS)))
        .route("/favicon.svg", get(|| asset("image/svg+xml", FAVICON_SVG)))
}

async fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

async fn index() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX_HTML,
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn cookie_header(state: &AppState, name: &str, value: &str, max_age: u64, path: &str) -> String {
    let secure = if state.inner.options.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// The login page, with a fresh CSRF token in the form and in a cookie.
fn login_response(state: &AppState, status: StatusCode, message: &str) -> Response {
    let csrf = random_hex();
    let notice = if message.is_empty() {
        String::new()
    } else {
        format!("<p class=\"notice\" role=\"alert\">{}</p>", escape(message))
    };
    let page = LOGIN_HTML
        .replace("{{CSRF}}", &csrf)
        .replace("{{NOTICE}}", &notice);
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie_header(state, LOGIN_COOKIE, &csrf, 3600, "/login"))
    {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn login_page(State(state): State<AppState>) -> Response {
    login_response(&state, StatusCode::OK, "")
}

#[derive(serde::Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    if !state.inner.sessions.attempt(peer.ip()) {
        let mut r = login_response(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Too many login attempts from {}: at most {LOGIN_ATTEMPTS} a minute. Wait a minute and try again.",
                peer.ip()
            ),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return r;
    }
    let Ok(Form(form)) = form else {
        return login_response(
            &state,
            StatusCode::BAD_REQUEST,
            "The form was not sent whole.",
        );
    };
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same(&expected, &form.csrf) {
        return login_response(
            &state,
            StatusCode::FORBIDDEN,
            "The login form expired or came from another site: try again.",
        );
    }
    let token = form.token.trim().to_string();
    if token.is_empty() {
        return login_response(&state, StatusCode::UNAUTHORIZED, "Paste an API token.");
    }
    let found = match state.with_store(move |s| s.token(&token)).await {
        Ok(f) => f,
        Err(e) => return login_response(&state, e.status, &e.message),
    };
    let Some(found) = found else {
        return login_response(
            &state,
            StatusCode::UNAUTHORIZED,
            "Unknown or revoked token (make one with `keytrail token create`).",
        );
    };
    let id = random_hex();
    let csrf = random_hex();
    let key = digest(&id);
    let token_id = found.id;
    if let Err(e) = state
        .with_store(move |s| s.create_session(&key, token_id, &csrf, SESSION_TTL))
        .await
    {
        return login_response(&state, e.status, &e.message);
    }
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    for c in [
        cookie_header(&state, SESSION_COOKIE, &id, SESSION_TTL.as_secs(), "/"),
        cookie_header(&state, LOGIN_COOKIE, "", 0, "/login"),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

#[derive(serde::Deserialize)]
struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let sent = form.map(|Form(f)| f.csrf).unwrap_or_default();
    match state.session(&headers).await.ok().flatten().map(|(_, c)| c) {
        Some(csrf) if same(&csrf, &sent) => {}
        Some(_) => {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "logging out needs the session's CSRF token",
            )
            .into_response();
        }
        None => {}
    }
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        let key = digest(&id);
        let _ = state.with_store(move |s| s.end_session(&key)).await;
    }
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie_header(&state, SESSION_COOKIE, "", 0, "/")) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// Headers on every response: nothing but this origin's scripts and
/// styles run, no framing, no caching of what the API answers.
pub(crate) async fn security_headers(req_path: axum::http::Uri, mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !req_path.path().starts_with("/assets/") {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

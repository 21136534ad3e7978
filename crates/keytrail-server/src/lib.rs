//! `keytrail serve`: the store over HTTP. A JSON API under `/api/v1`
//! (findings with filters and paging, one finding with its locations,
//! verification, blast radius and history, triage by `PATCH`, runs,
//! posture findings, alerts and exposure records), described by the
//! OpenAPI document at `/api/v1/openapi.json`.
//!
//! Every route but the OpenAPI document needs an API token
//! (`Authorization: Bearer kttok_…`, made by `keytrail token create`; the
//! store keeps its SHA-256) with the route's role: 401 without a valid
//! token, 403 without the role. Errors are JSON `{"error": {"code",
//! "message"}}`. Nothing served holds a secret: the store holds none, and
//! the API writes its own shapes, field by field.
//!
//! This crate calls keytrail-store's typed API on tokio's blocking pool;
//! it never writes SQL.

mod api;
mod error;
mod web;

pub use error::ApiError;
pub use web::LOGIN_ATTEMPTS;

use axum::Router;
use keytrail_store::{ApiToken, ErrorKind, OpenOptions, Role, Store, StoreError};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Open connections kept for reuse, at most.
const IDLE_CONNECTIONS: usize = 16;

/// What every request shares: the store's location and a pool of open
/// connections to it.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    location: String,
    idle: Mutex<Vec<Store>>,
    /// Login attempts per IP (the sessions are in the store).
    sessions: web::Sessions,
    options: ServeOptions,
}

/// How the server behaves beyond its store.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Mark the session cookie `Secure` (browsers then send it over HTTPS
    /// only): set it when a reverse proxy terminates TLS in front.
    pub secure_cookies: bool,
    /// PostgreSQL: the longest one statement of a request may run (then
    /// the request answers 503 `database_timeout` and nothing is written);
    /// `None`: the server's own setting.
    pub statement_timeout: Option<Duration>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The state goes when the server stops, on one of the runtime's
        // threads; PostgreSQL's synchronous client blocks on a runtime of
        // its own when it closes, which tokio refuses there. Close the
        // connections on a plain thread.
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|p| p.into_inner()));
        if !idle.is_empty() {
            let _ = std::thread::spawn(move || drop(idle)).join();
        }
    }
}

impl AppState {
    /// State for the store at `location`, opened once now: a store that
    /// cannot be opened (unreachable, too new, not keytrail's) is an error
    /// before the server listens.
    pub fn open(location: &str) -> Result<AppState, StoreError> {
        AppState::open_with(location, ServeOptions::default())
    }

    /// [`AppState::open`] with options.
    pub fn open_with(location: &str, options: ServeOptions) -> Result<AppState, StoreError> {
        let store = Store::open_with(location, &open_options(&options))?;
        Ok(AppState {
            inner: Arc::new(Inner {
                location: location.to_string(),
                idle: Mutex::new(vec![store]),
                sessions: web::Sessions::default(),
                options,
            }),
        })
    }

    /// Run `f` with a connection, on tokio's blocking pool. A connection
    /// whose database went away is dropped, not reused: the next request
    /// opens a new one.
    pub(crate) async fn with_store<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let mut store = match pooled {
                Some(s) => s,
                None => Store::open_with(&inner.location, &open_options(&inner.options))?,
            };
            let out = f(&mut store);
            let mut idle = inner.idle.lock().unwrap_or_else(|p| p.into_inner());
            match &out {
                // The server went away: the other idle connections went
                // with it. The next request opens a new one.
                Err(e) if e.kind == ErrorKind::Unreachable => idle.clear(),
                Err(e) if matches!(e.kind, ErrorKind::Corrupt | ErrorKind::Other) => {}
                _ if idle.len() < IDLE_CONNECTIONS => idle.push(store),
                _ => {}
            }
            drop(idle);
            out
        })
        .await
        .map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("the request's database work failed: {e}"),
            )
        })?
        .map_err(ApiError::from)
    }

    /// The token a request presents, if the store knows it and it has at
    /// least `need`.
    pub(crate) async fn authorize(
        &self,
        headers: &axum::http::HeaderMap,
        need: Role,
    ) -> Result<ApiToken, ApiError> {
        self.authorize_as(headers, need, false).await
    }

    /// [`AppState::authorize`] for a request that changes something: a
    /// browser session must also send its CSRF token (`X-CSRF-Token`).
    pub(crate) async fn authorize_write(
        &self,
        headers: &axum::http::HeaderMap,
        need: Role,
    ) -> Result<ApiToken, ApiError> {
        self.authorize_as(headers, need, true).await
    }

    async fn authorize_as(
        &self,
        headers: &axum::http::HeaderMap,
        need: Role,
        writes: bool,
    ) -> Result<ApiToken, ApiError> {
        use axum::http::StatusCode;
        let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
            // No token: a browser session, if the request has one.
            // (The store's session is live only while its token is: revoking
            // the token ends its sessions at once.)
            if let Some(found) = self.session_token(headers, writes).await? {
                return check_role(found, need);
            }
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "no credentials: send `Authorization: Bearer TOKEN` (make one with `keytrail token create`), or log in at /login",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "the Authorization header is not `Bearer TOKEN`",
                )
            })?
            .to_string();
        let found = self.with_store(move |s| s.token(&token)).await?;
        let Some(found) = found else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "unknown or revoked token",
            ));
        };
        check_role(found, need)
    }
}

/// 403 unless `found` has at least `need`.
fn check_role(found: ApiToken, need: Role) -> Result<ApiToken, ApiError> {
    if found.role < need {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this route needs the role `{need}`; the token `{}` has `{}`",
                found.name, found.role
            ),
        ));
    }
    Ok(found)
}

fn open_options(options: &ServeOptions) -> OpenOptions {
    OpenOptions {
        wait: Duration::from_secs(5),
        statement_timeout: options.statement_timeout,
        ..OpenOptions::default()
    }
}

/// The application: every route under `/api/v1`, the login and the
/// dashboard.
pub fn router(state: AppState) -> Router {
    api::routes()
        .merge(web::routes())
        .layer(axum::middleware::map_response(web::security_headers))
        .with_state(state)
}

/// The router as a service that knows each connection's peer address (the
/// login rate limit counts attempts per IP).
fn service(
    state: AppState,
) -> axum::extract::connect_info::IntoMakeServiceWithConnectInfo<Router, SocketAddr> {
    router(state).into_make_service_with_connect_info::<SocketAddr>()
}

/// A server running on a thread of its own (tests, benchmarks): stopped
/// when dropped.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("keytrail-serve")
        .build()
}

/// Start serving the store at `db` on `listen` (port 0 picks one) on a
/// thread of its own; returns once it listens.
pub fn spawn(db: &str, listen: SocketAddr) -> Result<Running, String> {
    spawn_with(db, listen, ServeOptions::default())
}

/// [`spawn`] with options.
pub fn spawn_with(db: &str, listen: SocketAddr, options: ServeOptions) -> Result<Running, String> {
    let state = AppState::open_with(db, options).map_err(|e| e.to_string())?;
    let rt = runtime().map_err(|e| format!("cannot start the runtime: {e}"))?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(listen))
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        rt.block_on(async move {
            let _ = axum::serve(listener, service(state))
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
    });
    Ok(Running {
        addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}

/// Serve the store at `db` on `listen` until Ctrl-C or SIGTERM (requests
/// under way are finished). `ready` is called once it listens, with the
/// address.
pub fn run(
    db: &str,
    listen: SocketAddr,
    options: ServeOptions,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), String> {
    let state = AppState::open_with(db, options).map_err(|e| e.to_string())?;
    let rt = runtime().map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        ready(addr);
        axum::serve(listener, service(state))
            .with_graceful_shutdown(shutdown())
            .await
            .map_err(|e| format!("serving on {addr}: {e}"))
    })
}

async fn shutdown() {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(2);
    let on_ctrl_c = tx.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = on_ctrl_c.send(()).await;
        }
    });
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut s) = signal(SignalKind::terminate()) {
            s.recv().await;
            let _ = tx.send(()).await;
        }
    });
    rx.recv().await;
}

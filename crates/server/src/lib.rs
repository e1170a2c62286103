//! Owns `errand serve`: the HTTP API under `/api/` and the per-session event stream (Server-Sent Events that
//! replay from a sequence number), guarded by a per-install token and Host/Origin checks. Does not hold agent
//! logic: it reads and acts through `errand-store` (and, for running tasks, the agent's session).
//!
//! The API starts tasks (built by the [`errand_agent::SessionBuilder`] the front end hands it), answers their plans and approvals,
//! steers and stops them, and serves what the store holds: sessions, transcripts and usage, event streams
//! (live, even for a task another errand process runs, since the stream tails the store), changes, undo and
//! the trash. It serves MCP Apps' views to the desk, each under the policy its server declared and sandboxed
//! away from the desk's origin, and hands their calls to the session that showed them.
//!
//! It is also errand's daemon: with a builder it continues sessions left waiting by a process that died, and
//! its [`scheduler`] fires recurring tasks ([`cron`] says when) exactly once however many servers share the
//! store.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), errand_server::ServerError> {
//! let store = std::sync::Arc::new(errand_store::Store::open("/tmp/errand.db".as_ref()).map_err(errand_server::ServerError::from)?);
//! let config = errand_server::ServerConfig::new("127.0.0.1:7357".parse().map_err(|_| errand_server::ServerError::BadAddress)?, "secret-token".into());
//! errand_server::serve(config, store, None).await
//! # }
//! ```

mod api;
mod apps;
pub mod cron;
mod guard;
mod live;
mod preview;
pub mod scheduler;
mod schedules;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use errand_store::{Store, StoreError};

pub use api::router;
pub use live::TaskRequest;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The per-install token every request must carry.
    pub token: String,
    /// How often the event stream looks for new events of a running session.
    pub poll_interval: std::time::Duration,
    /// The folder the page's folder picker may browse (folder names only): the home directory by default.
    pub browse_root: Option<std::path::PathBuf>,
}

impl ServerConfig {
    /// A config with the default polling interval.
    pub fn new(addr: SocketAddr, token: String) -> Self {
        let browse_root = std::env::var_os("HOME").map(std::path::PathBuf::from);
        Self { addr, token, poll_interval: std::time::Duration::from_millis(200), browse_root }
    }
}

/// Creates a new random token (32 lower-case hex digits).
pub fn new_token() -> String {
    (0..32).map(|_| char::from_digit(fastrand::u32(..16), 16).unwrap_or('0')).collect()
}

/// What the server shares with its handlers.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) store: Arc<Store>,
    pub(crate) config: Arc<ServerConfig>,
    /// Builds the tasks it starts; `None` serves a read-only API (no task can be started).
    pub(crate) builder: Option<errand_agent::SessionBuilder>,
    pub(crate) running: Arc<live::Running>,
    /// Fires schedules by hand ("run now"); `None` with no builder.
    pub(crate) scheduler: Option<Arc<scheduler::Scheduler>>,
}

/// Serves the API on `config.addr` until the process ends.
pub async fn serve(
    config: ServerConfig,
    store: Arc<Store>,
    builder: Option<errand_agent::SessionBuilder>,
) -> Result<(), ServerError> {
    listen(config).await?.serve(store, builder).await
}

/// Binds `config.addr` (port 0 lets the system choose one) without serving yet, so the caller can learn the
/// real address first (`errand serve` records it for `errand run --detach`).
pub async fn listen(mut config: ServerConfig) -> Result<Listening, ServerError> {
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| ServerError::Bind { addr: config.addr, source })?;
    // The Host check compares with the configured port, so it must be the port actually bound.
    config.addr = listener.local_addr().map_err(|source| ServerError::Bind { addr: config.addr, source })?;
    Ok(Listening { listener, config })
}

/// A bound server that does not serve yet: see [`listen`].
pub struct Listening {
    listener: tokio::net::TcpListener,
    config: ServerConfig,
}

impl Listening {
    /// The address it listens on, with the port the system chose.
    pub fn addr(&self) -> SocketAddr {
        self.config.addr
    }

    /// Serves the API until the process ends. With a builder, it first takes over and continues the sessions
    /// whose process died while they waited in the inbox, so answers given while no process waited for them
    /// are acted on; sessions another live process runs are left alone.
    pub async fn serve(
        self,
        store: Arc<Store>,
        builder: Option<errand_agent::SessionBuilder>,
    ) -> Result<(), ServerError> {
        self.serve_until(store, builder, std::future::pending()).await
    }

    /// [`Listening::serve`] until `shutdown` completes (SIGTERM, Ctrl-C). Then the sessions it runs end
    /// cleanly: one waiting in the inbox is left waiting, for the next `errand serve` to continue when its
    /// answer comes; one at work is stopped as Ctrl-C stops it (nothing half-done: its journal holds every
    /// change), recorded `cancelled` with why, within [`SHUTDOWN_GRACE`].
    pub async fn serve_until(
        self,
        store: Arc<Store>,
        builder: Option<errand_agent::SessionBuilder>,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), ServerError> {
        let running = Arc::<live::Running>::default();
        let scheduler_stop = tokio_util::sync::CancellationToken::new();
        let mut scheduler = None;
        if let Some(builder) = &builder {
            running.recover(&store, builder).await;
            let started = scheduler::Scheduler::new(store.clone(), builder.clone(), running.clone())
                .map_err(ServerError::Scheduler)?;
            let started = Arc::new(started);
            tokio::spawn(started.clone().run(scheduler_stop.clone()));
            scheduler = Some(started);
        }
        let app = api::router_with(store.clone(), self.config, builder, running.clone(), scheduler);
        // The event streams never end by themselves, so the server is dropped rather than drained.
        let served = tokio::select! {
            served = axum::serve(self.listener, app) => served.map_err(|source| ServerError::Serve { source }),
            () = shutdown => Ok(()),
        };
        scheduler_stop.cancel();
        running.shut_down(&store, SHUTDOWN_GRACE).await;
        served
    }
}

/// How long sessions at work have to stop when the server is asked to end.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Why the server could not start, or why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address is taken or not allowed.
    #[error("cannot listen on {addr}: {source}; choose another with --addr")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// `--addr` is not an address.
    #[error("--addr must be an address with a port, like 127.0.0.1:7357")]
    BadAddress,
    /// The server stopped.
    #[error("the server stopped: {source}")]
    Serve {
        /// Why.
        source: std::io::Error,
    },
    /// The scheduler's settings (`ERRAND_CLOCK`, `ERRAND_FIRE_LEASE`, `ERRAND_SCHEDULER_TICK`) are wrong.
    #[error("the scheduler cannot start: {0}")]
    Scheduler(String),
    /// The request lacks a valid token.
    #[error(
        "missing or wrong token: open the address `errand serve --open` prints, or send Authorization: Bearer TOKEN"
    )]
    Unauthorized,
    /// The Host or Origin header does not name this server.
    #[error("{0}")]
    Forbidden(String),
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The session, call or file asked about does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request does not fit the task's state (no plan waiting, task not running).
    #[error("{0}")]
    Conflict(String),
    /// The store failed or has no such thing.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Blocking work failed unexpectedly.
    #[error("internal error: {0}")]
    Internal(String),
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let status = match &self {
            ServerError::Unauthorized => StatusCode::UNAUTHORIZED,
            ServerError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServerError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServerError::Conflict(_) => StatusCode::CONFLICT,
            ServerError::NotFound(_) => StatusCode::NOT_FOUND,
            ServerError::Store(
                StoreError::NoSuchSession { .. }
                | StoreError::NoSuchTrashEntry { .. }
                | StoreError::NoSuchQuestion { .. }
                | StoreError::NoSuchSchedule { .. },
            ) => StatusCode::NOT_FOUND,
            ServerError::Store(
                StoreError::AmbiguousSession { .. }
                | StoreError::AmbiguousSchedule { .. }
                | StoreError::TrashOccupied { .. }
                | StoreError::AlreadyAnswered { .. }
                | StoreError::NothingAsked { .. },
            ) => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(serde_json::json!({ "error": self.to_string() }))).into_response()
    }
}

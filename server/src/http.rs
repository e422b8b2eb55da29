//! HTTP on the signaling port: the WebSocket upgrade and the browser peer's
//! page on `/` (ours, or a `--static-dir`), `/healthz` and `/metrics`.

use std::sync::Arc;

use axum::Router;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tower_http::services::ServeDir;

use crate::config::OriginPolicy;
use crate::session::{self, Shared};

#[derive(Clone, Debug)]
pub(crate) struct AppState {
    pub(crate) shared: Shared,
    /// One permit per open WebSocket: the connection limit.
    pub(crate) slots: Arc<Semaphore>,
    /// Open WebSockets, so shutdown can wait for their close handshakes.
    pub(crate) sockets: TaskTracker,
    pub(crate) static_dir: Option<ServeDir>,
    pub(crate) origins: OriginPolicy,
}

pub(crate) fn router(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/", get(root))
        .route(
            "/callprobe.js",
            get(|State(app): State<AppState>, request: Request| {
                page_script(app, request, PAGE_SCRIPT)
            }),
        )
        .route(
            "/datachannel.js",
            get(|State(app): State<AppState>, request: Request| {
                page_script(app, request, DATA_CHANNEL_SCRIPT)
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics));
    if let Some(dir) = state.static_dir.clone() {
        router = router.fallback_service(dir);
    }
    router.with_state(state)
}

/// `/` is both the WebSocket endpoint (the tutorial's client connects to the
/// bare origin) and the page.
async fn root(
    State(app): State<AppState>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    request: Request,
) -> Response {
    match upgrade {
        Ok(upgrade) => {
            let origin = request.headers().get(header::ORIGIN);
            let origin = origin.map(|o| o.to_str().unwrap_or("(not text)"));
            if app.origins.allows(origin) {
                app.accept(upgrade)
            } else {
                app.shared.metrics.origins_refused.inc();
                let origin = origin
                    .unwrap_or_default()
                    .chars()
                    .take(100)
                    .collect::<String>();
                tracing::info!(%origin, "WebSocket upgrade refused: origin not allowed");
                (
                    StatusCode::FORBIDDEN,
                    format!("origin {origin:?} is not allowed to connect (--allowed-origin)\n"),
                )
                    .into_response()
            }
        }
        // It asked for a WebSocket and got it wrong: say why.
        Err(rejection) if request.headers().contains_key(header::UPGRADE) => {
            rejection.into_response()
        }
        Err(_) => match app.static_dir {
            Some(dir) => match dir.oneshot(request).await {
                Ok(response) => response.into_response(),
                Err(never) => match never {},
            },
            None => (
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                PAGE_HTML,
            )
                .into_response(),
        },
    }
}

/// Our browser peer: built in, so every server can be called from a browser
/// (`--static-dir` replaces it with a page of your own).
const PAGE_HTML: &str = include_str!("../page/index.html");
const PAGE_SCRIPT: &str = include_str!("../page/callprobe.js");
/// The page's data channel (its messages, their checks and echoes).
const DATA_CHANNEL_SCRIPT: &str = include_str!("../page/datachannel.js");

/// One of the page's scripts: ours built in, or the static directory's.
async fn page_script(app: AppState, request: Request, built_in: &'static str) -> Response {
    match app.static_dir {
        Some(dir) => match dir.oneshot(request).await {
            Ok(response) => response.into_response(),
            Err(never) => match never {},
        },
        None => (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            built_in,
        )
            .into_response(),
    }
}

async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.shared.metrics.render(),
    )
        .into_response()
}

impl AppState {
    fn accept(&self, upgrade: WebSocketUpgrade) -> Response {
        let limits = &self.shared.limits;
        let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() else {
            self.shared.metrics.connections_rejected.inc();
            tracing::warn!(limit = limits.max_connections, "connection limit reached");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "connection limit of {} reached; try again later\n",
                    limits.max_connections
                ),
            )
                .into_response();
        };
        let shared = self.shared.clone();
        let open = self.sockets.token();
        upgrade
            .max_message_size(limits.max_message_bytes)
            .max_frame_size(limits.max_message_bytes)
            .on_failed_upgrade(|error| tracing::debug!(%error, "WebSocket upgrade failed"))
            .on_upgrade(move |socket| async move {
                session::serve(socket, shared).await;
                drop((permit, open));
            })
    }
}

//! Portcullis: an OAuth 2.1 authorization server and a scope-gated MCP
//! resource server in one process.

pub mod admin;
pub mod client_addr;
pub mod config;
pub mod display_text;
pub mod federation;
pub mod gateway;
pub mod identity;
pub mod input;
pub mod keep_alive;
pub mod machine_admin;
pub mod mcp;
pub mod metrics;
pub mod oauth;
pub mod provisioning;
pub mod ratelimit;
pub mod request_id;
pub mod serve;
pub mod shared_limits;
pub mod state;
pub mod store;
pub mod web;

use std::{future::Future, sync::Arc};

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request, State},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::net::TcpListener;
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
};

pub use config::Config;
pub use state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Keys(#[from] oauth::keys::KeyError),
    #[error(transparent)]
    Gateway(#[from] gateway::GatewayError),
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens the store (applying migrations), loads or creates signing keys, and
/// starts the background refresh of revocations and keys.
pub async fn build(config: Config) -> Result<AppState, StartError> {
    let store = store::Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let keys = oauth::keys::Keys::load_or_create(&config.keys_dir)?;
    let catalog = gateway::load_configured(&config).map_err(gateway::GatewayError::from)?;
    let mac = identity::mac::MacKey::new(store.server_secret("browser_mac").await?.as_bytes());
    let mut state =
        AppState::new(config, store, keys, &catalog).map_err(gateway::GatewayError::from)?;
    state.mac = std::sync::Arc::new(mac);
    if let Some(url) = state.config.redis_url.clone() {
        let timeout = std::time::Duration::from_millis(state.config.redis_timeout_ms);
        let shared =
            shared_limits::SharedLimits::new(&url, &state.config.redis_key_prefix, timeout)
                .map_err(|e| config::ConfigError::Invalid {
                    origin: "redis_url".into(),
                    message: e.to_string(),
                })?;
        state.share_limits(Arc::new(shared));
    }
    state.revoked.refresh(&state.store).await?;
    spawn_refresher(state.clone());
    oauth::revocation::spawn_listener(state.clone());
    spawn_catalog_reloader(state.clone());
    Ok(state)
}

/// Keeps this instance's view of revoked grants and signing keys current.
fn spawn_refresher(state: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(state.config.revocation_poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match state.revoked.refresh(&state.store).await {
                Ok(applied) => {
                    for revoked_at in applied {
                        state.metrics.revocation_applied(revoked_at);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not refresh revoked grants"),
            }
            if let Err(e) = state.keys.reload_if_changed() {
                tracing::warn!(error = %e, "could not reload signing keys");
            }
        }
    });
}

/// Reloads the gateway catalog on SIGHUP; a bad file keeps the old tools.
fn spawn_catalog_reloader(state: AppState) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; the catalog will not reload");
            return;
        };
        while hangups.recv().await.is_some() {
            if state.config.catalog.is_none() {
                continue;
            }
            // Off the async threads: an OpenAPI document may be fetched
            // and every tool's schema compiled.
            let reloading = state.clone();
            match tokio::task::spawn_blocking(move || reloading.reload_catalog()).await {
                Ok(Ok(n)) => tracing::info!(tools = n, "gateway catalog reloaded"),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "gateway catalog not reloaded; keeping the previous tools")
                }
                Err(e) => tracing::error!(error = %e, "gateway catalog reload failed"),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = state;
}

pub fn app(state: AppState) -> Router {
    let pages = Router::new()
        .merge(oauth::page_router())
        .route("/login", get(web::login::show).post(web::login::submit))
        .route("/login/start/{provider}", get(federation::start))
        .route("/login/callback/{provider}", get(federation::callback))
        .route(
            "/login/handoff",
            get(federation::handoff::get).post(federation::handoff::post),
        )
        .route(
            "/logout",
            get(web::login::confirm_logout).post(web::login::logout),
        )
        .route("/reset", get(web::reset::show).post(web::reset::submit))
        .route("/setup", get(web::setup::show).post(web::setup::submit))
        .merge(web::console::router())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            input::refuse_unstorable_page,
        ))
        .layer(middleware::from_fn(page_errors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            web::brand::fill,
        ))
        .layer(middleware::from_fn(web::security_headers));
    let public = oauth::public_router()
        .layer(middleware::from_fn_with_state(
            state.clone(),
            input::refuse_unstorable_oauth,
        ))
        .layer(middleware::from_fn(oauth_errors));
    Router::new()
        .merge(public)
        .merge(pages)
        .merge(mcp::router(state.clone()))
        .merge(provisioning::router(state.clone()))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/static/style.css", get(web::stylesheet))
        .route("/static/brand.css", get(web::brand::stylesheet))
        .route("/static/console.js", get(web::console_script))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track_http,
        ))
        .layer(request_id::trace_layer())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(middleware::from_fn(request_id::drop_malformed))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a request handler panicked");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }))
        .layer(middleware::from_fn(keep_alive::close_if_body_unread))
        .with_state(state)
}

async fn not_found() -> Response {
    web::secured(
        web::PageError {
            status: StatusCode::NOT_FOUND,
            title: "Page not found",
            message: "There is nothing at this address.".into(),
        }
        .into_response(),
    )
}

/// `GET /readyz`: 200 `{"status":"ready","checks":{"database":"ok"}}` when
/// every dependency answers (`"redis"` is checked too when configured; if it
/// fails the answer stays 200 with `"status":"degraded"`); 503 naming the
/// failing ones, or
/// `"status":"shutting_down"` from the moment a shutdown begins, so a load
/// balancer stops sending new requests while in-flight ones finish.
async fn readyz(State(state): State<AppState>) -> Response {
    if state.draining.load(std::sync::atomic::Ordering::Acquire) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "status": "shutting_down", "checks": {} })),
        )
            .into_response();
    }
    let database =
        match tokio::time::timeout(std::time::Duration::from_secs(2), state.store.ping()).await {
            Ok(Ok(())) => "ok",
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness check failed: database");
                "unreachable"
            }
            Err(_) => "timed out",
        };
    let ready = database == "ok";
    let mut checks = serde_json::json!({ "database": database });
    // Redis down degrades the limits (rate limits open, sign-in closed) but
    // takes no instance out of the balancer: every instance shares it, so
    // that would turn a degraded limit into an outage.
    let mut degraded = false;
    if let Some(shared) = &state.shared_limits {
        let redis = match shared.ping().await {
            Ok(()) => "ok",
            Err(_) => {
                degraded = true;
                "unreachable"
            }
        };
        checks["redis"] = redis.into();
    }
    let status = match (ready, degraded) {
        (false, _) => "unavailable",
        (true, true) => "degraded",
        (true, false) => "ready",
    };
    (
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        axum::Json(serde_json::json!({ "status": status, "checks": checks })),
    )
        .into_response()
}

fn is_plain_rejection(response: &Response) -> bool {
    let status = response.status();
    (status.is_client_error() || status.is_server_error())
        && !response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with("text/html"))
}

/// Framework rejections (oversized or malformed bodies, wrong methods) on the
/// OAuth endpoints become RFC 6749 JSON errors.
async fn oauth_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if !is_plain_rejection(&response) {
        return response;
    }
    let status = response.status();
    let description = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large",
        StatusCode::METHOD_NOT_ALLOWED => "this method is not allowed here",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported content type",
        _ if status.is_server_error() => "the server could not complete the request",
        _ => "the request is malformed",
    };
    let error = if status.is_server_error() {
        "server_error"
    } else {
        "invalid_request"
    };
    let mut replaced = oauth::error::OAuthError::new(status, error, description).into_response();
    if let Some(allow) = response.headers().get(header::ALLOW) {
        replaced.headers_mut().insert(header::ALLOW, allow.clone());
    }
    replaced
}

/// The same for pages, which answer people with a readable page.
async fn page_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if !is_plain_rejection(&response) {
        return response;
    }
    let status = response.status();
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "The form you sent is too large.",
        StatusCode::METHOD_NOT_ALLOWED => "This page cannot be used that way.",
        _ if status.is_server_error() => {
            "The server could not complete the request. Please try again."
        }
        _ => "The form you sent could not be read. Go back and try again.",
    };
    web::PageError {
        status,
        title: "This request cannot be completed",
        message: message.into(),
    }
    .into_response()
}

/// Serves `state` on `listener` until `shutdown` completes, then flushes the
/// audit log so no recorded call is lost. Connections are bounded in time and
/// number by the configured limits ([`serve`]); handlers see the peer as
/// `ConnectInfo<SocketAddr>`.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    serve::raise_fd_limit();
    let audit = state.audit.clone();
    let api_keys = state.api_keys.clone();
    let limits = serve::ConnectionLimits::from_config(&state.config);
    let grace = state.config.shutdown_grace;
    let draining = Arc::clone(&state.draining);
    let (began_tx, began_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        // /readyz answers 503 from now on.
        draining.store(true, std::sync::atomic::Ordering::Release);
        let _ = began_tx.send(());
    };
    let serving = serve::serve(listener, app(state), limits, shutdown);
    // In-flight requests get `shutdown_grace` once shutdown begins.
    let grace_over = async move {
        if began_rx.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = serving => {}
        () = grace_over => {
            tracing::warn!(?grace, "shutdown grace elapsed; closing the connections still open");
        }
    }
    audit.flush().await;
    api_keys.flush().await;
    Ok(())
}

//! Prometheus metrics, served at `/metrics` on their own listener
//! (`metrics_listen`) in the text exposition format 0.0.4.
//!
//! The `prometheus` crate (TiKV's) is used rather than the `metrics` facade
//! because its registry is a value: each [`AppState`] owns its own, so two
//! servers in one process (every integration test) count separately and
//! nothing is global.
//!
//! Every label value comes from a bounded set: route templates (never raw
//! paths), known MCP methods, tool names of the current tool set (otherwise
//! `unknown`), upstream names from the catalog, fixed reasons and outcomes.

use std::time::Duration;

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::state::AppState;

/// Latency buckets in seconds, from a cached `tools/list` (tens of µs) to a
/// slow upstream.
const LATENCY: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The MCP methods counted by name; anything else is `other`.
const MCP_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "server/discover",
    "notifications/initialized",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
];

/// Why an `/mcp` request was not authenticated, as the
/// `portcullis_auth_failures_total{reason}` label.
#[derive(Debug, Clone, Copy)]
pub enum AuthFailure {
    Missing,
    InvalidToken,
    Expired,
    Revoked,
    UnknownKey,
    WrongOrg,
    NotMember,
}

impl AuthFailure {
    fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::InvalidToken => "invalid_token",
            AuthFailure::Expired => "expired",
            AuthFailure::Revoked => "revoked",
            AuthFailure::UnknownKey => "unknown_key",
            AuthFailure::WrongOrg => "wrong_org",
            AuthFailure::NotMember => "not_member",
        }
    }
}

/// Every metric this instance exports.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    mcp_requests: IntCounterVec,
    tool_calls: IntCounterVec,
    tool_duration: HistogramVec,
    upstream_requests: IntCounterVec,
    upstream_duration: HistogramVec,
    tokens_issued: IntCounterVec,
    auth_failures: IntCounterVec,
    rate_limited: IntCounterVec,
    registrations: IntCounter,
    cimd_fetches: IntCounterVec,
    db_connections: IntGaugeVec,
    revocation_lag: Histogram,
    redis_unavailable: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry =
            Registry::new_custom(Some("portcullis".into()), None).expect("a valid prefix");
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(LATENCY.to_vec()),
                labels,
            )
            .expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("unique metric");
            h
        };
        let registrations = IntCounter::new(
            "dcr_registrations_total",
            "Clients registered by Dynamic Client Registration (RFC 7591).",
        )
        .expect("valid metric");
        registry
            .register(Box::new(registrations.clone()))
            .expect("unique metric");
        let db_connections = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Database pool connections by state (idle, in_use), read at scrape time.",
            ),
            &["state"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(db_connections.clone()))
            .expect("unique metric");
        let revocation_lag = Histogram::with_opts(
            HistogramOpts::new(
                "revocation_propagation_seconds",
                "From a revocation on another instance to this instance applying it.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0,
            ]),
        )
        .expect("valid metric");
        registry
            .register(Box::new(revocation_lag.clone()))
            .expect("unique metric");
        let build = IntGaugeVec::new(
            Opts::new("build_info", "The running build; always 1."),
            &["version"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(build.clone()))
            .expect("unique metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        Metrics {
            http_requests: counter(
                "http_requests_total",
                "HTTP requests by route template, method and status.",
                &["route", "method", "status"],
            ),
            http_duration: histogram(
                "http_request_duration_seconds",
                "HTTP request latency by route template and method.",
                &["route", "method"],
            ),
            mcp_requests: counter(
                "mcp_requests_total",
                "Authenticated MCP messages by JSON-RPC method.",
                &["method"],
            ),
            tool_calls: counter(
                "tool_calls_total",
                "tools/call by tool, caller source and outcome.",
                &["tool", "source", "outcome"],
            ),
            tool_duration: histogram(
                "tool_call_duration_seconds",
                "tools/call latency by tool.",
                &["tool"],
            ),
            upstream_requests: counter(
                "upstream_requests_total",
                "Gateway calls to upstreams by upstream and HTTP status (0: no answer).",
                &["upstream", "status"],
            ),
            upstream_duration: histogram(
                "upstream_request_duration_seconds",
                "Gateway upstream latency by upstream.",
                &["upstream"],
            ),
            tokens_issued: counter(
                "tokens_issued_total",
                "Access tokens issued by grant type.",
                &["grant_type"],
            ),
            auth_failures: counter(
                "auth_failures_total",
                "Refused /mcp authentications by reason.",
                &["reason"],
            ),
            rate_limited: counter(
                "rate_limited_total",
                "Requests refused by a rate limit, by limit (tool, registration, sign_in).",
                &["limit"],
            ),
            redis_unavailable: counter(
                "redis_unavailable_total",
                "Limit decisions made without Redis (unreachable or slower than its timeout), by limit (tool and registration fail open, sign_in fails closed).",
                &["limit"],
            ),
            cimd_fetches: counter(
                "cimd_fetches_total",
                "Client ID Metadata Document fetches by result (ok, error).",
                &["result"],
            ),
            registrations,
            db_connections,
            revocation_lag,
            registry,
        }
    }

    pub fn mcp_request(&self, method: &str) {
        let method = MCP_METHODS
            .iter()
            .find(|m| **m == method)
            .copied()
            .unwrap_or("other");
        self.mcp_requests.with_label_values(&[method]).inc();
    }

    /// `tool` must be a name of the current tool set, or `unknown`.
    pub fn tool_call(&self, tool: &str, source: &str, outcome: &str, took: Duration) {
        self.tool_calls
            .with_label_values(&[tool, source, outcome])
            .inc();
        self.tool_duration
            .with_label_values(&[tool])
            .observe(took.as_secs_f64());
    }

    /// `status` is the upstream's HTTP status, or `None` when it never answered.
    pub fn upstream_call(&self, upstream: &str, status: Option<u16>, took: Duration) {
        let status = status.map_or_else(|| "0".to_owned(), |s| s.to_string());
        self.upstream_requests
            .with_label_values(&[upstream, &status])
            .inc();
        self.upstream_duration
            .with_label_values(&[upstream])
            .observe(took.as_secs_f64());
    }

    pub fn token_issued(&self, grant_type: &'static str) {
        self.tokens_issued.with_label_values(&[grant_type]).inc();
    }

    pub fn auth_failure(&self, reason: AuthFailure) {
        self.auth_failures
            .with_label_values(&[reason.as_str()])
            .inc();
    }

    /// `limit` is `tool`, `registration` or `sign_in`.
    /// A limit decision Redis did not answer in time.
    pub fn redis_unavailable(&self, limit: &'static str) {
        self.redis_unavailable.with_label_values(&[limit]).inc();
    }

    pub fn rate_limited(&self, limit: &'static str) {
        self.rate_limited.with_label_values(&[limit]).inc();
    }

    pub fn registration(&self) {
        self.registrations.inc();
    }

    pub fn cimd_fetch(&self, ok: bool) {
        self.cimd_fetches
            .with_label_values(&[if ok { "ok" } else { "error" }])
            .inc();
    }

    /// A revocation made at `revoked_at` (Unix seconds) applied now.
    pub fn revocation_applied(&self, revoked_at: i64) {
        let lag = (crate::store::now() - revoked_at).max(0);
        self.revocation_lag.observe(lag as f64);
    }

    /// A revocation announced by another instance `lag` ago, applied now.
    pub fn revocation_lag(&self, lag: std::time::Duration) {
        self.revocation_lag.observe(lag.as_secs_f64());
    }

    /// The text exposition of every metric, with the pool gauges read now.
    pub fn render(&self, state: &AppState) -> String {
        let (size, idle) = state.store.pool_connections();
        self.db_connections
            .with_label_values(&["idle"])
            .set(idle as i64);
        self.db_connections
            .with_label_values(&["in_use"])
            .set(i64::from(size).saturating_sub(idle as i64));
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into memory");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

/// Counts every HTTP request by its route template (`MatchedPath`, or
/// `unmatched`), method and status, with its latency.
pub async fn track_http(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // Nobody can scrape them: don't pay for per-request label lookups.
    if state.config.metrics_listen.is_none() {
        return next.run(request).await;
    }
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method: &'static str = match request.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "HEAD" => "HEAD",
        _ => "other",
    };
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let metrics = &state.metrics;
    metrics
        .http_requests
        .with_label_values(&[&route, method, response.status().as_str()])
        .inc();
    metrics
        .http_duration
        .with_label_values(&[&route, method])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`, for the metrics listener only (never the public one).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(state): State<AppState>| async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    state.metrics.render(&state),
                )
                    .into_response()
            }),
        )
        .with_state(state)
}

/// Serves [`router`] on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

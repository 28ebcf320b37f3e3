//! The MCP resource server (SPEC §4). A request passes, in order: CORS, the
//! Origin check, authentication ([`auth`]), then the [`endpoint`]: JSON-RPC
//! framing ([`jsonrpc`]), the `tools/call` gate for step-up and rate limits
//! ([`gate`]), cached answers for repeatable requests ([`answers`]), and
//! otherwise rmcp's Streamable HTTP transport and the handler ([`server`]),
//! whose tools ([`tools`]) are audited ([`audit`]).

pub mod answers;
pub mod apikeys;
pub mod audit;
pub mod auth;
pub(crate) mod cache;
pub mod endpoint;
pub mod gate;
pub mod jsonrpc;
pub mod members;
pub mod policy;
pub mod server;
pub mod tools;

use std::sync::Arc;

use axum::{
    Router,
    extract::{Request, State},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::any,
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::never::NeverSessionManager,
};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use crate::state::AppState;
use server::McpServer;

pub fn router(state: AppState) -> Router<AppState> {
    let public = url::Url::parse(state.config.issuer()).expect("public_url validated at load");
    let origins = Arc::new(OriginPolicy::new(&public, &state.config.allowed_origins));
    let request_headers = Arc::new(RequestHeaders::new(&state.config.org_header));
    // One rmcp service for every request: stateless, so one handler value
    // serves all of them (rmcp clones it per request; it is an `AppState`).
    let service = StreamableHttpService::new(
        {
            let server = McpServer::new(state.clone());
            move || Ok(server.clone())
        },
        Arc::new(NeverSessionManager::default()),
        transport_config(&state, &public),
    );
    let endpoint = Arc::new(endpoint::Endpoint::new(state.clone(), service));
    let serve = move |request: Request| Arc::clone(&endpoint).serve(request);
    // `route_layer`: these guard `/mcp` only; with `layer` they would also
    // wrap the fallback and answer every unknown path with a 401.
    Router::new()
        .route("/mcp", any(serve.clone()))
        .route("/mcp/", any(serve))
        .route_layer(middleware::from_fn(lenient_accept))
        .route_layer(middleware::from_fn_with_state(state, auth::authenticate))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&origins),
            check_origin,
        ))
        .route_layer(cors(origins))
        .route_layer(middleware::from_fn_with_state(
            request_headers,
            preflight_headers,
        ))
}

/// Stateless (any instance can answer any request) with JSON responses, and
/// rmcp's DNS-rebinding checks bound to our public host.
fn transport_config(state: &AppState, public: &url::Url) -> StreamableHttpServerConfig {
    let host = public.host_str().unwrap_or("localhost").to_owned();
    let port = public.port_or_known_default().unwrap_or(80);
    let mut hosts = vec![host.clone(), format!("{host}:{port}")];
    if let Some(bare) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        hosts.push(bare.to_owned());
    }
    // A loopback public URL is reached by any of loopback's names (a
    // newcomer's `http://localhost:8080` is also `127.0.0.1:8080`); these
    // cannot be a DNS-rebinding target, which always names a domain.
    if crate::oauth::redirect_uri::is_loopback_host(public) {
        for name in ["localhost", "127.0.0.1", "[::1]"] {
            hosts.push(name.to_owned());
            hosts.push(format!("{name}:{port}"));
        }
    }
    // An explicit port: rmcp treats a port-less entry as "any port" (deprecated).
    // Our own check (`check_origin`) runs first and is the policy; rmcp's is
    // kept as a second line with the same allowances.
    let mut origins = vec![
        format!("{}://{host}:{port}", public.scheme()),
        "http://localhost:*".to_owned(),
        "http://127.0.0.1:*".to_owned(),
        "http://[::1]:*".to_owned(),
    ];
    origins.extend(state.config.allowed_origins.iter().cloned());
    StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_allowed_hosts(hosts)
        .with_allowed_origins(origins)
        .with_max_request_body_bytes(state.config.max_body_bytes)
}

/// A browser page on another origin must not drive `/mcp` with a user's
/// ambient credentials (DNS rebinding, SPEC §4.1): refused before
/// authentication so the answer does not depend on the credential. Requests
/// without `Origin` (every non-browser client) pass.
async fn check_origin(
    State(allowed): State<Arc<OriginPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(origin) = request.headers().get(header::ORIGIN)
        && !allowed.allows(origin)
    {
        return jsonrpc::JsonRpcError::new(
            StatusCode::FORBIDDEN,
            serde_json::Value::Null,
            jsonrpc::JsonRpcError::INVALID_REQUEST,
            "Forbidden: Origin header is not allowed",
        )
        .into_response();
    }
    next.run(request).await
}

/// rmcp answers 406 unless a POST accepts both JSON and SSE, but clients that
/// send `*/*`, only `application/json` or no `Accept` at all are common, and
/// our stateless JSON answers suit them (SPEC §4.1: Accept is read leniently).
async fn lenient_accept(mut request: Request, next: Next) -> Response {
    if request.method() == Method::POST {
        let accept = request
            .headers()
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
            .to_ascii_lowercase();
        if !(accept.contains("application/json") && accept.contains("text/event-stream")) {
            request.headers_mut().insert(
                header::ACCEPT,
                HeaderValue::from_static("application/json, text/event-stream"),
            );
        }
    }
    next.run(request).await
}

/// SPEC §4.1. Preflights are answered here, before authentication, since
/// browsers send them without credentials. The allowed request headers are
/// mirrored from the preflight after [`preflight_headers`] kept only those
/// `/mcp` reads, so a family such as `Mcp-Param-*` can be allowed.
fn cors(origins: Arc<OriginPolicy>) -> CorsLayer {
    let name = |n: &'static str| HeaderName::from_static(n);
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |value: &HeaderValue, _| {
            origins.allows(value)
        }))
        // Stateless: GET and DELETE always answer 405, so a browser is not
        // told it may send them.
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([
            name("mcp-session-id"),
            header::WWW_AUTHENTICATE,
            name("mcp-protocol-version"),
        ])
        .max_age(std::time::Duration::from_secs(86400))
}

/// The request headers a browser may send to `/mcp`: every header it reads
/// or documents (SPEC §4.1), the configured organization header, and the
/// standard MCP headers of revision 2026-07-28 (`Mcp-Method`, `Mcp-Name`,
/// `Mcp-Param-*`).
struct RequestHeaders {
    org_header: HeaderName,
}

impl RequestHeaders {
    const FIXED: [&'static str; 8] = [
        "authorization",
        "content-type",
        "accept",
        "mcp-session-id",
        "mcp-protocol-version",
        "last-event-id",
        "mcp-method",
        "mcp-name",
    ];

    fn new(org_header: &str) -> RequestHeaders {
        RequestHeaders {
            org_header: HeaderName::try_from(org_header).expect("validated at load"),
        }
    }
}

/// Rewrites a preflight's `Access-Control-Request-Headers` to the headers
/// [`RequestHeaders`] allows: the fixed list, the org header, and any
/// `Mcp-Param-*` the browser asked for. The CORS layer mirrors exactly that,
/// so a browser may send every header `/mcp` reads and nothing else.
async fn preflight_headers(
    State(allowed): State<Arc<RequestHeaders>>,
    mut request: Request,
    next: Next,
) -> Response {
    if request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        let asked = request
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut names: Vec<String> = RequestHeaders::FIXED.map(str::to_owned).to_vec();
        names.push(allowed.org_header.as_str().to_owned());
        names.extend(
            asked
                .split(',')
                .map(|n| n.trim().to_ascii_lowercase())
                .filter(|n| {
                    n.starts_with("mcp-param-") && HeaderName::try_from(n.as_str()).is_ok()
                }),
        );
        if let Ok(value) = HeaderValue::from_str(&names.join(",")) {
            request
                .headers_mut()
                .insert(header::ACCESS_CONTROL_REQUEST_HEADERS, value);
        }
    }
    next.run(request).await
}

/// Which browser origins may call `/mcp`: our own, loopback pages (local
/// tools such as MCP Inspector; a DNS-rebinding page has its own attacker
/// origin, never a loopback one), and any configured in `allowed_origins`.
struct OriginPolicy {
    own: url::Origin,
    extra: Vec<url::Origin>,
}

impl OriginPolicy {
    fn new(public: &url::Url, extra: &[String]) -> OriginPolicy {
        let extra = extra
            .iter()
            .filter_map(|o| url::Url::parse(o).ok())
            .map(|u| u.origin())
            .collect();
        OriginPolicy {
            own: public.origin(),
            extra,
        }
    }

    fn allows(&self, value: &HeaderValue) -> bool {
        let Some(url) = value.to_str().ok().and_then(|o| url::Url::parse(o).ok()) else {
            return false;
        };
        let origin = url.origin();
        let loopback = url.scheme() == "http" && crate::oauth::redirect_uri::is_loopback_host(&url);
        origin == self.own || loopback || self.extra.contains(&origin)
    }
}

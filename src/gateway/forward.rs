//! Forwarding one tool call to its upstream. The caller's identity travels as
//! a short-lived JWT signed by Portcullis (verifiable against `/jwks.json`)
//! plus plain id headers; the caller's own token or API key never does —
//! this module is never handed it.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{
    catalog::{GatewayTool, Upstream},
    openapi::{BodyShape, Routing},
};
use crate::{
    identity::scope::ScopeSet,
    oauth::{jwt, keys::Keys},
    store,
};

/// Header carrying the identity JWT.
pub const IDENTITY_HEADER: &str = "x-portcullis-identity";
const IDENTITY_TTL_SECS: i64 = 60;
/// RFC 3986 unreserved characters stay as they are in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Who is calling, as the upstream is told.
pub struct Caller<'a> {
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub scopes: ScopeSet,
    pub source: &'a str,
    pub client_id: Option<&'a str>,
    pub api_key_id: Option<&'a str>,
}

#[derive(Serialize)]
struct IdentityClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: Uuid,
    org_id: Uuid,
    scope: String,
    source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key_id: Option<&'a str>,
    iat: i64,
    exp: i64,
    jti: Uuid,
}

#[derive(Debug)]
pub enum Forwarded {
    Success {
        text: String,
        structured: Option<Map<String, Value>>,
        status: u16,
    },
    /// Shown to the model as an `isError` result.
    Failure {
        message: String,
        status: Option<u16>,
    },
    /// The upstream asked us to slow down: clients should back off, not
    /// treat it as a token failure, so the MCP layer answers HTTP 503.
    RateLimited { retry_after: u64, status: u16 },
}

/// Where a forwarded call goes out from: the pooled client and the signer.
pub struct Sender<'a> {
    pub http: &'a reqwest::Client,
    pub keys: &'a Keys,
    pub issuer: &'a str,
    pub identities: &'a IdentityTokens,
}

/// Signed identity tokens, reused while at least half their life remains:
/// an RSA signature costs about a millisecond, which would otherwise be most
/// of the gateway's overhead on every call.
#[derive(Default)]
pub struct IdentityTokens {
    tokens: Mutex<HashMap<String, (String, i64)>>,
}

impl IdentityTokens {
    fn get_or_sign(&self, keys: &Keys, claims: &IdentityClaims<'_>) -> String {
        let now = claims.iat;
        // Everything the upstream learns from the token, so a reused token
        // says exactly what a fresh one would (apart from iat, exp and jti).
        let key = format!(
            "{}|{}|{}|{}|{}|{}|{}|{}",
            claims.aud,
            claims.sub,
            claims.org_id,
            claims.scope,
            claims.source,
            claims.client_id.unwrap_or(""),
            claims.api_key_id.unwrap_or(""),
            keys.active().kid
        );
        let mut tokens = self.tokens.lock().expect("lock");
        if let Some((token, exp)) = tokens.get(&key)
            && exp - now > IDENTITY_TTL_SECS / 2
        {
            return token.clone();
        }
        if tokens.len() > 10_000 {
            tokens.retain(|_, (_, exp)| *exp - now > IDENTITY_TTL_SECS / 2);
        }
        let token = jwt::sign(keys, "JWT", claims);
        tokens.insert(key, (token.clone(), claims.exp));
        token
    }
}

pub async fn forward(
    sender: &Sender<'_>,
    tool: &GatewayTool,
    caller: &Caller<'_>,
    args: Map<String, Value>,
) -> Forwarded {
    let args_value = Value::Object(args);
    if let Err(message) = tool.arguments.validate(&args_value) {
        return Forwarded::Failure {
            message: format!("Invalid arguments: {message}."),
            status: None,
        };
    }
    let Value::Object(mut args) = args_value else {
        unreachable!("constructed as an object")
    };

    let url = match target_url(tool, &mut args) {
        Ok(url) => url,
        Err(message) => {
            return Forwarded::Failure {
                message: format!("Invalid arguments: {message}."),
                status: None,
            };
        }
    };
    let upstream = &tool.upstream;
    let request = start_request(sender, upstream, tool.method.as_reqwest(), url, caller);
    let request = match &tool.routing {
        None if tool.method.has_body() => request.json(&Value::Object(args)),
        None => request.query(&query_pairs(&args)),
        Some(routing) => match routed(request, routing, args) {
            Ok(request) => request,
            Err(message) => {
                return Forwarded::Failure {
                    message: format!("Invalid arguments: {message}."),
                    status: None,
                };
            }
        },
    };
    exchange(upstream, request).await
}

/// A GET of a resource's upstream route (`resources/read`), with the same
/// identity and service headers as a tool call.
pub async fn read(
    sender: &Sender<'_>,
    upstream: &Upstream,
    url: url::Url,
    caller: &Caller<'_>,
) -> Forwarded {
    let request = start_request(sender, upstream, reqwest::Method::GET, url, caller);
    exchange(upstream, request).await
}

/// A request to `upstream` carrying who is calling and the configured
/// service headers, never the caller's own credential.
fn start_request(
    sender: &Sender<'_>,
    upstream: &Upstream,
    method: reqwest::Method,
    url: url::Url,
    caller: &Caller<'_>,
) -> reqwest::RequestBuilder {
    let now = store::now();
    let claims = IdentityClaims {
        iss: sender.issuer,
        aud: &upstream.audience,
        sub: caller.user_id,
        org_id: caller.org_id,
        scope: caller.scopes.mcp().to_string(),
        source: caller.source,
        client_id: caller.client_id,
        api_key_id: caller.api_key_id,
        iat: now,
        exp: now + IDENTITY_TTL_SECS,
        jti: Uuid::new_v4(),
    };
    let identity = sender.identities.get_or_sign(sender.keys, &claims);
    let mut request = sender
        .http
        .request(method, url)
        .timeout(upstream.timeout)
        .header(reqwest::header::ACCEPT, "application/json")
        .header(IDENTITY_HEADER, identity)
        .header("x-portcullis-user-id", caller.user_id.to_string())
        .header("x-portcullis-org-id", caller.org_id.to_string());
    for (name, value) in &upstream.headers {
        request = request.header(name, value);
    }
    request
}

/// Sends `request` and reads the answer within the upstream's limits.
async fn exchange(upstream: &Upstream, request: reqwest::RequestBuilder) -> Forwarded {
    let mut response = match request.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Forwarded::Failure {
                message: format!(
                    "The {} service did not answer within {}.",
                    upstream.name,
                    seconds(upstream.timeout)
                ),
                status: None,
            };
        }
        Err(e) => {
            tracing::warn!(upstream = %upstream.name, error = %e.without_url(), "upstream unreachable");
            return Forwarded::Failure {
                message: format!("The {} service could not be reached.", upstream.name),
                status: None,
            };
        }
    };
    let status = response.status().as_u16();
    if status == 429 {
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(1)
            .clamp(1, 3600);
        return Forwarded::RateLimited {
            retry_after,
            status,
        };
    }
    let is_json = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    let mut body = Vec::new();
    loop {
        match tokio::time::timeout(upstream.timeout, response.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                body.extend_from_slice(&chunk);
                if body.len() > upstream.max_response_bytes {
                    return Forwarded::Failure {
                        message: format!(
                            "The {} service answered with more than {} bytes; narrow the request.",
                            upstream.name, upstream.max_response_bytes
                        ),
                        status: Some(status),
                    };
                }
            }
            Ok(Ok(None)) => break,
            Ok(Err(_)) | Err(_) => {
                return Forwarded::Failure {
                    message: format!("The {} service broke off its answer.", upstream.name),
                    status: Some(status),
                };
            }
        }
    }
    let mut text = String::from_utf8_lossy(&body).into_owned();
    if text.is_empty() && (200..=299).contains(&status) {
        // HEAD and 204 answers: the status is the answer.
        text = format!(
            "The {} service answered {status} with no content.",
            upstream.name
        );
    }
    let json: Option<Value> = if is_json || text.trim_start().starts_with(['{', '[']) {
        serde_json::from_str(&text).ok()
    } else {
        None
    };
    match status {
        200..=299 => {
            let structured = json.map(|v| match v {
                Value::Object(map) => map,
                // structuredContent must be an object.
                other => Map::from_iter([("result".to_owned(), other)]),
            });
            Forwarded::Success {
                text,
                structured,
                status,
            }
        }
        400..=499 => Forwarded::Failure {
            message: format!(
                "Error ({status}): {}",
                client_error_message(json.as_ref(), &text)
            ),
            status: Some(status),
        },
        _ => {
            // Server errors can carry stack traces and hostnames: never shown.
            tracing::warn!(upstream = %upstream.name, status, "upstream server error");
            Forwarded::Failure {
                message: format!(
                    "Error ({status}): the {} service failed; try again later.",
                    upstream.name
                ),
                status: Some(status),
            }
        }
    }
}

/// The upstream URL for a call: the upstream's base URL and the tool's
/// declared path with each `{placeholder}` replaced by the caller's value,
/// taken out of `args`.
///
/// A caller's value is always exactly one path segment: every byte outside
/// RFC 3986's unreserved set is percent-encoded (so `/`, `?`, `#`, `%` stay
/// data), and `.` and `..` — also as `%2e` forms an upstream may decode —
/// are refused, since a URL parser removes dot segments (RFC 3986 §5.2.4,
/// and the WHATWG URL standard reads `%2e%2e` as `..`) and would move the
/// call to another route or out of a tenant's prefix. The built URL is then
/// checked to have the base's scheme, host and port, no query or fragment,
/// and the path exactly as built, so no value can change the route.
///
/// # Errors
/// A message naming the argument that is missing or not a single segment.
pub fn target_url(tool: &GatewayTool, args: &mut Map<String, Value>) -> Result<url::Url, String> {
    route_url(&tool.upstream.base_url, &tool.path, &tool.path_params, args)
}

/// [`target_url`] for any route: `path` under `base` with each of `params`
/// taken from `args`, under the same one-segment rules.
///
/// # Errors
/// A message naming the argument that is missing or not a single segment.
pub fn route_url(
    base: &url::Url,
    route: &str,
    params: &[String],
    args: &mut Map<String, Value>,
) -> Result<url::Url, String> {
    let mut path = base.path().trim_end_matches('/').to_owned();
    let mut rest = route;
    for param in params {
        let marker = format!("{{{param}}}");
        let at = rest
            .find(&marker)
            .ok_or_else(|| format!("{param} is not a placeholder of this tool's path"))?;
        path.push_str(&rest[..at]);
        let value = match args.remove(param) {
            Some(Value::String(s)) if !s.is_empty() => s,
            Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
            _ => return Err(format!("{param} is required")),
        };
        if is_dot_segment(&value) {
            return Err(format!(
                "{param} cannot be \".\" or \"..\"; it names one item, not a path"
            ));
        }
        path.push_str(&utf8_percent_encode(&value, SEGMENT).to_string());
        rest = &rest[at + marker.len()..];
    }
    path.push_str(rest);
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.set_path(&path);
    let same_route = url.path() == path
        && url.scheme() == base.scheme()
        && url.host() == base.host()
        && url.port_or_known_default() == base.port_or_known_default()
        && url.query().is_none()
        && url.fragment().is_none();
    if !same_route {
        return Err("the arguments do not form a valid path for this tool".to_owned());
    }
    Ok(url)
}

/// `.` or `..`, also when percent-encoded once or more (`%2e`, `%2E%2e`,
/// `%252e`), as an upstream may decode what it receives.
fn is_dot_segment(value: &str) -> bool {
    let mut current = value.to_owned();
    for _ in 0..4 {
        if current == "." || current == ".." {
            return true;
        }
        let decoded = percent_encoding::percent_decode_str(&current)
            .decode_utf8_lossy()
            .into_owned();
        if decoded == current {
            return false;
        }
        current = decoded;
    }
    false
}

fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

fn query_pairs(args: &Map<String, Value>) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for (key, value) in args {
        match value {
            Value::Null => {}
            Value::String(s) => pairs.push((key.clone(), s.clone())),
            Value::Array(items) => {
                for item in items {
                    pairs.push((key.clone(), scalar(item)));
                }
            }
            other => pairs.push((key.clone(), scalar(other))),
        }
    }
    pairs
}

/// An OpenAPI operation's request: query and header parameters by their
/// wire names, the rest as the JSON (or form) body the operation declares.
/// Arguments the operation does not declare are not sent.
fn routed(
    mut request: reqwest::RequestBuilder,
    routing: &Routing,
    mut args: Map<String, Value>,
) -> Result<reqwest::RequestBuilder, String> {
    let mut query = Map::new();
    for (arg, wire) in &routing.query {
        if let Some(v) = args.remove(arg) {
            query.insert(wire.clone(), v);
        }
    }
    if !query.is_empty() {
        request = request.query(&query_pairs(&query));
    }
    for (arg, wire) in &routing.headers {
        let Some(value) = args.remove(arg) else {
            continue;
        };
        let text = match &value {
            Value::Null => continue,
            Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(","),
            other => scalar(other),
        };
        let value = reqwest::header::HeaderValue::from_str(&text)
            .map_err(|_| format!("{arg} is not a valid header value"))?;
        request = request.header(wire.as_str(), value);
    }
    let body = match &routing.body {
        BodyShape::None => return Ok(request),
        BodyShape::Spread { form } => (Value::Object(args), *form),
        BodyShape::Property { name, form } => match args.remove(name) {
            Some(v) => (v, *form),
            None => return Ok(request),
        },
    };
    Ok(match body {
        (Value::Object(fields), true) => {
            let encoded = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(query_pairs(&fields))
                .finish();
            request
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(encoded)
        }
        (value, _) => request.json(&value),
    })
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The message a 4xx carries, from the usual JSON error fields, else its text.
fn client_error_message(json: Option<&Value>, text: &str) -> String {
    let from_json = json.and_then(|v| {
        ["error_description", "message", "detail", "error"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_owned))
    });
    let message = from_json.unwrap_or_else(|| text.trim().to_owned());
    let message: String = message.chars().take(500).collect();
    if message.is_empty() {
        "the request was refused".into()
    } else {
        message
    }
}

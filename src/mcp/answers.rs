//! Answers to stateless requests whose result depends only on the caller's
//! scopes and the request itself (`tools/list`, `ping`, `server/discover`,
//! `initialize`), kept as the exact bytes rmcp produced the first time, so
//! later identical requests skip rmcp's per-request service, the handler
//! and the serialization of a list that did not change.
//!
//! Each answer is rmcp's own response with the request id cut out: the
//! JSON-RPC response object serializes as `{"jsonrpc":"2.0","id":<id>,…`,
//! and the id is spliced back per request, so a cached answer is byte for
//! byte what rmcp would send for that id. The cache belongs to one tool set:
//! a catalog reload (a new [`ToolSet`]) starts it empty.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use axum::{
    body::{Body, Bytes},
    http::{HeaderMap, StatusCode, header, response},
    response::Response,
};

use super::server::ToolSet;

/// Entries kept per tool set; past it the cache starts over, so memory is
/// bounded whatever callers send (keys include request params).
const MAX_ENTRIES: usize = 4096;

/// How rmcp begins every JSON-RPC response object.
const PREFIX: &[u8] = br#"{"jsonrpc":"2.0","id":"#;

/// One cached answer: `headers`, and the body with the id cut out.
pub struct Template {
    headers: HeaderMap,
    after_id: Bytes,
}

impl Template {
    /// Cuts `id_json` (the request id as JSON) out of a 200 JSON response
    /// from rmcp; `None` when the response is not of that shape.
    pub fn capture(parts: &response::Parts, body: &[u8], id_json: &[u8]) -> Option<Template> {
        let is_json = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        if parts.status != StatusCode::OK || !is_json {
            return None;
        }
        let rest = body.strip_prefix(PREFIX)?.strip_prefix(id_json)?;
        // Only a result is cached; an error may depend on more than the key.
        if !rest.starts_with(br#","result":"#) {
            return None;
        }
        let mut headers = parts.headers.clone();
        headers.remove(header::CONTENT_LENGTH);
        Some(Template {
            headers,
            after_id: Bytes::copy_from_slice(rest),
        })
    }

    /// The answer for a request whose id serializes as `id_json`.
    pub fn respond(&self, id_json: &[u8]) -> Response {
        let mut body = Vec::with_capacity(PREFIX.len() + id_json.len() + self.after_id.len());
        body.extend_from_slice(PREFIX);
        body.extend_from_slice(id_json);
        body.extend_from_slice(&self.after_id);
        let mut response = Response::new(Body::from(body));
        *response.headers_mut() = self.headers.clone();
        response
    }
}

/// The cached answers of the current tool set.
#[derive(Default)]
pub struct Answers(RwLock<Cached>);

#[derive(Default)]
struct Cached {
    tools: Option<Arc<ToolSet>>,
    entries: HashMap<String, Arc<Template>>,
}

impl Answers {
    /// The answer cached for `key` under the tool set `tools`.
    pub fn get(&self, tools: &Arc<ToolSet>, key: &str) -> Option<Arc<Template>> {
        let cached = self.0.read().unwrap_or_else(|e| e.into_inner());
        match &cached.tools {
            Some(t) if Arc::ptr_eq(t, tools) => cached.entries.get(key).cloned(),
            _ => None,
        }
    }

    /// Keeps `template`, produced while `built_with` was the tool set, if it
    /// is still the `current` one.
    pub fn put(
        &self,
        built_with: &Arc<ToolSet>,
        current: &Arc<ToolSet>,
        key: String,
        template: Template,
    ) {
        if !Arc::ptr_eq(built_with, current) {
            return;
        }
        let mut cached = self.0.write().unwrap_or_else(|e| e.into_inner());
        let same_set = cached
            .tools
            .as_ref()
            .is_some_and(|t| Arc::ptr_eq(t, current));
        if !same_set || cached.entries.len() >= MAX_ENTRIES {
            cached.entries.clear();
            cached.tools = Some(Arc::clone(current));
        }
        cached.entries.insert(key, Arc::new(template));
    }
}

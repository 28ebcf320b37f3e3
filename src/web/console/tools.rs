//! The Tools page: every tool this server offers — built-in, hand-written
//! catalog entries and OpenAPI operations — with the scope it needs, whether
//! it is enabled, and the organization's last 24 hours of calls to it.

use std::collections::HashMap;

use askama::Template;
use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use serde::Deserialize;

use super::{Chrome, Console};
use crate::{
    gateway::catalog::ToolSource,
    mcp::server::Runner,
    state::AppState,
    store::{self, CallSample},
    web::PageError,
};

struct ToolRow {
    name: String,
    source: String,
    scope: &'static str,
    enabled: bool,
    calls: usize,
    errors: usize,
    p50_ms: String,
    p99_ms: String,
}

#[derive(Template)]
#[template(path = "console/tools.html")]
struct ToolsPage {
    chrome: Chrome,
    tools: Vec<ToolRow>,
}

#[derive(Deserialize, Default)]
pub struct ToolsQuery {
    #[serde(default)]
    org: Option<String>,
}

fn source_label(source: &ToolSource) -> String {
    match source {
        ToolSource::Catalog => "catalog".into(),
        ToolSource::OpenApi { operation } => format!("OpenAPI {operation}"),
    }
}

/// The nearest-rank percentile of sorted `values`.
fn percentile(sorted: &[i64], p: f64) -> String {
    if sorted.is_empty() {
        return "–".into();
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    format!("{} ms", sorted[rank - 1])
}

pub async fn list(
    State(state): State<AppState>,
    mut console: Console,
    Query(q): Query<ToolsQuery>,
) -> Result<Response, PageError> {
    console.select(q.org.as_deref())?;
    let org_id = console.require_org()?.org.id;
    let samples = state
        .store
        .call_samples_since(org_id, store::now() - 86_400)
        .await?;
    let mut by_tool: HashMap<String, Vec<CallSample>> = HashMap::new();
    for s in samples {
        by_tool.entry(s.tool.clone()).or_default().push(s);
    }
    let row = |name: &str, source: String, scope: &'static str, enabled: bool| {
        let calls = by_tool.get(name).map(Vec::as_slice).unwrap_or_default();
        let mut durations: Vec<i64> = calls.iter().map(|c| c.duration_ms).collect();
        durations.sort_unstable();
        ToolRow {
            name: name.to_owned(),
            source,
            scope,
            enabled,
            calls: calls.len(),
            errors: calls.iter().filter(|c| c.outcome != "ok").count(),
            p50_ms: percentile(&durations, 0.50),
            p99_ms: percentile(&durations, 0.99),
        }
    };
    let set = state.tools.current();
    let mut tools: Vec<ToolRow> = set
        .entries()
        .iter()
        .map(|e| {
            let source = match &e.runner {
                Runner::Builtin => "built-in".to_owned(),
                Runner::Gateway(t) => source_label(&t.source),
            };
            row(e.tool.name.as_ref(), source, e.required.as_str(), true)
        })
        .collect();
    tools.extend(
        set.disabled()
            .iter()
            .map(|(name, source)| row(name, source_label(source), "–", false)),
    );
    let page = ToolsPage {
        chrome: console.chrome("tools", None),
        tools,
    };
    Ok(console.render(&page, StatusCode::OK))
}

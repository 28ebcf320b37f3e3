//! How to connect each client to this deployment, generated from the
//! configured public URL so every command can be pasted as it is.

use askama::Template;
use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use serde::Deserialize;

use super::{Chrome, Console};
use crate::{state::AppState, web::PageError};

/// Ready-to-paste configuration for the clients that authenticate with an
/// API key and the org header instead of OAuth.
pub struct Snippets {
    pub claude_code: String,
    pub cursor: String,
    pub codex: String,
}

impl Snippets {
    pub fn new(mcp_url: &str, org_header: &str, org_id: &str, key: &str) -> Snippets {
        let bearer = format!("Bearer {key}");
        let cursor = serde_json::json!({
            "mcpServers": {
                "portcullis": {
                    "url": mcp_url,
                    "headers": { "Authorization": bearer, org_header: org_id },
                }
            }
        });
        Snippets {
            claude_code: format!(
                "claude mcp add --transport http portcullis {mcp_url} \\\n  --header \"Authorization: {bearer}\" \\\n  --header \"{org_header}: {org_id}\""
            ),
            cursor: serde_json::to_string_pretty(&cursor).expect("JSON values serialize"),
            // TOML basic strings take JSON's escapes, so JSON quoting is exact.
            codex: format!(
                "[mcp_servers.portcullis]\nurl = {}\nhttp_headers = {{ \"Authorization\" = {}, {} = {} }}",
                quote(mcp_url),
                quote(&bearer),
                quote(org_header),
                quote(org_id)
            ),
        }
    }
}

fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

#[derive(Template)]
#[template(path = "console/connect.html")]
struct ConnectPage {
    chrome: Chrome,
    mcp_url: String,
    org_header: String,
    org_id: String,
    snippets: Snippets,
    vscode: String,
    cursor_oauth: String,
}

#[derive(Deserialize)]
pub struct ConnectQuery {
    org: Option<String>,
    notice: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    mut console: Console,
    Query(q): Query<ConnectQuery>,
) -> Result<Response, PageError> {
    console.select(q.org.as_deref())?;
    let mcp_url = state.config.resource();
    let org_id = console
        .current
        .as_ref()
        .map_or_else(|| "<organization id>".to_owned(), |m| m.org.id.to_string());
    let org_header = state.config.org_header.clone();
    let snippets = Snippets::new(&mcp_url, &org_header, &org_id, "<your API key>");
    let vscode = serde_json::to_string_pretty(&serde_json::json!({
        "servers": { "portcullis": { "type": "http", "url": mcp_url } }
    }))
    .expect("JSON values serialize");
    let cursor_oauth = serde_json::to_string_pretty(&serde_json::json!({
        "mcpServers": { "portcullis": { "url": mcp_url } }
    }))
    .expect("JSON values serialize");
    let page = ConnectPage {
        chrome: console.chrome("connect", q.notice.as_deref()),
        mcp_url,
        org_header,
        org_id,
        snippets,
        vscode,
        cursor_oauth,
    };
    Ok(console.render(&page, StatusCode::OK))
}

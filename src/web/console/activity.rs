//! The org's audit log of tool calls (SPEC §4.8), filtered and paged. Every
//! member may read it, as `list_tool_calls` lets them over MCP.

use std::collections::HashMap;

use askama::Template;
use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use serde::Deserialize;
use uuid::Uuid;

use super::{Choice, Chrome, Console, when};
use crate::{
    state::AppState,
    store::{ToolCallCursor, ToolCallFilter},
    web::PageError,
};

const PAGE_SIZE: i64 = 50;
const OUTCOMES: [&str; 4] = ["ok", "error", "denied", "rate_limited"];

struct CallRow {
    at: String,
    tool: String,
    user: String,
    source: String,
    via: String,
    outcome: String,
    ok: bool,
    duration_ms: i64,
    /// The upstream's HTTP status for gateway calls; empty otherwise.
    upstream: String,
    /// Why a call failed or was refused, or what it acted on.
    detail: String,
    /// Logged arguments and result (upstreams with `log_payloads`), pretty-printed.
    payload: Option<(String, String)>,
}

/// Stored payload text, indented for reading when it is JSON.
fn pretty(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_owned())
}

struct UserOption {
    id: String,
    email: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "console/activity.html")]
struct ActivityPage {
    chrome: Chrome,
    calls: Vec<CallRow>,
    users: Vec<UserOption>,
    outcomes: Vec<Choice>,
    tool: String,
    from: String,
    to: String,
    /// Query strings for the newest page and the next (older) one.
    first_page: String,
    next_page: Option<String>,
    paged: bool,
}

/// The filter form as sent: every field a string, empty meaning "any", so a
/// form submitted with blanks is not a malformed request.
#[derive(Deserialize, Default)]
pub struct ActivityQuery {
    org: Option<String>,
    #[serde(default)]
    tool: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    outcome: String,
    /// Dates `YYYY-MM-DD`, UTC, both inclusive.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// `at.id` of the last call on the previous page.
    #[serde(default)]
    after: String,
}

fn bad(message: &str) -> PageError {
    PageError::bad_request(message.to_owned())
}

/// The Unix time at 00:00 UTC of a `YYYY-MM-DD` date.
fn day_start(text: &str) -> Result<Option<i64>, PageError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let invalid = || bad("Dates must look like 2025-06-30.");
    let mut parts = text.splitn(3, '-');
    let mut next = || -> Result<i32, PageError> {
        parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(invalid)
    };
    let (year, month, day) = (next()?, next()?, next()?);
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or_else(invalid)?;
    let day = u8::try_from(day).map_err(|_| invalid())?;
    let date = time::Date::from_calendar_date(year, month, day).map_err(|_| invalid())?;
    Ok(Some(date.midnight().assume_utc().unix_timestamp()))
}

fn parse_cursor(text: &str) -> Result<Option<ToolCallCursor>, PageError> {
    if text.is_empty() {
        return Ok(None);
    }
    let (at, id) = text
        .split_once('.')
        .ok_or_else(|| bad("That page link is damaged."))?;
    Ok(Some(ToolCallCursor {
        at: at.parse().map_err(|_| bad("That page link is damaged."))?,
        id: id.parse().map_err(|_| bad("That page link is damaged."))?,
    }))
}

pub async fn list(
    State(state): State<AppState>,
    mut console: Console,
    Query(q): Query<ActivityQuery>,
) -> Result<Response, PageError> {
    console.select(q.org.as_deref())?;
    let org_id = console.require_org()?.org.id;
    let members = state.store.members(org_id).await?;
    let user_id = match q.user.trim() {
        "" => None,
        text => Some(
            text.parse::<Uuid>()
                .map_err(|_| bad("That is not a user id."))?,
        ),
    };
    let outcome = q.outcome.trim();
    if !outcome.is_empty() && !OUTCOMES.contains(&outcome) {
        return Err(bad("Outcome must be ok, error, denied or rate_limited."));
    }
    let since = day_start(&q.from)?;
    // "to" names a whole day: everything before the next midnight.
    let until = day_start(&q.to)?.map(|t| t + 86_400 - 1);
    let filter = ToolCallFilter {
        tool: Some(q.tool.trim().to_owned()).filter(|t| !t.is_empty()),
        user_id,
        outcome: Some(outcome.to_owned()).filter(|o| !o.is_empty()),
        since,
        until,
        before: None,
        // One more than shown tells whether an older page exists.
        limit: PAGE_SIZE + 1,
    };
    let after = parse_cursor(q.after.trim())?;
    let mut calls = state.store.tool_calls_page(org_id, &filter, after).await?;
    let more = calls.len() as i64 > PAGE_SIZE;
    calls.truncate(PAGE_SIZE as usize);

    // Service clients act for no user: they are shown by name.
    let services: Vec<(Uuid, String)> = state
        .store
        .service_clients(org_id)
        .await?
        .into_iter()
        .map(|c| (c.id, format!("service client {}", c.name)))
        .collect();
    let emails: HashMap<Uuid, &str> = members
        .iter()
        .map(|m| (m.user_id, m.email.as_str()))
        .chain(services.iter().map(|(id, name)| (*id, name.as_str())))
        .collect();
    let filters = |after: Option<String>| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("org", &org_id.to_string());
        for (name, value) in [
            ("tool", q.tool.trim()),
            ("user", q.user.trim()),
            ("outcome", outcome),
            ("from", q.from.trim()),
            ("to", q.to.trim()),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        if let Some(after) = after {
            query.append_pair("after", &after);
        }
        query.finish()
    };
    let next_page = more
        .then(|| calls.last())
        .flatten()
        .map(|c| filters(Some(format!("{}.{}", c.at, c.id))));
    // Apps by the name they registered with, not a raw client id.
    let mut app_names: HashMap<String, String> = HashMap::new();
    for client_id in calls.iter().filter_map(|c| c.client_id.as_deref()) {
        if !app_names.contains_key(client_id) {
            let name = match state.store.client(client_id).await? {
                Some(client) if !client.client_name.is_empty() => client.client_name,
                _ => client_id.to_owned(),
            };
            app_names.insert(client_id.to_owned(), name);
        }
    }
    let mut payloads = match (
        calls.iter().map(|c| c.at).min(),
        calls.iter().map(|c| c.at).max(),
    ) {
        (Some(since), Some(until)) => state.store.payloads_between(org_id, since, until).await?,
        _ => HashMap::new(),
    };
    let rows = calls
        .into_iter()
        .map(|c| CallRow {
            payload: payloads
                .remove(&c.id)
                .map(|p| (pretty(&p.arguments), pretty(&p.result))),
            at: when(c.at),
            user: emails
                .get(&c.user_id)
                .map_or_else(|| c.user_id.to_string(), |e| (*e).to_owned()),
            upstream: c.upstream_status.map(|s| s.to_string()).unwrap_or_default(),
            detail: c.detail.unwrap_or_default(),
            via: c
                .client_id
                .map(|id| app_names.get(&id).cloned().unwrap_or(id))
                .or(c
                    .api_key_id
                    .map(|k| format!("key {}…", &k[..k.len().min(8)])))
                .unwrap_or_default(),
            ok: c.outcome == "ok",
            outcome: c.outcome,
            source: c.source,
            duration_ms: c.duration_ms,
            tool: c.tool,
        })
        .collect();
    let page = ActivityPage {
        chrome: console.chrome("activity", None),
        calls: rows,
        users: members
            .iter()
            .map(|m| UserOption {
                id: m.user_id.to_string(),
                email: m.email.clone(),
                selected: Some(m.user_id) == user_id,
            })
            .collect(),
        outcomes: Choice::list(&OUTCOMES, outcome),
        tool: q.tool.trim().to_owned(),
        from: q.from.trim().to_owned(),
        to: q.to.trim().to_owned(),
        first_page: filters(None),
        next_page,
        paged: after.is_some(),
    };
    Ok(console.render(&page, StatusCode::OK))
}

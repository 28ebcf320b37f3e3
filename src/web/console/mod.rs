//! The console a signed-in person reaches at `/` (issue 5): their API keys and
//! connected apps, their organization's members and activity, and how to
//! connect clients. Plain forms; the only script is the copy button.
//!
//! Authorization is decided here, on the server, for every request: pages show
//! only the orgs the user belongs to, keys and apps only the user's own, and
//! the members page only to the org's admins.

mod account;
mod activity;
mod apps;
mod connect;
mod keys;
mod machines;
mod members;
mod org;
mod tools;

use askama::Template;
use axum::{
    Router,
    extract::FromRequestParts,
    http::{HeaderValue, Method, StatusCode, request::Parts},
    middleware::map_response,
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use uuid::Uuid;

use super::{OwnScript, PageError, csrf, render, session};
use crate::{
    identity::{scope::Role, secret::constant_time_eq},
    state::AppState,
    store::{Membership, User},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/console/keys", get(keys::list).post(keys::create))
        .route("/console/keys/revoke", post(keys::revoke))
        .route("/console/apps", get(apps::list))
        .route("/console/apps/revoke", post(apps::revoke))
        .route("/console/org", get(org::show))
        .route("/console/org/members", post(org::add_member))
        .route("/console/org/users", post(org::create_user))
        .route("/console/org/role", post(org::set_role))
        .route("/console/org/remove", post(members::remove))
        .route("/console/org/disable", post(members::disable))
        .route("/console/org/enable", post(members::enable))
        .route("/console/org/unlock", post(members::unlock))
        .route("/console/org/reset-link", post(members::reset_link))
        .route("/console/org/rename", post(members::rename))
        .route("/console/account", get(account::show))
        .route("/console/account/password", post(account::change_password))
        .route("/console/org/machines", get(machines::show))
        .route(
            "/console/org/machines/clients",
            post(machines::create_client),
        )
        .route(
            "/console/org/machines/clients/revoke",
            post(machines::revoke_client),
        )
        .route("/console/org/machines/idps", post(machines::trust))
        .route("/console/org/machines/idps/remove", post(machines::remove))
        .route("/console/activity", get(activity::list))
        .route("/console/tools", get(tools::list))
        .route("/console/connect", get(connect::show))
        .layer(map_response(|mut response: Response| async move {
            response.extensions_mut().insert(OwnScript);
            response
        }))
}

/// `/` is the console's front door: the API keys page, or sign-in first.
/// Someone with no key and no connected app yet (a first sign-in) is sent
/// to Connect, which says how to start.
async fn home(
    axum::extract::State(state): axum::extract::State<AppState>,
    console: Console,
) -> Result<Redirect, PageError> {
    let user = console.user.id;
    if state.store.api_keys(Some(user), None).await?.is_empty()
        && state.store.grants(Some(user), None).await?.is_empty()
    {
        return Ok(Redirect::to("/console/connect?notice=welcome"));
    }
    Ok(Redirect::to("/console/keys"))
}

/// A signed-in user on a console page, with the orgs they belong to and the
/// CSRF token for the page's forms. Extracting it from a request without a
/// live session redirects the browser to sign-in and back.
pub struct Console {
    pub user: User,
    /// The identity providers (display names) the user signs in with.
    pub providers: Vec<String>,
    pub memberships: Vec<Membership>,
    /// The org the page is about; see `select`.
    pub current: Option<Membership>,
    csrf: String,
    csrf_cookie: Option<HeaderValue>,
}

impl FromRequestParts<AppState> for Console {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let user = match session::current_user(state, &parts.headers).await {
            Ok(Some(user)) => user,
            Ok(None) => return Err(sign_in_first(parts)),
            Err(e) => return Err(PageError::from(e).into_response()),
        };
        let memberships = state
            .store
            .memberships(user.id)
            .await
            .map_err(|e| PageError::from(e).into_response())?;
        let providers = state
            .store
            .user_providers(user.id)
            .await
            .map_err(|e| PageError::from(e).into_response())?
            .iter()
            .map(|id| state.providers.display_name(id))
            .collect();
        let (csrf, csrf_cookie) =
            csrf::token(&state.mac, &parts.headers, state.config.issuer_is_https());
        Ok(Console {
            user,
            providers,
            memberships,
            current: None,
            csrf,
            csrf_cookie,
        })
    }
}

/// Sends the browser to sign-in, coming back to the page it asked for. A form
/// post cannot be replayed after sign-in, so it comes back to `/` instead.
fn sign_in_first(parts: &Parts) -> Response {
    let back = match parts.method {
        Method::GET => parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned(),
        _ => "/".to_owned(),
    };
    let next: String = form_urlencoded::byte_serialize(back.as_bytes()).collect();
    Redirect::to(&format!("/login?next={next}")).into_response()
}

impl Console {
    /// Chooses the org the page is about: the one asked for by id, which the
    /// user must belong to, or else their first. Asking for an org the user
    /// is not in is refused rather than silently replaced, so a shared link
    /// never shows another org's data under the wrong heading.
    pub fn select(&mut self, requested: Option<&str>) -> Result<(), PageError> {
        let requested = requested.map(str::trim).filter(|s| !s.is_empty());
        self.current = match requested {
            None => self.memberships.first().cloned(),
            Some(text) => {
                let id: Uuid = text
                    .parse()
                    .map_err(|_| PageError::bad_request("That is not an organization id."))?;
                Some(self.membership(id).cloned().ok_or_else(|| {
                    PageError::forbidden("You are not a member of that organization.")
                })?)
            }
        };
        Ok(())
    }

    pub fn membership(&self, org_id: Uuid) -> Option<&Membership> {
        self.memberships.iter().find(|m| m.org.id == org_id)
    }

    /// The selected org, for pages that make no sense without one.
    pub fn require_org(&self) -> Result<&Membership, PageError> {
        self.current.as_ref().ok_or_else(|| {
            PageError::forbidden(
                "You are not a member of any organization yet. Ask an admin to add you.",
            )
        })
    }

    /// The selected org, if the user administers it.
    pub fn require_admin(&self) -> Result<&Membership, PageError> {
        let m = self.require_org()?;
        if m.role != Role::Admin {
            return Err(PageError::forbidden(format!(
                "Only admins of {} can manage its members. Your role there is {}.",
                m.org.name, m.role
            )));
        }
        Ok(m)
    }

    /// Checks the signed double-submit token of a form post (see
    /// `web::csrf`): `self.csrf` was derived from this request's cookies.
    pub fn verify_csrf(&self, submitted: Option<&str>) -> Result<(), PageError> {
        if submitted.is_some_and(|s| constant_time_eq(s, &self.csrf)) {
            Ok(())
        } else {
            Err(PageError::forbidden(
                "This form has expired or did not come from this site. Reload the page and try again.",
            ))
        }
    }

    pub fn org_name(&self, org_id: Uuid) -> String {
        self.membership(org_id)
            .map_or_else(|| org_id.to_string(), |m| m.org.name.clone())
    }

    /// What every console page shows around its content.
    pub fn chrome(&self, tab: &'static str, notice: Option<&str>) -> Chrome {
        let current = self.current.as_ref().map(|m| m.org.id);
        Chrome {
            tab,
            email: self.user.email.clone(),
            providers: self.providers.join(", "),
            csrf: self.csrf.clone(),
            orgs: self
                .memberships
                .iter()
                .map(|m| OrgChoice {
                    id: m.org.id.to_string(),
                    name: m.org.name.clone(),
                    role: m.role.as_str(),
                    selected: Some(m.org.id) == current,
                })
                .collect(),
            org: self.current.as_ref().map(|m| OrgChoice {
                id: m.org.id.to_string(),
                name: m.org.name.clone(),
                role: m.role.as_str(),
                selected: true,
            }),
            is_admin: self.current.as_ref().is_some_and(|m| m.role == Role::Admin),
            notice: notice.and_then(notice_text),
        }
    }

    /// Renders a page, setting the CSRF cookie if the browser had none.
    pub fn render(self, page: &impl Template, status: StatusCode) -> Response {
        let mut response = render(page);
        if response.status() == StatusCode::OK {
            *response.status_mut() = status;
        }
        csrf::with_cookie(response, self.csrf_cookie)
    }
}

/// The header, navigation and org switcher of every console page.
pub struct Chrome {
    pub tab: &'static str,
    pub email: String,
    /// "Acme SSO" for people signed in through providers; empty otherwise.
    pub providers: String,
    pub csrf: String,
    pub orgs: Vec<OrgChoice>,
    pub org: Option<OrgChoice>,
    pub is_admin: bool,
    pub notice: Option<&'static str>,
}

impl Chrome {
    /// `?org=…` for links that keep the selected org.
    pub fn org_query(&self) -> String {
        self.org
            .as_ref()
            .map_or_else(String::new, |o| format!("?org={}", o.id))
    }

    /// The selected org's id for a form's hidden field; empty when none.
    pub fn org_id(&self) -> &str {
        self.org.as_ref().map_or("", |o| o.id.as_str())
    }
}

/// One `<option>` of a fixed list, such as roles or outcomes.
pub struct Choice {
    pub value: &'static str,
    pub selected: bool,
}

impl Choice {
    pub fn list(values: &[&'static str], selected: &str) -> Vec<Choice> {
        values
            .iter()
            .map(|v| Choice {
                value: v,
                selected: *v == selected,
            })
            .collect()
    }
}

pub struct OrgChoice {
    pub id: String,
    pub name: String,
    pub role: &'static str,
    pub selected: bool,
}

/// Confirmations after a redirect (post/redirect/get). Only these fixed texts
/// can be shown, so a crafted link cannot put words on the page.
fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "key-revoked" => "The API key was revoked. Clients using it are refused within seconds.",
        "app-revoked" => "The app was disconnected. Its tokens stop working at once.",
        "member-added" => "The user was added to the organization.",
        "user-created" => "The user was created. Tell them their email and password.",
        "member-removed" => {
            "The member was removed. Their API keys and apps in this organization were revoked."
        }
        "user-disabled" => {
            "The account was disabled: signed out, and its keys and apps are refused within seconds."
        }
        "user-enabled" => "The account was enabled again; its keys and apps work again.",
        "user-unlocked" => "Sign-in for the account was unlocked.",
        "org-renamed" => "The organization was renamed.",
        "welcome" => {
            "Welcome! Connect your first client below, or create an API key. Add people under Organization."
        }
        "password-changed" => "Your password was changed. Your other sessions were signed out.",
        "role-changed" => {
            "The role was changed. Existing keys follow it at once; apps when they next refresh."
        }
        "service-client-revoked" => {
            "The service client was revoked. Its tokens are refused within seconds."
        }
        "idp-trusted" => "The identity provider is trusted for this organization.",
        "idp-removed" => "The identity provider is no longer trusted.",
        _ => return None,
    })
}

/// An error text from `identity::accounts` as a sentence for a page.
pub fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// Where to go after a form post, keeping the selected org.
fn back_to(path: &str, console: &Console, notice: &str) -> Redirect {
    match &console.current {
        Some(m) => Redirect::to(&format!("{path}?org={}&notice={notice}", m.org.id)),
        None => Redirect::to(&format!("{path}?notice={notice}")),
    }
}

/// A Unix time as people read it, in UTC so every viewer sees the same text.
pub fn when(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => "—".into(),
    }
}

//! The authorization endpoint and the consent decision (SPEC §3.4–3.5).
//!
//! `/authorize` validates the request in two phases (RFC 6749 §4.1.2.1): until
//! the client and redirect URI are known good, errors are shown as a page and
//! never redirected; after that, errors go back to the client with `iss`
//! (RFC 9207). The consent form carries the original request and the POST
//! validates it again, so nothing about a pending authorization is stored.

use askama::Template;
use axum::{
    Form,
    extract::{RawQuery, State},
    http::HeaderMap,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use url::Url;
use uuid::Uuid;

use super::{
    client::{ClientError, OAuthClient},
    pkce,
    redirect_uri::display_host,
};
use crate::{
    identity::{
        scope::{Role, Scope, ScopeSet},
        secret::Secret,
    },
    state::AppState,
    store::{self, AuthCode, Membership, User},
    web::{PageError, csrf, render, session},
};

/// A request that passed every check; errors from here on redirect.
struct ValidRequest {
    client: OAuthClient,
    redirect_uri: String,
    state: Option<String>,
    code_challenge: String,
    /// Requested scopes after defaults; the role ceiling applies per org.
    scope: ScopeSet,
    nonce: Option<String>,
    org_id: Option<Uuid>,
    prompt_consent: bool,
    /// OIDC `prompt=none`: answer without showing any page, or fail.
    prompt_none: bool,
}

enum Rejection {
    Page(PageError),
    Redirect(Response),
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        match self {
            Rejection::Page(p) => p.into_response(),
            Rejection::Redirect(r) => r,
        }
    }
}

impl From<PageError> for Rejection {
    fn from(p: PageError) -> Self {
        Rejection::Page(p)
    }
}

impl From<store::StoreError> for Rejection {
    fn from(e: store::StoreError) -> Self {
        Rejection::Page(e.into())
    }
}

/// Builds the redirect back to the client, with `iss` always (RFC 9207).
fn redirect_to_client(
    state: &AppState,
    redirect_uri: &str,
    params: &[(&str, &str)],
    client_state: Option<&str>,
) -> Response {
    let mut url = Url::parse(redirect_uri).expect("redirect URIs are validated absolute URIs");
    {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in params {
            pairs.append_pair(k, v);
        }
        if let Some(s) = client_state {
            pairs.append_pair("state", s);
        }
        pairs.append_pair("iss", state.config.issuer());
    }
    Redirect::to(url.as_str()).into_response()
}

fn error_redirect(
    state: &AppState,
    req_redirect: &str,
    client_state: Option<&str>,
    error: &str,
    description: &str,
) -> Rejection {
    Rejection::Redirect(redirect_to_client(
        state,
        req_redirect,
        &[("error", error), ("error_description", description)],
        client_state,
    ))
}

/// Parses a query string, refusing repeated parameters (RFC 6749 §3.1) except
/// `resource`, which RFC 8707 allows to repeat.
fn parse_params(
    raw: &str,
) -> Result<(std::collections::HashMap<String, String>, Vec<String>), String> {
    let mut params = std::collections::HashMap::new();
    let mut resources = Vec::new();
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        if k == "resource" {
            resources.push(v.into_owned());
        } else if params
            .insert(k.clone().into_owned(), v.into_owned())
            .is_some()
        {
            return Err(format!("the parameter {k} appears more than once"));
        }
    }
    Ok((params, resources))
}

/// RFC 8707 resources compare after URL normalisation, ignoring a trailing slash.
pub fn same_resource(presented: &str, ours: &str) -> bool {
    let canonical = |s: &str| {
        Url::parse(s)
            .ok()
            .map(|u| u.as_str().trim_end_matches('/').to_owned())
    };
    match (canonical(presented), canonical(ours)) {
        (Some(a), Some(b)) => a == b && !presented.contains('#'),
        _ => false,
    }
}

async fn validate(state: &AppState, raw: &str) -> Result<ValidRequest, Rejection> {
    let (params, resources) = parse_params(raw).map_err(PageError::bad_request)?;
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());

    // Phase 1: who is asking, and where would the answer go.
    let client_id =
        get("client_id").ok_or_else(|| PageError::bad_request("The request has no client_id."))?;
    let client = match OAuthClient::resolve(state, client_id).await {
        Ok(c) => c,
        Err(ClientError::Store(e)) => return Err(e.into()),
        Err(ClientError::Unknown) => {
            return Err(PageError::bad_request(
                "The application asking for access is not registered here.",
            )
            .into());
        }
        Err(e) => {
            return Err(
                PageError::bad_request(format!("The application cannot be used: {e}.")).into(),
            );
        }
    };
    let redirect_uri = client.redirect_uri_for(get("redirect_uri")).ok_or_else(|| {
        PageError::bad_request(match get("redirect_uri") {
            Some(_) => "The redirect_uri does not match any URI registered for this application.",
            None => "The request must name a redirect_uri because the application registered several.",
        })
    })?;

    // Phase 2: everything else is reported to the client.
    let client_state = get("state").map(str::to_owned);
    let fail = |error: &str, description: &str| {
        error_redirect(
            state,
            &redirect_uri,
            client_state.as_deref(),
            error,
            description,
        )
    };
    if get("response_type") != Some("code") {
        return Err(fail(
            "unsupported_response_type",
            "response_type must be code",
        ));
    }
    let code_challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (None, _) => {
            return Err(fail(
                "invalid_request",
                "code_challenge is required (PKCE with S256)",
            ));
        }
        (Some(_), Some(m)) if m != "S256" => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256",
            ));
        }
        (Some(_), None) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256",
            ));
        }
        (Some(c), Some(_)) if !pkce::is_valid_challenge(c) => {
            return Err(fail(
                "invalid_request",
                "code_challenge must be a base64url SHA-256 digest",
            ));
        }
        (Some(c), Some(_)) => c.to_owned(),
    };
    let ours = state.config.resource();
    if resources.iter().any(|r| !same_resource(r, &ours)) {
        return Err(fail(
            "invalid_target",
            &format!("the only resource served here is {ours}"),
        ));
    }
    let mut scope = ScopeSet::parse_lenient(get("scope").unwrap_or(""));
    if scope.mcp().is_empty() {
        scope = scope.with(Scope::McpRead).with(Scope::McpWrite);
    }
    let prompts: Vec<&str> = get("prompt")
        .map(|p| p.split(' ').collect())
        .unwrap_or_default();
    let prompt_none = prompts.contains(&"none");
    if prompt_none && prompts.len() > 1 {
        // OIDC Core §3.1.2.1: `none` cannot be combined with other values.
        return Err(fail(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        ));
    }
    let org_id = match get("org_id") {
        Some(o) => Some(
            Uuid::parse_str(o).map_err(|_| fail("invalid_request", "org_id is not a valid id"))?,
        ),
        None => None,
    };
    Ok(ValidRequest {
        client,
        redirect_uri: redirect_uri.clone(),
        state: client_state.clone(),
        code_challenge,
        scope,
        nonce: get("nonce").map(|n| n.chars().take(512).collect()),
        org_id,
        prompt_consent: prompts.iter().any(|v| *v == "consent" || *v == "login"),
        prompt_none,
    })
}

#[derive(Template)]
#[template(path = "choose_org.html")]
struct ChooseOrgPage<'a> {
    client_name: &'a str,
    memberships: &'a [Membership],
    hidden: Vec<(String, String)>,
}

struct ScopeRow {
    value: &'static str,
    description: &'static str,
    checked: bool,
    available: bool,
    locked: bool,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    client_name: &'a str,
    client_id_host: Option<String>,
    redirect_host: String,
    loopback_only: bool,
    org_name: &'a str,
    role: Role,
    email: &'a str,
    scopes: Vec<ScopeRow>,
    request: &'a str,
    org_id: Uuid,
    csrf: &'a str,
    switch_org: bool,
}

pub async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let raw = raw.unwrap_or_default();
    match authorize_inner(&state, &headers, &raw).await {
        Ok(r) => r,
        Err(r) => r.into_response(),
    }
}

async fn authorize_inner(
    state: &AppState,
    headers: &HeaderMap,
    raw: &str,
) -> Result<Response, Rejection> {
    let request = validate(state, raw).await?;
    let silent_failure = |error: &str, description: &str| {
        error_redirect(
            state,
            &request.redirect_uri,
            request.state.as_deref(),
            error,
            description,
        )
    };
    let Some(user) = session::current_user(state, headers).await? else {
        if request.prompt_none {
            return Err(silent_failure(
                "login_required",
                "the user is not signed in",
            ));
        }
        let next = format!("/authorize?{raw}");
        let login = format!(
            "/login?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("next", &next)
                .finish()
        );
        return Ok(Redirect::to(&login).into_response());
    };
    let memberships = state.store.memberships(user.id).await?;
    let membership = match (request.org_id, memberships.as_slice()) {
        (_, []) => {
            return Err(error_redirect(
                state,
                &request.redirect_uri,
                request.state.as_deref(),
                "access_denied",
                "the user belongs to no organization",
            ));
        }
        (None, [only]) => only,
        (None, _) if request.prompt_none => {
            return Err(silent_failure(
                "account_selection_required",
                "the user belongs to several organizations; pass org_id",
            ));
        }
        (None, _) => {
            let (params, resources) = parse_params(raw).map_err(PageError::bad_request)?;
            let mut hidden: Vec<(String, String)> =
                params.into_iter().filter(|(k, _)| k != "org_id").collect();
            hidden.extend(resources.into_iter().map(|r| ("resource".to_owned(), r)));
            return Ok(render(&ChooseOrgPage {
                client_name: &request.client.name,
                memberships: &memberships,
                hidden,
            }));
        }
        (Some(id), all) => all
            .iter()
            .find(|m| m.org.id == id)
            .ok_or_else(|| PageError::forbidden("You are not a member of that organization."))?,
    };
    let offered = request.scope.intersect(membership.role.ceiling());

    if !request.prompt_consent
        && let Some(remembered) = state
            .store
            .consent(
                user.id,
                &request.client.client_id,
                membership.org.id,
                &request.redirect_uri,
            )
            .await?
        && offered.is_subset_of(remembered)
    {
        return issue_code(state, &request, &user, membership.org.id, offered).await;
    }
    if request.prompt_none {
        return Err(silent_failure(
            "consent_required",
            "the user has not approved this application",
        ));
    }

    let (token, cookie) = csrf::token(&state.mac, headers, state.config.issuer_is_https());
    let scopes = Scope::ALL
        .into_iter()
        .filter(|s| request.scope.contains(*s) && *s != Scope::OfflineAccess)
        .map(|s| ScopeRow {
            value: s.as_str(),
            description: s.description(),
            // Admin (deleting, destructive tools) is offered but never
            // pre-ticked: the person opts in to it, it is not opt-out.
            checked: offered.contains(s) && s != Scope::McpAdmin,
            available: offered.contains(s),
            // Reading is what every connection needs; OIDC scopes only describe the user.
            locked: !matches!(s, Scope::McpWrite | Scope::McpAdmin),
        })
        .collect();
    let page = ConsentPage {
        client_name: &request.client.name,
        client_id_host: request
            .client
            .from_metadata_document
            .then(|| display_host(&request.client.client_id)),
        redirect_host: display_host(&request.redirect_uri),
        loopback_only: request.client.only_loopback_redirects(),
        org_name: &membership.org.name,
        role: membership.role,
        email: &user.email,
        scopes,
        request: raw,
        org_id: membership.org.id,
        csrf: &token,
        switch_org: memberships.len() > 1,
    };
    Ok(csrf::with_cookie(render(&page), cookie))
}

#[derive(Deserialize)]
pub struct ConsentForm {
    request: String,
    org_id: Uuid,
    csrf: Option<String>,
    decision: String,
    #[serde(default)]
    grant_write: Option<String>,
    #[serde(default)]
    grant_admin: Option<String>,
}

pub async fn consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ConsentForm>,
) -> Response {
    match consent_inner(&state, &headers, form).await {
        Ok(r) => r,
        Err(r) => r.into_response(),
    }
}

async fn consent_inner(
    state: &AppState,
    headers: &HeaderMap,
    form: ConsentForm,
) -> Result<Response, Rejection> {
    if !csrf::verify(&state.mac, headers, form.csrf.as_deref()) {
        return Err(PageError::forbidden(
            "This form expired or did not come from this site. Go back and try again.",
        )
        .into());
    }
    let request = validate(state, &form.request).await?;
    let user = session::current_user(state, headers)
        .await?
        .ok_or_else(|| {
            PageError::forbidden("You are signed out. Start again from the application.")
        })?;
    if form.decision != "approve" {
        return Err(error_redirect(
            state,
            &request.redirect_uri,
            request.state.as_deref(),
            "access_denied",
            "the user denied access",
        ));
    }
    let role = state
        .store
        .role(user.id, form.org_id)
        .await?
        .ok_or_else(|| PageError::forbidden("You are not a member of that organization."))?;
    let mut granted = request.scope.intersect(role.ceiling());
    if form.grant_write.is_none() {
        granted = granted.without(Scope::McpWrite);
    }
    if form.grant_admin.is_none() {
        granted = granted.without(Scope::McpAdmin);
    }
    if granted.mcp().is_empty() {
        granted = granted.with(Scope::McpRead);
    }
    state
        .store
        .remember_consent(
            user.id,
            &request.client.client_id,
            form.org_id,
            granted,
            &request.redirect_uri,
        )
        .await?;
    issue_code(state, &request, &user, form.org_id, granted).await
}

async fn issue_code(
    state: &AppState,
    request: &ValidRequest,
    user: &User,
    org_id: Uuid,
    scope: ScopeSet,
) -> Result<Response, Rejection> {
    let code = Secret::generate();
    let now = store::now();
    state
        .store
        .insert_code(&AuthCode {
            code_hash: code.hash(),
            client_id: request.client.client_id.clone(),
            client_name: request.client.name.clone(),
            user_id: user.id,
            org_id,
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
            scope,
            resource: state.config.resource(),
            nonce: request.nonce.clone(),
            created_at: now,
            expires_at: now + state.config.code_ttl.as_secs() as i64,
            grant_id: None,
        })
        .await?;
    tracing::info!(client_id = %request.client.client_id, user_id = %user.id, %org_id, scope = %scope, "authorization code issued");
    Ok(redirect_to_client(
        state,
        &request.redirect_uri,
        &[("code", code.expose())],
        request.state.as_deref(),
    ))
}

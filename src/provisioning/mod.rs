//! The provisioning API (README "Provisioning API"): JSON over HTTP under
//! `/admin/api/v1/` for a product's backend to keep orgs, users, memberships,
//! API keys and connected apps in sync. Every request carries
//! `Authorization: Bearer <admin token>` ([`tokens`]). Each change goes
//! through the same account operations as the command line and console
//! ([`crate::identity::accounts`]) and announces its revocations the same
//! way ([`crate::oauth::revocation::revoked`]).
//!
//! Errors are `{"error": code, "message": text}` with a stable code:
//! `invalid_request` (400), `unauthorized` (401), `not_found` (404),
//! `conflict` (409, also for `last_admin`), `payload_too_large` (413),
//! `server_error` (500, store failures only).

mod machines;
pub mod tokens;

use axum::{
    Router,
    body::Bytes,
    extract::{
        Path, Query, Request, State,
        rejection::{BytesRejection, QueryRejection},
    },
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    identity::{
        accounts::{self, AccountError},
        passwords,
        scope::Role,
    },
    oauth::{
        http_auth::{self, Challenge},
        revocation::{self, Revocation},
    },
    state::AppState,
    store::{RoleChange, StoreError},
};

/// The OpenAPI 3.1 description served at `/admin/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The default and largest page size of list endpoints.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 200;

/// An error answer of the provisioning API.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }
    fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            axum::Json(json!({ "error": self.code, "message": self.message })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                Challenge::bearer()
                    .param("realm", "portcullis-admin")
                    .to_header_value(),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "provisioning API store failure");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the server could not complete the request",
        )
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Store(e) => e.into(),
            AccountError::Password(passwords::PasswordError::Hash(_)) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the server could not complete the request",
            ),
            AccountError::NotFound(_) => ApiError::not_found(e.to_string()),
            AccountError::Conflict(_) | AccountError::LastAdmin(_) => {
                ApiError::conflict(e.to_string())
            }
            AccountError::Invalid(_) | AccountError::Password(_) => {
                ApiError::invalid(e.to_string())
            }
        }
    }
}

type ApiResult<T = Response> = Result<T, ApiError>;

/// The routes under `/admin/api/v1`, authenticated by admin tokens.
pub fn router(state: AppState) -> Router<AppState> {
    let api = Router::new()
        .route("/orgs", post(create_org).get(list_orgs))
        .route(
            "/orgs/{org}",
            get(get_org).patch(update_org).delete(delete_org),
        )
        .route("/orgs/{org}/users", get(list_org_users))
        .route(
            "/orgs/{org}/members/{user}",
            put(put_member).delete(remove_member),
        )
        .route("/orgs/{org}/api-keys", get(list_org_keys))
        .route(
            "/orgs/{org}/service-clients",
            get(machines::list_service_clients).post(machines::create_service_client),
        )
        .route(
            "/orgs/{org}/service-clients/{id}",
            axum::routing::delete(machines::revoke_service_client),
        )
        .route(
            "/orgs/{org}/identity-providers",
            get(machines::list_idps)
                .post(machines::trust_idp)
                .delete(machines::remove_idp),
        )
        .route("/users", post(create_user))
        .route("/users/{user}", get(get_user).delete(delete_user))
        .route("/users/{user}/disable", post(disable_user))
        .route("/users/{user}/enable", post(enable_user))
        .route("/users/{user}/api-keys", get(list_user_keys))
        .route("/users/{user}/apps", get(list_user_apps))
        .route("/api-keys/{id}", axum::routing::delete(revoke_key))
        .route("/apps/{id}", axum::routing::delete(revoke_app))
        .fallback(unknown_route)
        .layer(middleware::from_fn_with_state(state, authenticate));
    Router::new()
        .route("/admin/api/v1/openapi.json", get(openapi))
        .nest("/admin/api/v1", api)
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn unknown_route() -> ApiError {
    ApiError::not_found(
        "there is no such endpoint in the provisioning API (see /admin/api/v1/openapi.json)",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method (see /admin/api/v1/openapi.json)",
    )
}

async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let token = match http_auth::bearer_token(request.headers()) {
        Ok(Some(token)) => token,
        Ok(None) => {
            return ApiError::unauthorized("send Authorization: Bearer <admin token>")
                .into_response();
        }
        Err(http_auth::Malformed(why)) => return ApiError::unauthorized(why).into_response(),
    };
    match tokens::is_valid(&state.store, token).await {
        Ok(true) => {
            let response = next.run(request).await;
            // axum answers a known path with an unrouted method itself,
            // with an empty body; give it the API's error shape.
            if response.status() == StatusCode::METHOD_NOT_ALLOWED
                && !response.headers().contains_key(header::CONTENT_TYPE)
            {
                return method_not_allowed().await.into_response();
            }
            response
        }
        Ok(false) => {
            ApiError::unauthorized("the admin token is unknown or revoked").into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Parses a JSON body with a clear message for each way it can be wrong.
fn body<T: DeserializeOwned>(bytes: Result<Bytes, BytesRejection>) -> ApiResult<T> {
    let bytes = bytes.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is too large",
            )
        } else {
            ApiError::invalid(format!("the request body could not be read: {e}"))
        }
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(format!("the request body is not the JSON expected: {e}")))
}

fn uuid(text: &str, what: &str) -> ApiResult<Uuid> {
    text.parse()
        .map_err(|_| ApiError::invalid(format!("{what} must be a UUID, not {text:?}")))
}

fn role(text: &str) -> ApiResult<Role> {
    Role::parse(text).ok_or_else(|| {
        ApiError::invalid(format!(
            "role must be viewer, member or admin, not {text:?}"
        ))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    limit: Option<usize>,
    cursor: Option<String>,
    external_id: Option<String>,
}

fn page_query(query: Result<Query<Page>, QueryRejection>) -> ApiResult<Page> {
    let Query(page) = query.map_err(|e| {
        ApiError::invalid(format!(
            "bad query: {}; limit is a number from 1 to {MAX_LIMIT}",
            e.body_text()
        ))
    })?;
    if page.limit.is_some_and(|l| l == 0 || l > MAX_LIMIT) {
        return Err(ApiError::invalid(format!(
            "limit is a number from 1 to {MAX_LIMIT}"
        )));
    }
    Ok(page)
}

/// One page of `items` ordered by their `id`: those after `cursor` (the id
/// of the last item of the previous page), at most `limit`.
fn paged(mut items: Vec<Value>, page: &Page) -> Response {
    let key = |v: &Value| {
        v["id"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v["id"].to_string())
    };
    items.sort_by_key(key);
    let limit = page.limit.unwrap_or(DEFAULT_LIMIT);
    let after: Vec<Value> = items
        .into_iter()
        .filter(|v| page.cursor.as_deref().is_none_or(|c| key(v).as_str() > c))
        .collect();
    let next = (after.len() > limit).then(|| key(&after[limit - 1]));
    let items: Vec<Value> = after.into_iter().take(limit).collect();
    axum::Json(json!({ "items": items, "next_cursor": next })).into_response()
}

fn ok(value: Value) -> Response {
    axum::Json(value).into_response()
}

fn created(value: Value) -> Response {
    (StatusCode::CREATED, axum::Json(value)).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

// ---- orgs ----

async fn org_json(state: &AppState, id: Uuid) -> ApiResult<Value> {
    let org = state
        .store
        .get_org(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no organization {id}")))?;
    let external_id = state.store.org_external_id(id).await?;
    Ok(json!({
        "id": org.id, "name": org.name, "created_at": org.created_at, "external_id": external_id
    }))
}

fn external_id(text: &str) -> ApiResult<&str> {
    let id = text.trim();
    let max = crate::federation::admin::MAX_EXTERNAL_ID_CHARS;
    if id.is_empty() || id.chars().count() > max || id.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "external_id is 1 to {max} printable characters"
        )));
    }
    Ok(id)
}

fn external_id_taken(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict => {
            ApiError::conflict("another organization already has that external_id")
        }
        StoreError::NotFound => ApiError::not_found("no such organization"),
        e => e.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrg {
    name: String,
    external_id: Option<String>,
}

async fn create_org(
    State(state): State<AppState>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let new: NewOrg = body(bytes)?;
    let ext = new.external_id.as_deref().map(external_id).transpose()?;
    if let Some(ext) = ext
        && state.store.org_id_by_external_id(ext).await?.is_some()
    {
        return Err(ApiError::conflict(
            "another organization already has that external_id",
        ));
    }
    let org = accounts::create_org(&state.store, &new.name).await?;
    if let Some(ext) = ext
        && let Err(e) = state.store.set_org_external_id(org.id, Some(ext)).await
    {
        // Created a moment ago and still empty: undo rather than leave an
        // org without the external id the caller asked for.
        let _ = state.store.delete_empty_org(org.id).await;
        return Err(external_id_taken(e));
    }
    Ok(created(org_json(&state, org.id).await?))
}

async fn list_orgs(
    State(state): State<AppState>,
    query: Result<Query<Page>, QueryRejection>,
) -> ApiResult {
    let page = page_query(query)?;
    if let Some(ext) = &page.external_id {
        let id = state
            .store
            .org_id_by_external_id(ext.trim())
            .await?
            .ok_or_else(|| {
                ApiError::not_found(format!("no organization with external_id {ext:?}"))
            })?;
        return Ok(ok(org_json(&state, id).await?));
    }
    let items = accounts::list_orgs(&state.store)
        .await?
        .into_iter()
        .map(|o| serde_json::to_value(o).unwrap_or_default())
        .collect();
    Ok(paged(items, &page))
}

async fn get_org(State(state): State<AppState>, Path(org): Path<String>) -> ApiResult {
    Ok(ok(
        org_json(&state, uuid(&org, "the organization id")?).await?
    ))
}

async fn update_org(
    State(state): State<AppState>,
    Path(org): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let id = uuid(&org, "the organization id")?;
    let patch: serde_json::Map<String, Value> = body(bytes)?;
    if let Some(other) = patch.keys().find(|k| *k != "name" && *k != "external_id") {
        return Err(ApiError::invalid(format!(
            "unknown field {other:?}; send name and/or external_id"
        )));
    }
    let name = match patch.get("name") {
        None => None,
        Some(Value::String(name)) => Some(name.as_str()),
        Some(_) => return Err(ApiError::invalid("name must be a string")),
    };
    // `null` clears the external id; absent leaves it.
    let ext = match patch.get("external_id") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(e)) => Some(Some(external_id(e)?)),
        Some(_) => return Err(ApiError::invalid("external_id must be a string or null")),
    };
    if name.is_none() && ext.is_none() {
        return Err(ApiError::invalid("send name and/or external_id to change"));
    }
    org_json(&state, id).await?;
    if let Some(name) = name {
        accounts::rename_org(&state.store, id, name).await?;
    }
    if let Some(ext) = ext {
        state
            .store
            .set_org_external_id(id, ext)
            .await
            .map_err(external_id_taken)?;
    }
    Ok(ok(org_json(&state, id).await?))
}

async fn delete_org(State(state): State<AppState>, Path(org): Path<String>) -> ApiResult {
    let id = uuid(&org, "the organization id")?;
    state
        .store
        .delete_empty_org(id)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => ApiError::conflict(
                "the organization still has members or service clients; remove them first",
            ),
            StoreError::NotFound => ApiError::not_found(format!("no organization {id}")),
            e => e.into(),
        })?;
    tracing::info!(org_id = %id, "organization deleted through the provisioning API");
    Ok(no_content())
}

async fn list_org_users(
    State(state): State<AppState>,
    Path(org): Path<String>,
    query: Result<Query<Page>, QueryRejection>,
) -> ApiResult {
    let id = uuid(&org, "the organization id")?;
    let page = page_query(query)?;
    let items = accounts::list_users(&state.store, Some(id))
        .await?
        .into_iter()
        .map(|u| serde_json::to_value(u).unwrap_or_default())
        .collect();
    Ok(paged(items, &page))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    role: String,
}

async fn put_member(
    State(state): State<AppState>,
    Path((org, user)): Path<(String, String)>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let org_id = uuid(&org, "the organization id")?;
    let user_id = uuid(&user, "the user id")?;
    let role = role(&body::<RoleBody>(bytes)?.role)?;
    accounts::user_by_id(&state.store, user_id).await?;
    match state
        .store
        .set_membership(user_id, org_id, role)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found(format!("no organization {org_id}")),
            e => e.into(),
        })? {
        RoleChange::LastAdmin => {
            return Err(ApiError::conflict(
                "this is the organization's only admin; make someone else an admin first",
            ));
        }
        RoleChange::Done => {}
    }
    revocation::revoked(&state, Revocation::Membership { user_id, org_id }).await;
    Ok(ok(
        json!({ "user_id": user_id, "org_id": org_id, "role": role }),
    ))
}

async fn remove_member(
    State(state): State<AppState>,
    Path((org, user)): Path<(String, String)>,
) -> ApiResult {
    let org_id = uuid(&org, "the organization id")?;
    let user_id = uuid(&user, "the user id")?;
    let revoked = accounts::remove_member(&state.store, user_id, org_id).await?;
    accounts::apply_locally(&state, &revoked);
    revocation::revoked(&state, Revocation::Membership { user_id, org_id }).await;
    announce_revoked(&state, &revoked).await;
    Ok(no_content())
}

async fn announce_revoked(state: &AppState, revoked: &crate::store::Revoked) {
    for key in &revoked.api_keys {
        revocation::announce(&state.store, &Revocation::ApiKey(key.clone())).await;
    }
    if !revoked.grants.is_empty() {
        revocation::announce(&state.store, &Revocation::Resync).await;
    }
}

async fn list_org_keys(State(state): State<AppState>, Path(org): Path<String>) -> ApiResult {
    let id = uuid(&org, "the organization id")?;
    org_json(&state, id).await?;
    let keys = state.store.api_keys(None, Some(id)).await?;
    Ok(ok(json!({ "items": keys })))
}

// ---- users ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMembership {
    org_id: Uuid,
    role: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    email: String,
    password: Option<String>,
    memberships: Vec<NewMembership>,
}

async fn user_json(state: &AppState, id: Uuid) -> ApiResult<Value> {
    let user = accounts::user_by_id(&state.store, id).await?;
    let memberships: Vec<Value> = state
        .store
        .memberships(id)
        .await?
        .into_iter()
        .map(|m| json!({ "org_id": m.org.id, "org_name": m.org.name, "role": m.role }))
        .collect();
    Ok(json!({
        "id": user.id, "email": user.email, "created_at": user.created_at,
        "disabled_at": user.disabled_at, "memberships": memberships,
        "providers": state.store.user_providers(id).await?,
    }))
}

async fn create_user(
    State(state): State<AppState>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let new: NewUser = body(bytes)?;
    let email = crate::identity::email::display_form(&new.email)
        .map_err(|e| ApiError::invalid(format!("email: {e}")))?
        .to_owned();
    let Some((first, rest)) = new.memberships.split_first() else {
        return Err(ApiError::invalid(
            "memberships needs at least one {\"org_id\", \"role\"}: a user outside every organization cannot sign in",
        ));
    };
    let mut roles = Vec::new();
    for m in &new.memberships {
        if state.store.get_org(m.org_id).await?.is_none() {
            return Err(ApiError::not_found(format!("no organization {}", m.org_id)));
        }
        roles.push(role(&m.role)?);
    }
    let hash = match &new.password {
        Some(password) => {
            passwords::policy(password, Some(&email)).map_err(AccountError::from)?;
            state
                .passwords
                .hash(password)
                .await
                .map_err(AccountError::from)?
        }
        // Signs in through a provider or the hand-off only.
        None => crate::store::NO_PASSWORD.to_owned(),
    };
    let user = state
        .store
        .create_user(&email, &hash, first.org_id, roles[0])
        .await
        .map_err(|e| match e {
            StoreError::Conflict => ApiError::conflict("a user with this email already exists"),
            StoreError::NotFound => ApiError::not_found("no such organization"),
            e => e.into(),
        })?;
    for (m, role) in rest.iter().zip(&roles[1..]) {
        if let Err(e) = state.store.set_membership(user.id, m.org_id, *role).await {
            // No half-made user: take it back out.
            let _ = accounts::delete_user(&state.store, user.id).await;
            return Err(match e {
                StoreError::NotFound => {
                    ApiError::not_found(format!("no organization {}", m.org_id))
                }
                e => e.into(),
            });
        }
    }
    tracing::info!(user_id = %user.id, "user created through the provisioning API");
    Ok(created(user_json(&state, user.id).await?))
}

async fn get_user(State(state): State<AppState>, Path(user): Path<String>) -> ApiResult {
    Ok(ok(user_json(&state, uuid(&user, "the user id")?).await?))
}

async fn delete_user(State(state): State<AppState>, Path(user): Path<String>) -> ApiResult {
    let id = uuid(&user, "the user id")?;
    let revoked = accounts::delete_user(&state.store, id).await?;
    accounts::apply_locally(&state, &revoked);
    revocation::revoked(&state, Revocation::User(id)).await;
    announce_revoked(&state, &revoked).await;
    Ok(no_content())
}

async fn disable_user(State(state): State<AppState>, Path(user): Path<String>) -> ApiResult {
    let id = uuid(&user, "the user id")?;
    accounts::disable_user(&state.store, id).await?;
    revocation::revoked(&state, Revocation::User(id)).await;
    Ok(ok(user_json(&state, id).await?))
}

async fn enable_user(State(state): State<AppState>, Path(user): Path<String>) -> ApiResult {
    let id = uuid(&user, "the user id")?;
    accounts::enable_user(&state.store, id).await?;
    revocation::revoked(&state, Revocation::User(id)).await;
    Ok(ok(user_json(&state, id).await?))
}

async fn list_user_keys(State(state): State<AppState>, Path(user): Path<String>) -> ApiResult {
    let id = uuid(&user, "the user id")?;
    accounts::user_by_id(&state.store, id).await?;
    let keys = state.store.api_keys(Some(id), None).await?;
    Ok(ok(json!({ "items": keys })))
}

async fn list_user_apps(State(state): State<AppState>, Path(user): Path<String>) -> ApiResult {
    let id = uuid(&user, "the user id")?;
    accounts::user_by_id(&state.store, id).await?;
    let grants: Vec<Value> = state
        .store
        .grants(Some(id), None)
        .await?
        .into_iter()
        .map(|g| {
            json!({
                "id": g.id, "client_id": g.client_id, "client_name": g.client_name,
                "org_id": g.org_id, "scope": g.scope.to_string(), "resource": g.resource,
                "created_at": g.created_at, "last_used_at": g.last_used_at,
            })
        })
        .collect();
    Ok(ok(json!({ "items": grants })))
}

async fn revoke_key(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    if !state.store.revoke_api_key(&id).await? {
        return Err(ApiError::not_found(format!("no live API key {id:?}")));
    }
    revocation::revoked(&state, Revocation::ApiKey(id.clone())).await;
    tracing::info!(key_id = %id, "API key revoked through the provisioning API");
    Ok(no_content())
}

async fn revoke_app(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let grant_id = uuid(&id, "the connected app (grant) id")?;
    if !state.store.revoke_grant(grant_id).await? {
        return Err(ApiError::not_found(format!(
            "no live connected app {grant_id}"
        )));
    }
    revocation::revoked(&state, Revocation::Grant(grant_id)).await;
    tracing::info!(%grant_id, "grant revoked through the provisioning API");
    Ok(no_content())
}

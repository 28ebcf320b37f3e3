//! Rows as the rest of the program sees them.

use serde::Serialize;
use uuid::Uuid;

use crate::identity::scope::{Role, ScopeSet};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Org {
    pub id: Uuid,
    pub name: String,
    pub created_at: i64,
}

#[derive(Clone, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub created_at: i64,
    /// Set while the account is disabled (README "Accounts"). Queries that
    /// do not select it read `None`.
    #[sqlx(default)]
    pub disabled_at: Option<i64>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Membership {
    pub org: Org,
    pub role: Role,
}

#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub role: Role,
    pub joined_at: i64,
}

/// A registered OAuth client (DCR). Clients identified by a metadata document
/// URL are not stored; see `oauth::cimd`.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub secret_hash: Option<String>,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: String,
    /// The registration request as echoed back (RFC 7591 §3.2.1).
    pub metadata: serde_json::Value,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct AuthCode {
    pub code_hash: String,
    pub client_id: String,
    pub client_name: String,
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: ScopeSet,
    pub resource: String,
    pub nonce: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub grant_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Grant {
    pub id: Uuid,
    pub client_id: String,
    pub client_name: String,
    pub redirect_uri: String,
    pub user_id: Uuid,
    pub org_id: Uuid,
    #[serde(serialize_with = "scope_string")]
    pub scope: ScopeSet,
    pub resource: String,
    pub nonce: Option<String>,
    pub created_at: i64,
    pub last_used_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub token_hash: String,
    pub grant_id: Uuid,
    pub parent_hash: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    #[serde(skip)]
    pub secret_hash: String,
    #[serde(serialize_with = "scope_string")]
    pub scopes: ScopeSet,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ToolCall {
    pub id: Uuid,
    pub at: i64,
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub source: String,
    pub client_id: Option<String>,
    pub api_key_id: Option<String>,
    pub tool: String,
    pub outcome: String,
    pub duration_ms: i64,
    pub upstream_status: Option<i64>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ToolCallFilter {
    pub tool: Option<String>,
    pub user_id: Option<Uuid>,
    pub outcome: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Only rows strictly older than this (id-free keyset paging on `at`).
    pub before: Option<i64>,
    pub limit: i64,
}

/// Where the next page of the audit log starts: just after this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolCallCursor {
    pub at: i64,
    pub id: Uuid,
}

/// What happened when a refresh token was presented.
#[derive(Debug)]
pub enum Rotation {
    /// The token was current; the new one is stored.
    Rotated(Grant),
    /// The token had just been rotated and its replacement not yet used: a
    /// racing refresh, tolerated within the grace period.
    Raced(Grant),
    /// An old token came back: the grant has been revoked.
    Reused { grant_id: Uuid },
    /// Unknown, expired or belonging to a revoked grant.
    Invalid,
}

/// What happened when an authorization code was presented.
#[derive(Debug)]
pub enum CodeRedemption<E> {
    /// The code passed the caller's checks; its single use, the grant and the
    /// grant's first refresh token were committed in one transaction.
    Redeemed(Box<Grant>),
    /// The caller's checks refused the code (a wrong `code_verifier`, say).
    /// The code is not consumed but the failure is counted; after
    /// [`MAX_CODE_FAILURES`] the code is dead.
    Refused(E),
    /// Presented before; the grant it produced (if any) has been revoked.
    Replayed,
    Unknown,
}

/// Failed presentations after which an authorization code can no longer be
/// redeemed: enough for a client bug to be retried, too few to guess a
/// `code_verifier` (which has at least 256 bits anyway).
pub const MAX_CODE_FAILURES: i64 = 5;

/// The outcome of a role change (or a new membership).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    Done,
    /// Refused: the user is the organization's only admin, and an org with no
    /// admin could never be managed again.
    LastAdmin,
}

fn scope_string<S: serde::Serializer>(scope: &ScopeSet, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&scope.to_string())
}

//! Rows of issue 16: service clients (the `client_credentials` grant),
//! enterprise identity providers trusted per org (ID-JAG), links from an
//! enterprise subject to a user, and single-use assertion ids.

use uuid::Uuid;

use super::{Grant, Result, Store, StoreError, conflict, now};
use crate::identity::scope::{Role, ScopeSet};

/// A machine client of one org (README "Machine clients").
#[derive(Debug, Clone)]
pub struct ServiceClient {
    /// Also its OAuth `client_id` (as text) and its tokens' `sub`.
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    /// Its tokens never carry a scope above this role's ceiling.
    pub role: Role,
    /// The scopes it may ask for (already within the role's ceiling when created).
    pub scope: ScopeSet,
    /// `client_secret_basic` (a secret, also accepted in the form) or `private_key_jwt`.
    pub auth_method: String,
    pub secret_hash: Option<String>,
    /// A JWKS document (JSON text) holding its public keys.
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// An enterprise identity provider an org trusts to assert its users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterpriseIdp {
    pub org_id: Uuid,
    /// The assertion's `iss`, compared exactly.
    pub issuer: String,
    pub jwks_uri: String,
    /// Asymmetric JWS algorithm names, e.g. `["RS256", "ES256"]`.
    pub algorithms: Vec<String>,
    /// Whether an unknown subject may be linked to the member with the
    /// assertion's `email`.
    pub link_by_email: bool,
    pub created_at: i64,
}

type ServiceRow = (
    Uuid,
    Uuid,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
);

macro_rules! service_select {
    ($rest:literal) => {
        concat!(
            "SELECT id, org_id, name, role, scope, auth_method, secret_hash, jwks, jwks_uri, created_at, revoked_at FROM service_clients ",
            $rest
        )
    };
}

fn service_from_row(r: ServiceRow) -> Result<ServiceClient> {
    Ok(ServiceClient {
        id: r.0,
        org_id: r.1,
        name: r.2,
        role: Role::parse(&r.3).ok_or_else(|| StoreError::Corrupt(format!("role {:?}", r.3)))?,
        scope: ScopeSet::parse_lenient(&r.4),
        auth_method: r.5,
        secret_hash: r.6,
        jwks: r.7,
        jwks_uri: r.8,
        created_at: r.9,
        revoked_at: r.10,
    })
}

type IdpRow = (Uuid, String, String, String, bool, i64);

fn idp_from_row(r: IdpRow) -> EnterpriseIdp {
    EnterpriseIdp {
        org_id: r.0,
        issuer: r.1,
        jwks_uri: r.2,
        algorithms: r.3.split_whitespace().map(str::to_owned).collect(),
        link_by_email: r.4,
        created_at: r.5,
    }
}

macro_rules! idp_select {
    ($rest:literal) => {
        concat!(
            "SELECT org_id, issuer, jwks_uri, algorithms, link_by_email, created_at FROM enterprise_idps ",
            $rest
        )
    };
}

impl Store {
    pub async fn insert_service_client(&self, c: &ServiceClient) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query(
            "INSERT INTO service_clients (id, org_id, name, role, scope, auth_method, secret_hash, jwks, jwks_uri, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )
        .bind(c.id)
        .bind(c.org_id)
        .bind(&c.name)
        .bind(c.role.as_str())
        .bind(c.scope.to_string())
        .bind(&c.auth_method)
        .bind(&c.secret_hash)
        .bind(&c.jwks)
        .bind(&c.jwks_uri)
        .bind(c.created_at)
        .execute(pool)
        .await
        .map_err(conflict)
        .map(drop)
        })
    }

    /// The service client `id`, revoked or not.
    pub async fn service_client(&self, id: Uuid) -> Result<Option<ServiceClient>> {
        let sql = service_select!("WHERE id = $1");
        let row: Option<ServiceRow> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(pool)
            .await?);
        row.map(service_from_row).transpose()
    }

    /// The org's service clients, revoked ones included, oldest first.
    pub async fn service_clients(&self, org_id: Uuid) -> Result<Vec<ServiceClient>> {
        let sql = service_select!("WHERE org_id = $1 ORDER BY created_at, id");
        let rows: Vec<ServiceRow> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(org_id)
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(service_from_row).collect()
    }

    /// Revokes a service client; its tokens are refused once the revocation
    /// is seen (at once here, within one revocation poll elsewhere), because
    /// their `grant_id` is the client's id. `org_id` limits the revocation
    /// to one org's clients when given. True when it was live.
    pub async fn revoke_service_client(&self, id: Uuid, org_id: Option<Uuid>) -> Result<bool> {
        let at = now();
        Ok(on_pool!(self, |pool| sqlx::query(
            "UPDATE service_clients SET revoked_at = $2
             WHERE id = $1 AND revoked_at IS NULL AND ($3 IS NULL OR org_id = $3)"
        )
        .bind(id)
        .bind(at)
        .bind(org_id)
        .execute(pool)
        .await?
        .rows_affected()
            > 0))
    }

    /// Spends the single use of an assertion id (`jti` of `issuer`) until
    /// `expires_at` (Unix seconds). False when it was already spent: the
    /// primary key decides, so two instances cannot both accept it.
    pub async fn spend_assertion_id(
        &self,
        issuer: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool> {
        let now = now();
        on_pool!(self, |pool| {
            sqlx::query("DELETE FROM used_assertions WHERE expires_at < $1")
                .bind(now)
                .execute(pool)
                .await?;
            match sqlx::query(
                "INSERT INTO used_assertions (issuer, jti, expires_at) VALUES ($1, $2, $3)",
            )
            .bind(issuer)
            .bind(jti)
            .bind(expires_at)
            .execute(pool)
            .await
            .map_err(conflict)
            {
                Ok(_) => Ok(true),
                Err(StoreError::Conflict) => Ok(false),
                Err(e) => Err(e),
            }
        })
    }

    /// Trusts (or updates) an enterprise identity provider for an org.
    pub async fn set_enterprise_idp(&self, idp: &EnterpriseIdp) -> Result<()> {
        let algorithms = idp.algorithms.join(" ");
        on_pool!(self, |pool| {
            sqlx::query(
            "INSERT INTO enterprise_idps (org_id, issuer, jwks_uri, algorithms, link_by_email, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (org_id, issuer) DO UPDATE SET jwks_uri = excluded.jwks_uri,
               algorithms = excluded.algorithms, link_by_email = excluded.link_by_email"
        )
        .bind(idp.org_id)
        .bind(&idp.issuer)
        .bind(&idp.jwks_uri)
        .bind(&algorithms)
        .bind(idp.link_by_email)
        .bind(idp.created_at)
        .execute(pool)
        .await
        .map(drop)?
        });
        Ok(())
    }

    /// Stops trusting `issuer` for `org_id`; true when it was trusted.
    pub async fn remove_enterprise_idp(&self, org_id: Uuid, issuer: &str) -> Result<bool> {
        Ok(on_pool!(self, |pool| sqlx::query(
            "DELETE FROM enterprise_idps WHERE org_id = $1 AND issuer = $2"
        )
        .bind(org_id)
        .bind(issuer)
        .execute(pool)
        .await?
        .rows_affected()
            > 0))
    }

    /// The identity providers `org_id` trusts.
    pub async fn enterprise_idps(&self, org_id: Uuid) -> Result<Vec<EnterpriseIdp>> {
        let sql = idp_select!("WHERE org_id = $1 ORDER BY issuer");
        let rows: Vec<IdpRow> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(org_id)
            .fetch_all(pool)
            .await?);
        Ok(rows.into_iter().map(idp_from_row).collect())
    }

    /// Every org's trust in `issuer`.
    pub async fn enterprise_idps_by_issuer(&self, issuer: &str) -> Result<Vec<EnterpriseIdp>> {
        let sql = idp_select!("WHERE issuer = $1 ORDER BY org_id");
        let rows: Vec<IdpRow> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(issuer)
            .fetch_all(pool)
            .await?);
        Ok(rows.into_iter().map(idp_from_row).collect())
    }

    /// The user linked to `(provider, subject)` in `external_identities`.
    pub async fn external_identity_user(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<Uuid>> {
        let row: Option<(Uuid,)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT user_id FROM external_identities WHERE provider = $1 AND subject = $2"
        )
        .bind(provider)
        .bind(subject)
        .fetch_optional(pool)
        .await?);
        Ok(row.map(|r| r.0))
    }

    /// Links `(provider, subject)` to `user_id` (a second link of the same
    /// subject is a `Conflict`), and notes the sign-in time.
    pub async fn link_external_identity(
        &self,
        provider: &str,
        subject: &str,
        user_id: Uuid,
        email: Option<&str>,
    ) -> Result<()> {
        let at = now();
        on_pool!(self, |pool| {
            sqlx::query(
            "INSERT INTO external_identities (provider, subject, user_id, email, created_at, last_login_at)
             VALUES ($1, $2, $3, $4, $5, $5)"
        )
        .bind(provider)
        .bind(subject)
        .bind(user_id)
        .bind(email)
        .bind(at)
        .execute(pool)
        .await
        .map_err(conflict)
        .map(drop)
        })
    }

    /// Records a grant that has no refresh token (an identity assertion
    /// exchange): it is listed and revocable like any other.
    pub async fn insert_grant_without_refresh(&self, grant: &Grant) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query(
            "INSERT INTO grants (id, client_id, client_name, redirect_uri, user_id, org_id, scope, resource, nonce, created_at, last_used_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        )
        .bind(grant.id)
        .bind(&grant.client_id)
        .bind(&grant.client_name)
        .bind(&grant.redirect_uri)
        .bind(grant.user_id)
        .bind(grant.org_id)
        .bind(grant.scope.to_string())
        .bind(&grant.resource)
        .bind(&grant.nonce)
        .bind(grant.created_at)
        .bind(grant.last_used_at)
        .execute(pool)
        .await
        .map(drop)?
        });
        Ok(())
    }
}

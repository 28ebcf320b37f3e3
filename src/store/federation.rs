//! Accounts of people who sign in through an upstream identity provider:
//! found by (provider, subject), created just in time, their memberships
//! replaced by what the provider's claims say, all in one transaction.

use sqlx::Row;
use uuid::Uuid;

use super::{BeginWrite, Result, Store, StoreError, User, conflict, email, now};
use crate::identity::scope::Role;

/// Stored in place of a password hash for accounts created through a
/// provider. It is not a PHC string, so no password ever verifies against it.
pub const NO_PASSWORD: &str = "!federated";

/// What a provider said about the person signing in, already mapped.
#[derive(Debug, Clone)]
pub struct FederatedSignIn<'a> {
    pub provider: &'a str,
    pub subject: &'a str,
    pub email: &'a str,
    /// Link to an existing account with this email (the provider verified the
    /// address and its configuration allows it).
    pub may_link: bool,
    /// The orgs (by external id) the claims name, with the role in each; an
    /// org not yet known is created when `create_orgs` is set.
    pub orgs: Vec<(String, Role)>,
    pub create_orgs: bool,
    /// A fixed org (by id) for providers that map everyone to one org.
    pub fixed_org: Option<(Uuid, Role)>,
}

/// Why a federated sign-in was refused; each has a page of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInRefused {
    /// Another account has this email and linking is not allowed.
    EmailTaken,
    /// The account is disabled.
    Disabled,
    /// No organization here matches the claims.
    NoOrganization,
}

/// The outcome of [`Store::federated_sign_in`].
pub type SignInOutcome = std::result::Result<User, SignInRefused>;

impl Store {
    /// Finds or creates the account for (provider, subject) and replaces its
    /// memberships in orgs that carry an external id (the ones a provider
    /// governs) with `orgs`; memberships in orgs created by hand without an
    /// external id are left alone. Nothing is written when the sign-in is refused.
    pub async fn federated_sign_in(&self, s: &FederatedSignIn<'_>) -> Result<SignInOutcome> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let t = now();
            let known: Option<Uuid> = sqlx::query_scalar(
                "SELECT user_id FROM external_identities WHERE provider = $1 AND subject = $2",
            )
            .bind(s.provider)
            .bind(s.subject)
            .fetch_optional(&mut *tx)
            .await?;
            let user_id = match known {
                Some(id) => {
                    sqlx::query(
                        "UPDATE external_identities SET last_login_at = $1, email = $2 WHERE provider = $3 AND subject = $4",
                    )
                    .bind(t)
                    .bind(s.email)
                    .bind(s.provider)
                    .bind(s.subject)
                    .execute(&mut *tx)
                    .await?;
                    id
                }
                None => {
                    let existing: Option<Uuid> =
                        sqlx::query_scalar("SELECT id FROM users WHERE email_canonical = $1")
                            .bind(email::canonical(s.email))
                            .fetch_optional(&mut *tx)
                            .await?;
                    let id = match existing {
                        Some(_) if !s.may_link => return Ok(Err(SignInRefused::EmailTaken)),
                        Some(id) => id,
                        None => {
                            let id = Uuid::new_v4();
                            sqlx::query(
                                "INSERT INTO users (id, email, email_canonical, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
                            )
                            .bind(id)
                            .bind(s.email)
                            .bind(email::canonical(s.email))
                            .bind(NO_PASSWORD)
                            .bind(t)
                            .execute(&mut *tx)
                            .await
                            .map_err(conflict)?;
                            id
                        }
                    };
                    sqlx::query(
                        "INSERT INTO external_identities (provider, subject, user_id, email, created_at, last_login_at) VALUES ($1, $2, $3, $4, $5, $5)",
                    )
                    .bind(s.provider)
                    .bind(s.subject)
                    .bind(id)
                    .bind(s.email)
                    .bind(t)
                    .execute(&mut *tx)
                    .await
                    .map_err(conflict)?;
                    id
                }
            };
            let row = sqlx::query(
                "SELECT id, email, password_hash, created_at, disabled_at FROM users WHERE id = $1",
            )
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?;
            if row.try_get::<Option<i64>, _>(4)?.is_some() {
                return Ok(Err(SignInRefused::Disabled));
            }
            let user = User {
                id: row.try_get(0)?,
                email: row.try_get(1)?,
                password_hash: row.try_get(2)?,
                created_at: row.try_get(3)?,
                disabled_at: None,
            };

            // The orgs the claims name, resolved (and created if allowed).
            let mut wanted: Vec<(Uuid, Role)> = s.fixed_org.into_iter().collect();
            for (external_id, role) in &s.orgs {
                if s.create_orgs {
                    sqlx::query(
                        "INSERT INTO orgs (id, name, created_at, external_id) VALUES ($1, $2, $3, $2)
                         ON CONFLICT (external_id) DO NOTHING",
                    )
                    .bind(Uuid::new_v4())
                    .bind(external_id)
                    .bind(t)
                    .execute(&mut *tx)
                    .await?;
                }
                let org: Option<Uuid> =
                    sqlx::query_scalar("SELECT id FROM orgs WHERE external_id = $1")
                        .bind(external_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                if let Some(org) = org
                    && !wanted.iter().any(|(o, _)| *o == org)
                {
                    wanted.push((org, *role));
                }
            }

            // Memberships the provider governs and no longer names go.
            let governed: Vec<Uuid> = sqlx::query_scalar(
                "SELECT m.org_id FROM memberships m JOIN orgs o ON o.id = m.org_id
                 WHERE m.user_id = $1 AND o.external_id IS NOT NULL",
            )
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await?;
            for org in governed {
                if !wanted.iter().any(|(o, _)| *o == org) {
                    sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND org_id = $2")
                        .bind(user_id)
                        .bind(org)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            for (org, role) in &wanted {
                sqlx::query(
                    "INSERT INTO memberships (user_id, org_id, role, created_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (user_id, org_id) DO UPDATE SET role = excluded.role",
                )
                .bind(user_id)
                .bind(org)
                .bind(role.as_str())
                .bind(t)
                .execute(&mut *tx)
                .await
                .map_err(|e| match &e {
                    sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                        StoreError::NotFound
                    }
                    _ => StoreError::Database(e),
                })?;
            }
            let members: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_one(&mut *tx)
                    .await?;
            // The removals above are kept: a person the provider no longer
            // puts in any org must lose what they had here.
            tx.commit().await?;
            if members == 0 {
                return Ok(Err(SignInRefused::NoOrganization));
            }
            Ok(Ok(user))
        })
    }

    /// Creates an org that carries the product's own id for it; `Conflict`
    /// when another org has that external id (nothing is written then).
    pub async fn create_org_with_external_id(
        &self,
        name: &str,
        external_id: &str,
    ) -> Result<super::Org> {
        let org = super::Org {
            id: Uuid::new_v4(),
            name: name.to_owned(),
            created_at: now(),
        };
        on_pool!(self, |pool| {
            sqlx::query(
            "INSERT INTO orgs (id, name, created_at, external_id, name_canonical) VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(org.id)
        .bind(&org.name)
        .bind(org.created_at)
        .bind(external_id)
        // Names are unique ignoring case here too (README "Accounts").
        .bind(super::org_name_key(&org.name))
        .execute(pool)
        .await
        .map_err(conflict)
        .map(drop)?
        });
        Ok(org)
    }

    /// The org whose external id is `external_id`.
    pub async fn org_id_by_external_id(&self, external_id: &str) -> Result<Option<Uuid>> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT id FROM orgs WHERE external_id = $1"
        )
        .bind(external_id)
        .fetch_optional(pool)
        .await?))
    }

    /// Sets (or with `None` clears) an org's external id; `Conflict` when
    /// another org has it, `NotFound` when there is no such org.
    pub async fn set_org_external_id(&self, org_id: Uuid, external_id: Option<&str>) -> Result<()> {
        let n = on_pool!(self, |pool| sqlx::query(
            "UPDATE orgs SET external_id = $1 WHERE id = $2"
        )
        .bind(external_id)
        .bind(org_id)
        .execute(pool)
        .await
        .map_err(conflict)?
        .rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// An org's external id, if it has one.
    pub async fn org_external_id(&self, org_id: Uuid) -> Result<Option<String>> {
        Ok(
            on_pool!(self, |pool| sqlx::query_scalar::<_, Option<String>>(
                "SELECT external_id FROM orgs WHERE id = $1"
            )
            .bind(org_id)
            .fetch_optional(pool)
            .await?)
            .flatten(),
        )
    }

    /// (user, provider id) for every member of `org_id` who signs in through
    /// a provider.
    pub async fn org_member_providers(&self, org_id: Uuid) -> Result<Vec<(Uuid, String)>> {
        let rows = on_pool!(self, |pool| sqlx::query(
            "SELECT e.user_id, e.provider FROM external_identities e
             JOIN memberships m ON m.user_id = e.user_id WHERE m.org_id = $1
             ORDER BY e.created_at, e.provider"
        )
        .bind(org_id)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<std::result::Result<Vec<_>, sqlx::Error>>()?);
        Ok(rows)
    }

    /// The providers (configured ids) a user signs in with, oldest first.
    pub async fn user_providers(&self, user_id: Uuid) -> Result<Vec<String>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar(
            "SELECT provider FROM external_identities WHERE user_id = $1 ORDER BY created_at, provider"
        )
        .bind(user_id)
        .fetch_all(pool)
        .await?
        }))
    }
}

impl Store {
    /// Records a hand-off assertion's `jti` as used; false when it already
    /// was (a replay). Expired records are swept on the way.
    pub async fn use_handoff_jti(
        &self,
        provider: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool> {
        on_pool!(self, |pool| {
            sqlx::query("DELETE FROM handoff_assertions WHERE expires_at < $1")
                .bind(now() - 300)
                .execute(pool)
                .await?;
            match sqlx::query(
                "INSERT INTO handoff_assertions (provider, jti, expires_at) VALUES ($1, $2, $3)",
            )
            .bind(provider)
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
}

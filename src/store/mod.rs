//! The one store: SQLite (embedded default) or PostgreSQL (shared by several
//! instances). Both backends run the same SQL text — `$n` placeholders, Unix
//! seconds for time — against their native pools; `on_pool!` expands each
//! method body once per backend so the types stay concrete.

mod models;

use std::time::Duration;

use sqlx::{Row, postgres::PgPool, sqlite::SqlitePool};
use uuid::Uuid;

pub use accounts::*;
pub use machine::{EnterpriseIdp, ServiceClient};
pub use models::*;

use crate::identity::{
    email,
    scope::{Role, ScopeSet},
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    Conflict,
    #[error("not found")]
    NotFound,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database could not be opened; the text names what was tried.
    #[error("{0}")]
    Open(String),
    /// Existing users whose emails have one canonical form: one person with
    /// two accounts. The operator merges or renames them, then migrates again.
    #[error(
        "users {0} have the same canonical email; merge or rename them, then run the migration again"
    )]
    DuplicateEmails(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

macro_rules! grant_columns {
    () => {
        "id, client_id, client_name, redirect_uri, user_id, org_id, scope, resource, nonce, created_at, last_used_at, revoked_at"
    };
}

macro_rules! key_columns {
    () => {
        "id, user_id, org_id, name, secret_hash, scopes, created_at, last_used_at, revoked_at"
    };
}

macro_rules! insert_refresh {
    ($executor:expr, $t:expr) => {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, grant_id, parent_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&$t.token_hash)
        .bind($t.grant_id)
        .bind(&$t.parent_hash)
        .bind($t.created_at)
        .bind($t.expires_at)
        .execute($executor)
        .await?
    };
}

impl Store {
    /// Connections in the pool: (open, idle), for the metrics.
    pub fn pool_connections(&self) -> (u32, usize) {
        match self {
            Store::Sqlite(pool) => (pool.size(), pool.num_idle()),
            Store::Postgres(pool) => (pool.size(), pool.num_idle()),
        }
    }
}

macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            Store::Sqlite($pool) => $body,
            Store::Postgres($pool) => $body,
        }
    };
}

// After `on_pool!`, which it uses (macros are in scope textually).
mod accounts;
mod admin_tokens;
pub use admin_tokens::AdminToken;
pub mod open;
// After `on_pool!`, which it uses.
mod machine;
mod payloads;
mod tool_stats;
pub use payloads::Payload;
pub use tool_stats::CallSample;

/// A transaction that will write after reading. SQLite must take its write
/// lock up front (`BEGIN IMMEDIATE`): a deferred transaction that has read
/// cannot upgrade while another one writes and fails at once with
/// SQLITE_BUSY, which turned two racing refreshes into a 500.
trait BeginWrite {
    type Db: sqlx::Database;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for sqlx::PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
}

/// Maps a unique-constraint violation to `Conflict` so callers can answer 409.
fn conflict(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::Database(e),
    }
}

/// Longest audit text field kept (tool name, source, client or key id), in characters.
pub const AUDIT_TEXT_CHARS: usize = 200;
/// Longest audit `detail` kept, in characters.
pub const AUDIT_DETAIL_CHARS: usize = 1000;

/// `text` as the store can hold it: NUL (which PostgreSQL refuses in text)
/// becomes U+FFFD, and anything past `max_chars` characters is cut at a
/// character boundary and marked with `…`, so one caller cannot grow a table
/// without bound.
pub fn storable(text: &str, max_chars: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max_chars)
        .map(|c| if c == '\0' { '\u{FFFD}' } else { c })
        .collect();
    if text.chars().nth(max_chars).is_some() {
        out.pop();
        out.push('…');
    }
    out
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn role(s: String) -> Result<Role> {
    Role::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("role {s:?}")))
}

// After the macros above, which it uses.
mod federation;
pub use federation::{FederatedSignIn, NO_PASSWORD, SignInRefused};

impl Store {
    /// Opens the database named by `url`, creating a SQLite file (mode
    /// 0600) if absent; see [`open`].
    pub async fn connect(url: &str) -> Result<Store> {
        Store::open(url, open::Create::IfMissing).await
    }

    pub async fn migrate(&self) -> Result<()> {
        match self {
            Store::Sqlite(pool) => sqlx::migrate!("migrations/sqlite").run(pool).await?,
            Store::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
        }
        self.backfill_canonical_emails().await?;
        self.backfill_org_name_keys().await
    }

    /// Fills `users.email_canonical` for rows written before it existed. The
    /// canonical form is computed in Rust (`identity::email::canonical`), so
    /// SQL cannot backfill it. Two existing users with one canonical email
    /// stop the start with [`StoreError::DuplicateEmails`] naming both,
    /// rather than silently keeping one of them unreachable.
    async fn backfill_canonical_emails(&self) -> Result<()> {
        let pending: Vec<(Uuid, String)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT id, email FROM users WHERE email_canonical IS NULL"
        )
        .fetch_all(pool)
        .await?);
        if pending.is_empty() {
            return Ok(());
        }
        let mut seen: std::collections::HashMap<String, Vec<String>> = Default::default();
        let existing: Vec<(String, String)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT email_canonical, email FROM users WHERE email_canonical IS NOT NULL"
        )
        .fetch_all(pool)
        .await?);
        for (canonical, shown) in existing {
            seen.entry(canonical).or_default().push(shown);
        }
        for (_, shown) in &pending {
            seen.entry(email::canonical(shown))
                .or_default()
                .push(shown.clone());
        }
        let mut clashes: Vec<String> = seen
            .into_values()
            .filter(|emails| emails.len() > 1)
            .map(|emails| emails.join(" and "))
            .collect();
        if !clashes.is_empty() {
            clashes.sort();
            return Err(StoreError::DuplicateEmails(clashes.join("; ")));
        }
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for (id, shown) in &pending {
                sqlx::query("UPDATE users SET email_canonical = $2 WHERE id = $1")
                    .bind(id)
                    .bind(email::canonical(shown))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The random secret named `name`, created on first use. Every instance
    /// sharing the database reads the same value; racing creators agree
    /// because only the first insert lands.
    pub async fn server_secret(&self, name: &str) -> Result<String> {
        let fresh = crate::identity::secret::Secret::generate();
        on_pool!(self, |pool| {
            sqlx::query(
            "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING"
        )
        .bind(name)
        .bind(fresh.expose())
        .bind(now())
        .execute(pool)
        .await
        .map(drop)?
        });
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT value FROM server_secrets WHERE name = $1"
        )
        .bind(name)
        .fetch_one(pool)
        .await?))
    }

    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    // ---- organizations, users, memberships ----

    pub async fn create_org(&self, name: &str) -> Result<Org> {
        let org = Org {
            id: Uuid::new_v4(),
            name: name.to_owned(),
            created_at: now(),
        };
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO orgs (id, name, created_at, name_canonical) VALUES ($1, $2, $3, $4)"
        )
        .bind(org.id)
        .bind(&org.name)
        .bind(org.created_at)
        .bind(org_name_key(&org.name))
        .execute(pool)
        .await
        .map_err(conflict)
        .map(drop)?);
        Ok(org)
    }

    pub async fn get_org(&self, id: Uuid) -> Result<Option<Org>> {
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, Org>(
            "SELECT id, name, created_at FROM orgs WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(pool)
        .await?))
    }

    /// Creates a user and its first membership in one transaction. `email` is
    /// stored as given (for display) and in its canonical form, which is
    /// unique: another spelling of a taken address is a `Conflict`.
    pub async fn create_user(
        &self,
        email: &str,
        password_hash: &str,
        org_id: Uuid,
        role: Role,
    ) -> Result<User> {
        let user = User {
            id: Uuid::new_v4(),
            email: email.to_owned(),
            password_hash: password_hash.to_owned(),
            created_at: now(),
            disabled_at: None,
        };
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO users (id, email, email_canonical, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(user.id)
            .bind(&user.email)
            .bind(email::canonical(&user.email))
            .bind(&user.password_hash)
            .bind(user.created_at)
            .execute(&mut *tx)
            .await
            .map_err(conflict)?;
            sqlx::query("INSERT INTO memberships (user_id, org_id, role, created_at) VALUES ($1, $2, $3, $4)")
                .bind(user.id)
                .bind(org_id)
                .bind(role.as_str())
                .bind(user.created_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| match &e {
                    sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
                    _ => StoreError::Database(e),
                })?;
            tx.commit().await?;
        });
        Ok(user)
    }

    /// The user whose canonical email equals that of `email`.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let canonical = email::canonical(email);
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, User>(
            "SELECT id, email, password_hash, created_at, disabled_at FROM users WHERE email_canonical = $1"
        )
        .bind(&canonical)
        .fetch_optional(pool)
        .await?
        }))
    }

    pub async fn user(&self, id: Uuid) -> Result<Option<User>> {
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, User>(
            "SELECT id, email, password_hash, created_at, disabled_at FROM users WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(pool)
        .await?))
    }

    /// Adds the user to the org, or changes their role there; never demotes
    /// the org's last admin. Concurrent demotions are serialised on the org's
    /// row (a no-op `UPDATE` locks it on PostgreSQL; SQLite's write
    /// transaction is exclusive), so the admin count read next is current:
    /// two admins demoting each other at once leave one of them admin.
    pub async fn set_membership(
        &self,
        user_id: Uuid,
        org_id: Uuid,
        role: Role,
    ) -> Result<RoleChange> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let org = sqlx::query("UPDATE orgs SET name = name WHERE id = $1")
                .bind(org_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if org == 0 {
                return Err(StoreError::NotFound);
            }
            if role != Role::Admin {
                let other_admins: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role = 'admin' AND user_id <> $2",
                )
                .bind(org_id)
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?;
                let is_admin: Option<String> = sqlx::query_scalar(
                    "SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2 AND role = 'admin'",
                )
                .bind(org_id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
                if is_admin.is_some() && other_admins == 0 {
                    return Ok(RoleChange::LastAdmin);
                }
            }
            sqlx::query(
                "INSERT INTO memberships (user_id, org_id, role, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (user_id, org_id) DO UPDATE SET role = excluded.role",
            )
            .bind(user_id)
            .bind(org_id)
            .bind(role.as_str())
            .bind(now())
            .execute(&mut *tx)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
                _ => StoreError::Database(e),
            })?;
            tx.commit().await?;
            Ok(RoleChange::Done)
        })
    }

    pub async fn role(&self, user_id: Uuid, org_id: Uuid) -> Result<Option<Role>> {
        let row: Option<String> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT m.role FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.user_id = $1 AND m.org_id = $2 AND u.disabled_at IS NULL"
        )
        .bind(user_id)
        .bind(org_id)
        .fetch_optional(pool)
        .await?);
        row.map(role).transpose()
    }

    pub async fn memberships(&self, user_id: Uuid) -> Result<Vec<Membership>> {
        let rows = on_pool!(self, |pool| {
            sqlx::query(
            "SELECT o.id, o.name, o.created_at, m.role FROM memberships m JOIN orgs o ON o.id = m.org_id
             WHERE m.user_id = $1 ORDER BY o.name"
        )
        .bind(user_id)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|r| Ok((Org { id: r.try_get(0)?, name: r.try_get(1)?, created_at: r.try_get(2)? }, r.try_get::<String, _>(3)?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        rows.into_iter()
            .map(|(org, r)| {
                Ok(Membership {
                    org,
                    role: role(r)?,
                })
            })
            .collect()
    }

    pub async fn members(&self, org_id: Uuid) -> Result<Vec<Member>> {
        let rows = on_pool!(self, |pool| {
            sqlx::query(
            "SELECT u.id, u.email, m.role, m.created_at FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.org_id = $1 ORDER BY u.email"
        )
        .bind(org_id)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get::<String, _>(2)?, r.try_get(3)?)))
        .collect::<Result<Vec<(Uuid, String, String, i64)>, sqlx::Error>>()?
        });
        rows.into_iter()
            .map(|(user_id, email, r, joined_at)| {
                Ok(Member {
                    user_id,
                    email,
                    role: role(r)?,
                    joined_at,
                })
            })
            .collect()
    }

    // ---- browser sessions ----

    pub async fn create_session(&self, id_hash: &str, user_id: Uuid, ttl: Duration) -> Result<()> {
        let at = now();
        on_pool!(self, |pool| {
            sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)"
        )
        .bind(id_hash)
        .bind(user_id)
        .bind(at)
        .bind(at + ttl.as_secs() as i64)
        .execute(pool)
        .await
        .map(drop)?
        });
        Ok(())
    }

    pub async fn session_user(&self, id_hash: &str) -> Result<Option<User>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, User>(
            "SELECT u.id, u.email, u.password_hash, u.created_at, u.disabled_at FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL"
        )
        .bind(id_hash)
        .bind(now())
        .fetch_optional(pool)
        .await?
        }))
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        on_pool!(self, |pool| sqlx::query(
            "DELETE FROM sessions WHERE id_hash = $1"
        )
        .bind(id_hash)
        .execute(pool)
        .await
        .map(drop)?);
        Ok(())
    }

    // ---- OAuth clients ----

    pub async fn insert_client(&self, c: &Client) -> Result<()> {
        let redirect_uris = serde_json::to_string(&c.redirect_uris).expect("strings serialize");
        on_pool!(self, |pool| {
            sqlx::query(
            "INSERT INTO clients (client_id, secret_hash, client_name, redirect_uris, token_endpoint_auth_method, metadata, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )
        .bind(&c.client_id)
        .bind(&c.secret_hash)
        .bind(&c.client_name)
        .bind(redirect_uris)
        .bind(&c.token_endpoint_auth_method)
        .bind(c.metadata.to_string())
        .bind(c.created_at)
        .execute(pool)
        .await
        .map_err(conflict)
        .map(drop)?
        });
        Ok(())
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<Client>> {
        let row = on_pool!(self, |pool| {
            sqlx::query(
            "SELECT client_id, secret_hash, client_name, redirect_uris, token_endpoint_auth_method, metadata, created_at, revoked_at
             FROM clients WHERE client_id = $1"
        )
        .bind(client_id)
        .fetch_optional(pool)
        .await?
        .map(|r| client_from_row(&r))
        .transpose()?
        });
        Ok(row)
    }

    pub async fn clients(&self) -> Result<Vec<Client>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query(
            "SELECT client_id, secret_hash, client_name, redirect_uris, token_endpoint_auth_method, metadata, created_at, revoked_at
             FROM clients ORDER BY created_at"
        )
        .fetch_all(pool)
        .await?
        .iter()
        .map(client_from_row)
        .collect::<Result<Vec<_>>>()?
        }))
    }

    /// Deletes dynamically registered clients created at or before `before`
    /// (Unix seconds) that never obtained an authorization code, so never a
    /// grant either; returns how many. Metadata-document clients are never
    /// stored, so never touched.
    pub async fn delete_unused_clients(&self, before: i64) -> Result<u64> {
        Ok(on_pool!(self, |pool| {
            sqlx::query(
                "DELETE FROM clients WHERE created_at <= $1
                 AND NOT EXISTS (SELECT 1 FROM auth_codes a WHERE a.client_id = clients.client_id)
                 AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.client_id = clients.client_id)",
            )
            .bind(before)
            .execute(pool)
            .await?
            .rows_affected()
        }))
    }

    /// Revokes a client and every grant issued to it.
    pub async fn revoke_client(&self, client_id: &str) -> Result<bool> {
        let at = now();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE clients SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL",
            )
            .bind(client_id)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query(
                "UPDATE grants SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL",
            )
            .bind(client_id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(n > 0)
        })
    }

    // ---- authorization codes, grants, refresh tokens ----

    pub async fn insert_code(&self, c: &AuthCode) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query(
            "INSERT INTO auth_codes (code_hash, client_id, client_name, user_id, org_id, redirect_uri, code_challenge, scope, resource, nonce, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        )
        .bind(&c.code_hash)
        .bind(&c.client_id)
        .bind(&c.client_name)
        .bind(c.user_id)
        .bind(c.org_id)
        .bind(&c.redirect_uri)
        .bind(&c.code_challenge)
        .bind(c.scope.to_string())
        .bind(&c.resource)
        .bind(&c.nonce)
        .bind(c.created_at)
        .bind(c.expires_at)
        .execute(pool)
        .await
        .map(drop)?
        });
        Ok(())
    }

    /// Redeems an authorization code in one transaction: reads it, lets
    /// `check` decide (client, redirect URI, PKCE, expiry), then marks it
    /// used and stores the grant and its first refresh token — all or
    /// nothing, so a crash can never burn a code without its grant.
    ///
    /// A refusal by `check` does not consume the code (a wrong
    /// `code_verifier` must not let anyone burn someone else's code); it
    /// counts a failure, and the [`MAX_CODE_FAILURES`]th kills the code. A
    /// code presented after its use revokes the grant it produced (RFC 9700
    /// §4.5.3: a replay means the code leaked); so does losing a race to
    /// redeem it.
    pub async fn redeem_code<E>(
        &self,
        code_hash: &str,
        check: impl FnOnce(&AuthCode) -> Result<(Grant, RefreshToken), E>,
    ) -> Result<CodeRedemption<E>> {
        let at = now();
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let row = sqlx::query(
                "SELECT code_hash, client_id, client_name, user_id, org_id, redirect_uri, code_challenge, scope, resource, nonce, created_at, expires_at, grant_id, used_at
                 FROM auth_codes WHERE code_hash = $1"
            )
            .bind(code_hash)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Ok(CodeRedemption::Unknown);
            };
            let code = AuthCode {
                code_hash: row.try_get(0)?,
                client_id: row.try_get(1)?,
                client_name: row.try_get(2)?,
                user_id: row.try_get(3)?,
                org_id: row.try_get(4)?,
                redirect_uri: row.try_get(5)?,
                code_challenge: row.try_get(6)?,
                scope: ScopeSet::parse_lenient(&row.try_get::<String, _>(7)?),
                resource: row.try_get(8)?,
                nonce: row.try_get(9)?,
                created_at: row.try_get(10)?,
                expires_at: row.try_get(11)?,
                grant_id: row.try_get(12)?,
            };
            let used_at: Option<i64> = row.try_get(13)?;
            let claimed = if used_at.is_some() {
                None
            } else {
                match check(&code) {
                    Err(refusal) => {
                        sqlx::query(
                            "UPDATE auth_codes SET failed_attempts = failed_attempts + 1,
                             used_at = CASE WHEN failed_attempts + 1 >= $3 THEN $2 ELSE used_at END
                             WHERE code_hash = $1 AND used_at IS NULL",
                        )
                        .bind(code_hash)
                        .bind(at)
                        .bind(MAX_CODE_FAILURES)
                        .execute(&mut *tx)
                        .await?;
                        tx.commit().await?;
                        return Ok(CodeRedemption::Refused(refusal));
                    }
                    Ok((grant, refresh)) => {
                        let n = sqlx::query(
                            "UPDATE auth_codes SET used_at = $2, grant_id = $3 WHERE code_hash = $1 AND used_at IS NULL",
                        )
                        .bind(code_hash)
                        .bind(at)
                        .bind(grant.id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        (n == 1).then_some((grant, refresh))
                    }
                }
            };
            let Some((grant, refresh)) = claimed else {
                // Used before, or by a racing request that committed first:
                // read the grant that use produced, now committed.
                let grant_id: Option<Uuid> =
                    sqlx::query_scalar("SELECT grant_id FROM auth_codes WHERE code_hash = $1")
                        .bind(code_hash)
                        .fetch_one(&mut *tx)
                        .await?;
                if let Some(grant_id) = grant_id {
                    sqlx::query(
                        "UPDATE grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                    )
                    .bind(grant_id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                return Ok(CodeRedemption::Replayed);
            };
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
            .execute(&mut *tx)
            .await?;
            insert_refresh!(&mut *tx, refresh);
            tx.commit().await?;
            Ok(CodeRedemption::Redeemed(Box::new(grant)))
        })
    }

    pub async fn grant(&self, id: Uuid) -> Result<Option<Grant>> {
        Ok(on_pool!(self, |pool| sqlx::query(concat!(
            "SELECT ",
            grant_columns!(),
            " FROM grants WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .map(|r| grant_from_row(&r))
        .transpose()?))
    }

    /// Live grants of a user (all orgs) or of an org (all users).
    pub async fn grants(&self, user_id: Option<Uuid>, org_id: Option<Uuid>) -> Result<Vec<Grant>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query(concat!(
            "SELECT ", grant_columns!(), " FROM grants WHERE revoked_at IS NULL
             AND ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR org_id = $2) ORDER BY last_used_at DESC"
        ))
        .bind(user_id)
        .bind(org_id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(grant_from_row)
        .collect::<Result<Vec<_>>>()?
        }))
    }

    pub async fn revoke_grant(&self, id: Uuid) -> Result<bool> {
        let n = on_pool!(self, |pool| sqlx::query(
            "UPDATE grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL"
        )
        .bind(id)
        .bind(now())
        .execute(pool)
        .await?
        .rows_affected());
        Ok(n > 0)
    }

    /// Revokes a grant only if `user_id` is the one who consented to it.
    pub async fn revoke_own_grant(&self, user_id: Uuid, id: Uuid) -> Result<bool> {
        let n = on_pool!(self, |pool| {
            sqlx::query(
            "UPDATE grants SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL"
        )
        .bind(id)
        .bind(user_id)
        .bind(now())
        .execute(pool)
        .await?
        .rows_affected()
        });
        Ok(n > 0)
    }

    /// Grants revoked at or after `since`, for the per-instance revocation cache.
    pub async fn revoked_grants_since(&self, since: i64) -> Result<Vec<(Uuid, i64)>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, (Uuid, i64)>(
            // Service clients' tokens carry the client's id as `grant_id`.
            "SELECT id, revoked_at FROM grants WHERE revoked_at IS NOT NULL AND revoked_at >= $1
             UNION ALL SELECT id, revoked_at FROM service_clients WHERE revoked_at IS NOT NULL AND revoked_at >= $1"
        )
        .bind(since)
        .fetch_all(pool)
        .await?
        }))
    }

    /// Rotates a refresh token (RFC 9700 §4.14.2). The conditional UPDATE is the
    /// arbiter between racing requests, so exactly one of them rotates; what
    /// happens to the others is [`presented_token_outcome`].
    ///
    /// A family keeps one live branch: a token answered within the grace
    /// period is a sibling of the first replacement (same parent), and the
    /// first sibling to be used kills the others, so presenting a killed one
    /// is reuse. The presented token's parent row and its own row are locked
    /// (a no-op `UPDATE`, parent first) before anything is read, so on
    /// PostgreSQL a grace answer and a sibling's first use are serialised
    /// like they are by SQLite's write transaction.
    pub async fn rotate_refresh(
        &self,
        presented_hash: &str,
        replacement: &RefreshToken,
        grace: Duration,
        scope: Option<ScopeSet>,
    ) -> Result<Rotation> {
        let at = now();
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let parent: Option<Option<String>> =
                sqlx::query_scalar("SELECT parent_hash FROM refresh_tokens WHERE token_hash = $1")
                    .bind(presented_hash)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(parent) = parent else {
                return Ok(Rotation::Invalid);
            };
            for lock in parent.iter().map(String::as_str).chain([presented_hash]) {
                sqlx::query(
                    "UPDATE refresh_tokens SET rotated_at = rotated_at WHERE token_hash = $1",
                )
                .bind(lock)
                .execute(&mut *tx)
                .await?;
            }
            let (grant_id, expires_at, rotated_at, killed_at) = sqlx::query_as::<_, (Uuid, i64, Option<i64>, Option<i64>)>(
                "SELECT grant_id, expires_at, rotated_at, killed_at FROM refresh_tokens WHERE token_hash = $1",
            )
            .bind(presented_hash)
            .fetch_one(&mut *tx)
            .await?;
            let grant = sqlx::query(concat!(
                "SELECT ",
                grant_columns!(),
                " FROM grants WHERE id = $1"
            ))
            .bind(grant_id)
            .fetch_one(&mut *tx)
            .await?;
            let mut grant = grant_from_row(&grant)?;
            if grant.revoked_at.is_some() || expires_at <= at {
                return Ok(Rotation::Invalid);
            }
            let claimed = killed_at.is_none()
                && sqlx::query("UPDATE refresh_tokens SET rotated_at = $2 WHERE token_hash = $1 AND rotated_at IS NULL")
                    .bind(presented_hash)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
            let replacement_used = if claimed {
                false
            } else {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM refresh_tokens WHERE parent_hash = $1 AND (rotated_at IS NOT NULL OR killed_at IS NOT NULL)"
                )
                .bind(presented_hash)
                .fetch_one(&mut *tx)
                .await?
                    > 0
            };
            let outcome = presented_token_outcome(Presented {
                claimed,
                killed: killed_at.is_some(),
                rotated_at,
                replacement_used,
                now: at,
                grace,
            });
            match outcome {
                Outcome::Reused => {
                    sqlx::query(
                        "UPDATE grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                    )
                    .bind(grant_id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    return Ok(Rotation::Reused { grant_id });
                }
                Outcome::Rotated => {
                    if let Some(parent) = &parent {
                        sqlx::query(
                            "UPDATE refresh_tokens SET killed_at = $3 WHERE parent_hash = $1 AND token_hash <> $2 AND killed_at IS NULL",
                        )
                        .bind(parent)
                        .bind(presented_hash)
                        .bind(at)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                Outcome::Raced => {}
            }
            insert_refresh!(&mut *tx, replacement);
            if let Some(scope) = scope {
                grant.scope = scope;
            }
            sqlx::query("UPDATE grants SET last_used_at = $2, scope = $3 WHERE id = $1")
                .bind(grant_id)
                .bind(at)
                .bind(grant.scope.to_string())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            grant.last_used_at = at;
            Ok(match outcome {
                Outcome::Raced => Rotation::Raced(grant),
                _ => Rotation::Rotated(grant),
            })
        })
    }

    /// The grant a refresh token belongs to, whatever the token's state.
    pub async fn refresh_token_grant(&self, token_hash: &str) -> Result<Option<Grant>> {
        let grant_id: Option<Uuid> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT grant_id FROM refresh_tokens WHERE token_hash = $1"
        )
        .bind(token_hash)
        .fetch_optional(pool)
        .await?);
        match grant_id {
            Some(id) => self.grant(id).await,
            None => Ok(None),
        }
    }

    /// The grant behind a refresh token, if the token is current and live
    /// (not rotated, and not killed by a sibling's use).
    pub async fn refresh_grant(&self, token_hash: &str) -> Result<Option<Grant>> {
        let grant_id: Option<Uuid> = on_pool!(self, |pool| {
            sqlx::query_scalar(
            "SELECT grant_id FROM refresh_tokens WHERE token_hash = $1 AND expires_at > $2 AND rotated_at IS NULL AND killed_at IS NULL"
        )
        .bind(token_hash)
        .bind(now())
        .fetch_optional(pool)
        .await?
        });
        match grant_id {
            Some(id) => Ok(self.grant(id).await?.filter(|g| g.revoked_at.is_none())),
            None => Ok(None),
        }
    }

    // ---- consents ----

    pub async fn remember_consent(
        &self,
        user_id: Uuid,
        client_id: &str,
        org_id: Uuid,
        scope: ScopeSet,
        redirect_uri: &str,
    ) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query(
            "INSERT INTO consents (user_id, client_id, org_id, scope, redirect_uri, created_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (user_id, client_id, org_id) DO UPDATE SET scope = excluded.scope, redirect_uri = excluded.redirect_uri, created_at = excluded.created_at"
        )
        .bind(user_id)
        .bind(client_id)
        .bind(org_id)
        .bind(scope.to_string())
        .bind(redirect_uri)
        .bind(now())
        .execute(pool)
        .await
        .map(drop)?
        });
        Ok(())
    }

    /// The remembered consent's scope, if one exists for exactly this redirect URI.
    pub async fn consent(
        &self,
        user_id: Uuid,
        client_id: &str,
        org_id: Uuid,
        redirect_uri: &str,
    ) -> Result<Option<ScopeSet>> {
        let scope: Option<String> = on_pool!(self, |pool| {
            sqlx::query_scalar(
            "SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2 AND org_id = $3 AND redirect_uri = $4"
        )
        .bind(user_id)
        .bind(client_id)
        .bind(org_id)
        .bind(redirect_uri)
        .fetch_optional(pool)
        .await?
        });
        Ok(scope.map(|s| ScopeSet::parse_lenient(&s)))
    }

    // ---- API keys ----

    pub async fn insert_api_key(&self, k: &ApiKey) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query(
            "INSERT INTO api_keys (id, user_id, org_id, name, secret_hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )
        .bind(&k.id)
        .bind(k.user_id)
        .bind(k.org_id)
        .bind(&k.name)
        .bind(&k.secret_hash)
        .bind(k.scopes.to_string())
        .bind(k.created_at)
        .execute(pool)
        .await
        .map_err(conflict)
        .map(drop)?
        });
        Ok(())
    }

    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKey>> {
        Ok(on_pool!(self, |pool| sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .map(|r| key_from_row(&r))
        .transpose()?))
    }

    /// Live keys of a user and/or an org.
    pub async fn api_keys(
        &self,
        user_id: Option<Uuid>,
        org_id: Option<Uuid>,
    ) -> Result<Vec<ApiKey>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query(concat!(
            "SELECT ", key_columns!(), " FROM api_keys WHERE revoked_at IS NULL
             AND ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR org_id = $2) ORDER BY created_at DESC"
        ))
        .bind(user_id)
        .bind(org_id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(key_from_row)
        .collect::<Result<Vec<_>>>()?
        }))
    }

    pub async fn revoke_api_key(&self, id: &str) -> Result<bool> {
        let n = on_pool!(self, |pool| sqlx::query(
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL"
        )
        .bind(id)
        .bind(now())
        .execute(pool)
        .await?
        .rows_affected());
        Ok(n > 0)
    }

    /// Revokes a key only if `user_id` owns it: the console lets people revoke
    /// their own keys, and a guessed id of someone else's must do nothing.
    pub async fn revoke_own_api_key(&self, user_id: Uuid, id: &str) -> Result<bool> {
        let n = on_pool!(self, |pool| {
            sqlx::query(
            "UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL"
        )
        .bind(id)
        .bind(user_id)
        .bind(now())
        .execute(pool)
        .await?
        .rows_affected()
        });
        Ok(n > 0)
    }

    pub async fn touch_api_keys(&self, used: &[(String, i64)]) -> Result<()> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for (id, at) in used {
                sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    // ---- audit ----

    /// Writes `calls` in one statement: all or none. Text is made storable
    /// first ([`storable`]: NUL replaced, lengths capped per
    /// [`AUDIT_TEXT_CHARS`]), so a caller's tool name can never make the
    /// statement fail.
    pub async fn insert_tool_calls(&self, calls: &[ToolCall]) -> Result<()> {
        if calls.is_empty() {
            return Ok(());
        }
        let short = |s: &str| storable(s, AUDIT_TEXT_CHARS);
        on_pool!(self, |pool| {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO tool_calls (id, at, org_id, user_id, source, client_id, api_key_id, tool, outcome, duration_ms, upstream_status, detail) ",
            );
            insert.push_values(calls, |mut row, c| {
                row.push_bind(c.id)
                    .push_bind(c.at)
                    .push_bind(c.org_id)
                    .push_bind(c.user_id)
                    .push_bind(short(&c.source))
                    .push_bind(c.client_id.as_deref().map(short))
                    .push_bind(c.api_key_id.as_deref().map(short))
                    .push_bind(short(&c.tool))
                    .push_bind(short(&c.outcome))
                    .push_bind(c.duration_ms)
                    .push_bind(c.upstream_status)
                    .push_bind(c.detail.as_deref().map(|d| storable(d, AUDIT_DETAIL_CHARS)));
            });
            insert.build().execute(pool).await?;
        });
        Ok(())
    }

    pub async fn tool_calls(&self, org_id: Uuid, f: &ToolCallFilter) -> Result<Vec<ToolCall>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, ToolCall>(
            "SELECT id, at, org_id, user_id, source, client_id, api_key_id, tool, outcome, duration_ms, upstream_status, detail
             FROM tool_calls WHERE org_id = $1
             AND ($2 IS NULL OR tool = $2) AND ($3 IS NULL OR user_id = $3) AND ($4 IS NULL OR outcome = $4)
             AND ($5 IS NULL OR at >= $5) AND ($6 IS NULL OR at <= $6) AND ($7 IS NULL OR at < $7)
             ORDER BY at DESC LIMIT $8"
        )
        .bind(org_id)
        .bind(&f.tool)
        .bind(f.user_id)
        .bind(&f.outcome)
        .bind(f.since)
        .bind(f.until)
        .bind(f.before)
        .bind(f.limit)
        .fetch_all(pool)
        .await?
        }))
    }

    /// One page of the org's audit log, newest first. Unlike `tool_calls`, the
    /// cursor is `(at, id)`, so calls made within the same second are neither
    /// skipped nor repeated at a page boundary; `f.before` is ignored.
    pub async fn tool_calls_page(
        &self,
        org_id: Uuid,
        f: &ToolCallFilter,
        after: Option<ToolCallCursor>,
    ) -> Result<Vec<ToolCall>> {
        let (at, id) = match after {
            Some(c) => (Some(c.at), Some(c.id)),
            None => (None, None),
        };
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, ToolCall>(
            "SELECT id, at, org_id, user_id, source, client_id, api_key_id, tool, outcome, duration_ms, upstream_status, detail
             FROM tool_calls WHERE org_id = $1
             AND ($2 IS NULL OR tool = $2) AND ($3 IS NULL OR user_id = $3) AND ($4 IS NULL OR outcome = $4)
             AND ($5 IS NULL OR at >= $5) AND ($6 IS NULL OR at <= $6)
             AND ($7 IS NULL OR at < $7 OR (at = $7 AND id < $8))
             ORDER BY at DESC, id DESC LIMIT $9"
        )
        .bind(org_id)
        .bind(&f.tool)
        .bind(f.user_id)
        .bind(&f.outcome)
        .bind(f.since)
        .bind(f.until)
        .bind(at)
        .bind(id)
        .bind(f.limit)
        .fetch_all(pool)
        .await?
        }))
    }
}

/// What the store knows about a presented refresh token once its row is
/// locked.
#[derive(Debug, Clone, Copy)]
struct Presented {
    /// This request marked the token rotated: it was current.
    claimed: bool,
    /// A sibling (same parent) was used first; this branch is dead.
    killed: bool,
    rotated_at: Option<i64>,
    /// A child of this token has since been used (or killed by its sibling's use).
    replacement_used: bool,
    now: i64,
    grace: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The token was current: rotate it.
    Rotated,
    /// Just rotated by a racing request whose replacement is unused: answer
    /// with a sibling of that replacement (the first sibling used wins).
    Raced,
    /// A token that can no longer be current came back: revoke the grant.
    Reused,
}

/// Decides a presented refresh token's fate (RFC 9700 §4.14.2). Reuse is
/// any presentation of a killed sibling, of a token rotated longer ago than
/// the grace period, or of one whose replacement has been used.
fn presented_token_outcome(p: Presented) -> Outcome {
    if p.killed {
        return Outcome::Reused;
    }
    if p.claimed {
        return Outcome::Rotated;
    }
    let rotated_at = p.rotated_at.unwrap_or(p.now);
    if p.now - rotated_at > p.grace.as_secs() as i64 || p.replacement_used {
        Outcome::Reused
    } else {
        Outcome::Raced
    }
}

fn client_from_row<R: Row>(r: &R) -> Result<Client>
where
    usize: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let uris: String = r.try_get(3)?;
    let metadata: String = r.try_get(5)?;
    Ok(Client {
        client_id: r.try_get(0)?,
        secret_hash: r.try_get(1)?,
        client_name: r.try_get(2)?,
        redirect_uris: serde_json::from_str(&uris)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        token_endpoint_auth_method: r.try_get(4)?,
        metadata: serde_json::from_str(&metadata)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at: r.try_get(6)?,
        revoked_at: r.try_get(7)?,
    })
}

fn grant_from_row<R: Row>(r: &R) -> Result<Grant>
where
    usize: sqlx::ColumnIndex<R>,
    for<'a> Uuid: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(Grant {
        id: r.try_get(0)?,
        client_id: r.try_get(1)?,
        client_name: r.try_get(2)?,
        redirect_uri: r.try_get(3)?,
        user_id: r.try_get(4)?,
        org_id: r.try_get(5)?,
        scope: ScopeSet::parse_lenient(&r.try_get::<String, _>(6)?),
        resource: r.try_get(7)?,
        nonce: r.try_get(8)?,
        created_at: r.try_get(9)?,
        last_used_at: r.try_get(10)?,
        revoked_at: r.try_get(11)?,
    })
}

fn key_from_row<R: Row>(r: &R) -> Result<ApiKey>
where
    usize: sqlx::ColumnIndex<R>,
    for<'a> Uuid: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(ApiKey {
        id: r.try_get(0)?,
        user_id: r.try_get(1)?,
        org_id: r.try_get(2)?,
        name: r.try_get(3)?,
        secret_hash: r.try_get(4)?,
        scopes: ScopeSet::parse_lenient(&r.try_get::<String, _>(5)?),
        created_at: r.try_get(6)?,
        last_used_at: r.try_get(7)?,
        revoked_at: r.try_get(8)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presented(claimed: bool, rotated_ago: Option<i64>, replacement_used: bool) -> Presented {
        Presented {
            claimed,
            killed: false,
            rotated_at: rotated_ago.map(|ago| 1_000 - ago),
            replacement_used,
            now: 1_000,
            grace: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_current_token_rotates() {
        assert_eq!(
            presented_token_outcome(presented(true, None, false)),
            Outcome::Rotated
        );
    }

    #[test]
    fn a_racing_refresh_within_grace_gets_a_sibling() {
        assert_eq!(
            presented_token_outcome(presented(false, Some(5), false)),
            Outcome::Raced
        );
        assert_eq!(
            presented_token_outcome(presented(false, Some(60), false)),
            Outcome::Raced
        );
    }

    #[test]
    fn an_old_token_after_the_grace_is_reuse() {
        assert_eq!(
            presented_token_outcome(presented(false, Some(61), false)),
            Outcome::Reused
        );
    }

    #[test]
    fn an_old_token_after_its_replacement_was_used_is_reuse() {
        assert_eq!(
            presented_token_outcome(presented(false, Some(5), true)),
            Outcome::Reused
        );
    }

    #[test]
    fn a_killed_sibling_is_reuse_even_within_grace() {
        let mut p = presented(false, None, false);
        p.killed = true;
        assert_eq!(presented_token_outcome(p), Outcome::Reused);
    }
}

//! Account lifecycle in the store (README "Accounts"): listing orgs and
//! users, renaming orgs, removing members, disabling and deleting users,
//! passwords and one-time reset links, and sign-in unlocks. Every change that
//! touches more than one row is one transaction, so a failure leaves nothing
//! half-done; the caller gets back what was revoked, to apply to its own
//! in-memory caches at once (other instances follow within their poll).

use std::time::Duration;

use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use super::{BeginWrite, Org, Result, Store, StoreError, conflict, now, role};
use crate::identity::{email, scope::Role};

/// The form org names are compared in: NFKC, then Unicode full lowercase
/// (the rule of `identity::email::canonical`), with runs of whitespace as one
/// space. "ACME  Corp" and "acme corp" are one name.
pub fn org_name_key(name: &str) -> String {
    email::canonical(name)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// An org as the administration lists show it.
#[derive(Debug, Clone, Serialize)]
pub struct OrgSummary {
    pub id: Uuid,
    pub name: String,
    pub created_at: i64,
    pub external_id: Option<String>,
    pub members: i64,
    pub admins: i64,
}

/// One org a listed user belongs to.
#[derive(Debug, Clone, Serialize)]
pub struct UserOrg {
    pub org_id: Uuid,
    pub org_name: String,
    pub role: Role,
}

/// A user as the administration lists show it (never the password hash).
#[derive(Debug, Clone, Serialize)]
pub struct UserSummary {
    pub id: Uuid,
    pub email: String,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    pub memberships: Vec<UserOrg>,
}

/// What a lifecycle change revoked, for the caller's in-memory caches.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Revoked {
    pub grants: Vec<Uuid>,
    pub api_keys: Vec<String>,
}

/// The outcome of removing a member from an org.
#[derive(Debug, Clone)]
pub enum MemberRemoval {
    /// Removed; their grants and keys in that org were revoked with it.
    Removed(Revoked),
    NotMember,
    /// Refused: they are the org's only admin.
    LastAdmin,
}

/// The outcome of deleting a user.
#[derive(Debug, Clone)]
pub enum UserDeletion {
    /// Deleted with their memberships, sessions, grants and keys; the audit
    /// log keeps their calls.
    Deleted(Revoked),
    NotFound,
    /// Refused: they are the only admin of these orgs, which have other
    /// members who could not be managed afterwards.
    LastAdmin(Vec<String>),
}

/// Who an MCP caller is in an org, read in one query for the hot-path cache.
#[derive(Debug, Clone)]
pub struct CallerRow {
    pub email: String,
    pub role: Role,
    pub disabled: bool,
}

/// A live one-time password reset link's owner.
#[derive(Debug, Clone)]
pub struct ResetTicket {
    pub user_id: Uuid,
    pub email: String,
    pub expires_at: i64,
}

impl Store {
    /// Every org with its member and admin counts, by name.
    pub async fn orgs(&self) -> Result<Vec<OrgSummary>> {
        let rows = on_pool!(self, |pool| {
            sqlx::query(
                "SELECT o.id, o.name, o.created_at, o.external_id,
                        (SELECT COUNT(*) FROM memberships m WHERE m.org_id = o.id),
                        (SELECT COUNT(*) FROM memberships m WHERE m.org_id = o.id AND m.role = 'admin')
                 FROM orgs o ORDER BY o.name, o.created_at",
            )
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| {
                Ok(OrgSummary {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    created_at: r.try_get(2)?,
                    external_id: r.try_get(3)?,
                    members: r.try_get(4)?,
                    admins: r.try_get(5)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(rows)
    }

    /// Users with their memberships, by email: all of them, or the members
    /// of `org_id` (each still listed with all of their orgs).
    pub async fn users(&self, org_id: Option<Uuid>) -> Result<Vec<UserSummary>> {
        let rows = on_pool!(self, |pool| {
            sqlx::query(
                "SELECT u.id, u.email, u.created_at, u.disabled_at, o.id, o.name, m.role
                 FROM users u
                 LEFT JOIN memberships m ON m.user_id = u.id
                 LEFT JOIN orgs o ON o.id = m.org_id
                 WHERE $1 IS NULL OR u.id IN (SELECT user_id FROM memberships WHERE org_id = $1)
                 ORDER BY u.email_canonical, u.id, o.name",
            )
            .bind(org_id)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| {
                Ok((
                    r.try_get::<Uuid, _>(0)?,
                    r.try_get::<String, _>(1)?,
                    r.try_get::<i64, _>(2)?,
                    r.try_get::<Option<i64>, _>(3)?,
                    r.try_get::<Option<Uuid>, _>(4)?,
                    r.try_get::<Option<String>, _>(5)?,
                    r.try_get::<Option<String>, _>(6)?,
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        let mut users: Vec<UserSummary> = Vec::new();
        for (id, email, created_at, disabled_at, org, org_name, r) in rows {
            if users.last().is_none_or(|u| u.id != id) {
                users.push(UserSummary {
                    id,
                    email,
                    created_at,
                    disabled_at,
                    memberships: Vec::new(),
                });
            }
            if let (Some(org_id), Some(org_name), Some(r)) = (org, org_name, r) {
                let user = users.last_mut().expect("pushed above");
                user.memberships.push(UserOrg {
                    org_id,
                    org_name,
                    role: role(r)?,
                });
            }
        }
        Ok(users)
    }

    /// Renames an org. Another org with the same name in its canonical form
    /// ([`org_name_key`]) is a `Conflict`; an unknown id is `NotFound`.
    pub async fn rename_org(&self, org_id: Uuid, name: &str) -> Result<Org> {
        let n = on_pool!(self, |pool| sqlx::query(
            "UPDATE orgs SET name = $2, name_canonical = $3 WHERE id = $1"
        )
        .bind(org_id)
        .bind(name)
        .bind(org_name_key(name))
        .execute(pool)
        .await
        .map_err(conflict)?
        .rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        self.get_org(org_id).await?.ok_or(StoreError::NotFound)
    }

    /// The org whose name equals `name` in its canonical form.
    pub async fn org_by_name(&self, name: &str) -> Result<Option<Org>> {
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, Org>(
            "SELECT id, name, created_at FROM orgs WHERE name_canonical = $1"
        )
        .bind(org_name_key(name))
        .fetch_optional(pool)
        .await?))
    }

    /// Removes `user_id` from `org_id`, revoking in the same transaction
    /// their grants and API keys in that org and forgetting their consents
    /// there. The org's only admin cannot be removed (an org without an admin
    /// could never be managed again); the org row is locked first, as in
    /// `set_membership`, so two admins removing each other leave one.
    pub async fn remove_member(&self, user_id: Uuid, org_id: Uuid) -> Result<MemberRemoval> {
        let at = now();
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("UPDATE orgs SET name = name WHERE id = $1")
                .bind(org_id)
                .execute(&mut *tx)
                .await?;
            let current: Option<String> = sqlx::query_scalar(
                "SELECT role FROM memberships WHERE user_id = $1 AND org_id = $2",
            )
            .bind(user_id)
            .bind(org_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(current) = current else {
                return Ok(MemberRemoval::NotMember);
            };
            if current == "admin" {
                let others: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role = 'admin' AND user_id <> $2",
                )
                .bind(org_id)
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?;
                if others == 0 {
                    return Ok(MemberRemoval::LastAdmin);
                }
            }
            let grants: Vec<Uuid> = sqlx::query_scalar(
                "UPDATE grants SET revoked_at = $3 WHERE user_id = $1 AND org_id = $2 AND revoked_at IS NULL RETURNING id",
            )
            .bind(user_id)
            .bind(org_id)
            .bind(at)
            .fetch_all(&mut *tx)
            .await?;
            let api_keys: Vec<String> = sqlx::query_scalar(
                "UPDATE api_keys SET revoked_at = $3 WHERE user_id = $1 AND org_id = $2 AND revoked_at IS NULL RETURNING id",
            )
            .bind(user_id)
            .bind(org_id)
            .bind(at)
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM consents WHERE user_id = $1 AND org_id = $2")
                .bind(user_id)
                .bind(org_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND org_id = $2")
                .bind(user_id)
                .bind(org_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(MemberRemoval::Removed(Revoked { grants, api_keys }))
        })
    }

    /// Disables (`true`) or re-enables a user; returns false for an unknown
    /// user. Disabling signs them out everywhere in the same transaction.
    /// Their grants and keys are kept but refused while the account is
    /// disabled (every check of a role goes through [`Store::role`] or
    /// [`Store::caller`], which see `disabled_at`), so re-enabling restores
    /// them.
    pub async fn set_user_disabled(&self, user_id: Uuid, disabled: bool) -> Result<bool> {
        let at = now();
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query(
                "UPDATE users SET disabled_at = CASE WHEN $2 THEN COALESCE(disabled_at, $3) ELSE NULL END WHERE id = $1",
            )
            .bind(user_id)
            .bind(disabled)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if disabled {
                sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(n > 0)
        })
    }

    /// Deletes a user. In one transaction: their live grants and API keys are
    /// revoked, then the user row goes, and with it (by `ON DELETE CASCADE`)
    /// memberships, sessions, consents, codes, refresh tokens, keys and reset
    /// links. `tool_calls` has no foreign key: the audit log keeps the calls.
    pub async fn delete_user(&self, user_id: Uuid) -> Result<UserDeletion> {
        let at = now();
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let exists: Option<Uuid> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Ok(UserDeletion::NotFound);
            }
            let stranded: Vec<String> = sqlx::query_scalar(
                "SELECT o.name FROM memberships m JOIN orgs o ON o.id = m.org_id
                 WHERE m.user_id = $1 AND m.role = 'admin'
                 AND NOT EXISTS (SELECT 1 FROM memberships a WHERE a.org_id = m.org_id AND a.role = 'admin' AND a.user_id <> $1)
                 AND EXISTS (SELECT 1 FROM memberships x WHERE x.org_id = m.org_id AND x.user_id <> $1)
                 ORDER BY o.name",
            )
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await?;
            if !stranded.is_empty() {
                return Ok(UserDeletion::LastAdmin(stranded));
            }
            let grants: Vec<Uuid> = sqlx::query_scalar(
                "UPDATE grants SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL RETURNING id",
            )
            .bind(user_id)
            .bind(at)
            .fetch_all(&mut *tx)
            .await?;
            let api_keys: Vec<String> = sqlx::query_scalar(
                "UPDATE api_keys SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL RETURNING id",
            )
            .bind(user_id)
            .bind(at)
            .fetch_all(&mut *tx)
            .await?;
            // The cascade below removes these rows; they were marked first so
            // the caller learns which to stop in its own caches at once.
            // Other instances refuse the tokens at their next membership
            // check (the user is gone), within the same 5-second bound.
            sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(UserDeletion::Deleted(Revoked { grants, api_keys }))
        })
    }

    /// Replaces a user's password hash, ends their sessions except
    /// `keep_session` (the hash of the session that made the change, when a
    /// user changes their own password), and spends any reset links still
    /// open. Returns false for an unknown user.
    pub async fn set_password_hash(
        &self,
        user_id: Uuid,
        hash: &str,
        keep_session: Option<&str>,
    ) -> Result<bool> {
        let at = now();
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
                .bind(user_id)
                .bind(hash)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query(
                "DELETE FROM sessions WHERE user_id = $1 AND ($2 IS NULL OR id_hash <> $2)",
            )
            .bind(user_id)
            .bind(keep_session)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE password_resets SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL",
            )
            .bind(user_id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(n > 0)
        })
    }

    /// Stores a reset link's token hash for `user_id`, valid for `ttl`;
    /// returns its expiry (Unix seconds). Earlier open links stay valid
    /// until used, expired, or the password changes.
    pub async fn create_password_reset(
        &self,
        user_id: Uuid,
        token_hash: &str,
        ttl: Duration,
    ) -> Result<i64> {
        let at = now();
        let expires_at = at + ttl.as_secs() as i64;
        on_pool!(self, |pool| {
            sqlx::query(
            "INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)"
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(at)
        .bind(expires_at)
        .execute(pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
            _ => StoreError::Database(e),
        })
        .map(drop)?
        });
        Ok(expires_at)
    }

    /// The user a reset link names, if it is unused and unexpired and the
    /// account is not disabled.
    pub async fn password_reset(&self, token_hash: &str) -> Result<Option<ResetTicket>> {
        let row: Option<(Uuid, String, i64)> = on_pool!(self, |pool| {
            sqlx::query_as(
            "SELECT u.id, u.email, r.expires_at FROM password_resets r JOIN users u ON u.id = r.user_id
             WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.expires_at > $2 AND u.disabled_at IS NULL"
        )
        .bind(token_hash)
        .bind(now())
        .fetch_optional(pool)
        .await?
        });
        Ok(row.map(|(user_id, email, expires_at)| ResetTicket {
            user_id,
            email,
            expires_at,
        }))
    }

    /// Spends a reset link and sets the new password hash in one
    /// transaction: the conditional `UPDATE` is the arbiter, so of two racing
    /// uses exactly one succeeds. Ends every session of the user. Returns the
    /// user, or `None` when the link is unknown, used, expired, or its
    /// account disabled.
    pub async fn redeem_password_reset(
        &self,
        token_hash: &str,
        hash: &str,
    ) -> Result<Option<Uuid>> {
        let at = now();
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let user: Option<Uuid> = sqlx::query_scalar(
                "UPDATE password_resets SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
                 AND user_id IN (SELECT id FROM users WHERE disabled_at IS NULL) RETURNING user_id",
            )
            .bind(token_hash)
            .bind(at)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(user_id) = user else {
                return Ok(None);
            };
            sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
                .bind(user_id)
                .bind(hash)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE password_resets SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL",
            )
            .bind(user_id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(user_id))
        })
    }

    /// Records that an admin unlocked sign-in for `account` (a canonical
    /// email) now.
    pub async fn unlock_sign_in(&self, account: &str) -> Result<i64> {
        let at = now();
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO sign_in_unlocks (account, unlocked_at) VALUES ($1, $2)
             ON CONFLICT (account) DO UPDATE SET unlocked_at = excluded.unlocked_at"
        )
        .bind(account)
        .bind(at)
        .execute(pool)
        .await
        .map(drop)?);
        Ok(at)
    }

    /// When sign-in for `account` was last unlocked by an admin, if ever.
    pub async fn sign_in_unlocked_at(&self, account: &str) -> Result<Option<i64>> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT unlocked_at FROM sign_in_unlocks WHERE account = $1"
        )
        .bind(account)
        .fetch_optional(pool)
        .await?))
    }

    /// The caller's email, role and whether the account is disabled, in one
    /// query: what the MCP membership cache holds.
    pub async fn caller(&self, user_id: Uuid, org_id: Uuid) -> Result<Option<CallerRow>> {
        let row: Option<(String, String, Option<i64>)> = on_pool!(self, |pool| {
            sqlx::query_as(
            "SELECT u.email, m.role, u.disabled_at FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.user_id = $1 AND m.org_id = $2"
        )
        .bind(user_id)
        .bind(org_id)
        .fetch_optional(pool)
        .await?
        });
        row.map(|(email, r, disabled_at)| {
            Ok(CallerRow {
                email,
                role: role(r)?,
                disabled: disabled_at.is_some(),
            })
        })
        .transpose()
    }

    /// Fills `orgs.name_canonical` for orgs created before it existed. The
    /// oldest org of each name gets it; a later one with the same name keeps
    /// NULL (a warning names it) and is told apart by id.
    pub(super) async fn backfill_org_name_keys(&self) -> Result<()> {
        let pending: Vec<(Uuid, String)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT id, name FROM orgs WHERE name_canonical IS NULL ORDER BY created_at, id"
        )
        .fetch_all(pool)
        .await?);
        for (id, name) in pending {
            let key = org_name_key(&name);
            let taken = on_pool!(self, |pool| sqlx::query(
                "UPDATE orgs SET name_canonical = $2 WHERE id = $1"
            )
            .bind(id)
            .bind(&key)
            .execute(pool)
            .await
            .map(drop)
            .map_err(conflict));
            match taken {
                Ok(_) => {}
                Err(StoreError::Conflict) => {
                    tracing::warn!(org_id = %id, name = %name, "another organization has this name; rename one of them (portcullis org rename)");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Store {
    /// How many users exist (first-run setup is open while none does).
    pub async fn user_count(&self) -> Result<i64> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM users"
        )
        .fetch_one(pool)
        .await?))
    }

    /// Deletes an org that has no members (undoing a first-run setup whose
    /// admin could not be created); returns whether it was deleted.
    pub async fn delete_org_if_empty(&self, org_id: Uuid) -> Result<bool> {
        let n = on_pool!(self, |pool| {
            sqlx::query(
            "DELETE FROM orgs WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM memberships WHERE org_id = $1)"
        )
        .bind(org_id)
        .execute(pool)
        .await?
        .rows_affected()
        });
        Ok(n > 0)
    }
}

impl Store {
    /// Revokes every live grant `user_id` gave `client_id` in `org_id` (one
    /// app, as the console lists it); returns the grants revoked.
    pub async fn revoke_own_app(
        &self,
        user_id: Uuid,
        client_id: &str,
        org_id: Uuid,
    ) -> Result<Vec<Uuid>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar(
            "UPDATE grants SET revoked_at = $4 WHERE user_id = $1 AND client_id = $2 AND org_id = $3 AND revoked_at IS NULL RETURNING id"
        )
        .bind(user_id)
        .bind(client_id)
        .bind(org_id)
        .bind(now())
        .fetch_all(pool)
        .await?
        }))
    }
}

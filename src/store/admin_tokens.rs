//! Admin tokens of the provisioning API and the few store operations only
//! that API needs (paged lists, org deletion).

use sqlx::Row;
use uuid::Uuid;

use super::{Result, Store, StoreError, now};

/// An admin token as listed (never its hash).
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdminToken {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl Store {
    /// Stores a new admin token's id, name and secret hash.
    pub async fn insert_admin_token(&self, id: &str, name: &str, secret_hash: &str) -> Result<()> {
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO admin_tokens (id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4)"
        )
        .bind(id)
        .bind(name)
        .bind(secret_hash)
        .bind(now())
        .execute(pool)
        .await
        .map_err(super::conflict)
        .map(drop)?);
        Ok(())
    }

    /// The secret hash of a live (unrevoked) admin token.
    pub async fn live_admin_token_hash(&self, id: &str) -> Result<Option<String>> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT secret_hash FROM admin_tokens WHERE id = $1 AND revoked_at IS NULL"
        )
        .bind(id)
        .fetch_optional(pool)
        .await?))
    }

    /// Every admin token, oldest first.
    pub async fn admin_tokens(&self) -> Result<Vec<AdminToken>> {
        let rows = on_pool!(self, |pool| sqlx::query(
            "SELECT id, name, created_at, revoked_at FROM admin_tokens ORDER BY created_at, id"
        )
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|r| {
            Ok(AdminToken {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                created_at: r.try_get(2)?,
                revoked_at: r.try_get(3)?,
            })
        })
        .collect::<std::result::Result<Vec<_>, sqlx::Error>>()?);
        Ok(rows)
    }

    /// Revokes an admin token; `false` when there is no live one with this id.
    pub async fn revoke_admin_token(&self, id: &str) -> Result<bool> {
        let n = on_pool!(self, |pool| sqlx::query(
            "UPDATE admin_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL"
        )
        .bind(id)
        .bind(now())
        .execute(pool)
        .await?
        .rows_affected());
        Ok(n > 0)
    }

    /// Deletes an org that has no members and no service clients left (so no
    /// live credential can name it). `Conflict` otherwise;
    /// `NotFound` when there is no such org.
    pub async fn delete_empty_org(&self, org_id: Uuid) -> Result<()> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let members: i64 = sqlx::query_scalar(
                "SELECT (SELECT COUNT(*) FROM memberships WHERE org_id = $1)
                      + (SELECT COUNT(*) FROM service_clients WHERE org_id = $1)",
            )
            .bind(org_id)
            .fetch_one(&mut *tx)
            .await?;
            if members > 0 {
                return Err(StoreError::Conflict);
            }
            let n = sqlx::query("DELETE FROM orgs WHERE id = $1")
                .bind(org_id)
                .execute(&mut *tx)
                .await
                .map_err(|e| match &e {
                    sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                        StoreError::Conflict
                    }
                    _ => StoreError::Database(e),
                })?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

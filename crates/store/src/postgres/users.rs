//! People who signed in through a provider. A sign-in is one `INSERT … ON CONFLICT DO UPDATE`
//! statement: it adds the user or counts one more sign-in in a single step, so racing sign-ins —
//! on this replica or another — are each counted once.

use super::oauth::role;
use super::{PostgresStore, backend, codec, col, execute, insert_error, query, query_opt};
use crate::oauth::{UserRecord, UserStore};
use crate::{Result, StoreError, async_trait};
use tokio_postgres::Row;

fn user_from_row(r: &Row) -> Result<UserRecord> {
    let sign_ins: i64 = col(r, "sign_ins")?;
    Ok(UserRecord {
        user_id: col(r, "user_id")?,
        tenant: col(r, "tenant")?,
        role: role(r, "role")?,
        via: col(r, "via")?,
        email: col(r, "email")?,
        name: col(r, "name")?,
        first_sign_in: col(r, "first_sign_in")?,
        last_sign_in: col(r, "last_sign_in")?,
        // A negative count fails the read.
        sign_ins: u64::try_from(sign_ins).map_err(|_| codec(format!("a negative sign-in count: {sign_ins}")))?,
    })
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn record_sign_in(&self, u: &UserRecord, now: i64) -> Result<UserRecord> {
        let c = self.client().await?;
        let row = query_opt(
            &c,
            "INSERT INTO users (user_id, tenant, role, via, email, name, first_sign_in, last_sign_in, sign_ins)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 1)
             ON CONFLICT (user_id) DO UPDATE SET
                tenant = EXCLUDED.tenant, role = EXCLUDED.role, via = EXCLUDED.via,
                email = EXCLUDED.email, name = EXCLUDED.name,
                last_sign_in = GREATEST(users.last_sign_in, EXCLUDED.last_sign_in),
                sign_ins = users.sign_ins + 1
             RETURNING *",
            &[&u.user_id, &u.tenant, &u.role.as_str(), &u.via, &u.email, &u.name, &now],
        )
        .await
        .map_err(backend)?;
        match row {
            Some(r) => user_from_row(&r),
            None => Err(StoreError::Backend("a sign-in returned no user".into())),
        }
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>> {
        let c = self.client().await?;
        query_opt(&c, "SELECT * FROM users WHERE user_id = $1", &[&user_id])
            .await
            .map_err(backend)?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>> {
        let c = self.client().await?;
        query(&c, "SELECT * FROM users ORDER BY first_sign_in, user_id", &[])
            .await
            .map_err(backend)?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn remove_user(&self, user_id: &str) -> Result<bool> {
        let c = self.client().await?;
        let n = execute(&c, "DELETE FROM users WHERE user_id = $1", &[&user_id])
            .await
            .map_err(backend)?;
        Ok(n > 0)
    }

    async fn import_user(&self, u: &UserRecord) -> Result<()> {
        let sign_ins = i64::try_from(u.sign_ins).unwrap_or(i64::MAX);
        let c = self.client().await?;
        execute(
            &c,
            "INSERT INTO users (user_id, tenant, role, via, email, name, first_sign_in, last_sign_in, sign_ins)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &u.user_id,
                &u.tenant,
                &u.role.as_str(),
                &u.via,
                &u.email,
                &u.name,
                &u.first_sign_in,
                &u.last_sign_in,
                &sign_ins,
            ],
        )
        .await
        .map_err(|e| insert_error(e, &u.user_id))?;
        Ok(())
    }
}

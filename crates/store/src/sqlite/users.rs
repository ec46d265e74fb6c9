//! People who signed in through a provider. A sign-in is one `INSERT … ON CONFLICT DO UPDATE`
//! statement: it adds the user or counts one more sign-in in a single step, so racing sign-ins —
//! in this process or another on the same file — are each counted once.

use super::oauth::{RoleColumn, insert_error};
use super::{SqliteStore, backend};
use crate::oauth::{UserRecord, UserStore};
use crate::{Result, async_trait};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{OptionalExtension, params};

/// A count stored as INTEGER; a negative one fails the read.
struct Count(u64);

impl FromSql for Count {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        let n = v.as_i64()?;
        u64::try_from(n).map(Count).map_err(|_| FromSqlError::OutOfRange(n))
    }
}

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        user_id: r.get("user_id")?,
        tenant: r.get("tenant")?,
        role: r.get::<_, RoleColumn>("role")?.0,
        via: r.get("via")?,
        email: r.get("email")?,
        name: r.get("name")?,
        first_sign_in: r.get("first_sign_in")?,
        last_sign_in: r.get("last_sign_in")?,
        sign_ins: r.get::<_, Count>("sign_ins")?.0,
    })
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn record_sign_in(&self, user: &UserRecord, now: i64) -> Result<UserRecord> {
        let u = user.clone();
        self.run(move |c| {
            c.query_row(
                "INSERT INTO users (user_id, tenant, role, via, email, name, first_sign_in, last_sign_in, sign_ins)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, 1)
                 ON CONFLICT(user_id) DO UPDATE SET
                    tenant = excluded.tenant, role = excluded.role, via = excluded.via,
                    email = excluded.email, name = excluded.name,
                    last_sign_in = max(users.last_sign_in, excluded.last_sign_in),
                    sign_ins = users.sign_ins + 1
                 RETURNING *",
                params![u.user_id, u.tenant, u.role.as_str(), u.via, u.email, u.name, now],
                user_from_row,
            )
            .map_err(backend)
        })
        .await
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>> {
        let user_id = user_id.to_string();
        self.run(move |c| {
            c.query_row("SELECT * FROM users WHERE user_id = ?1", [user_id], user_from_row)
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>> {
        self.run(|c| {
            let mut st = c
                .prepare("SELECT * FROM users ORDER BY first_sign_in, user_id")
                .map_err(backend)?;
            let rows = st.query_map([], user_from_row).map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
    }

    async fn remove_user(&self, user_id: &str) -> Result<bool> {
        let user_id = user_id.to_string();
        self.run(move |c| {
            let n = c
                .execute("DELETE FROM users WHERE user_id = ?1", [user_id])
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn import_user(&self, user: &UserRecord) -> Result<()> {
        let u = user.clone();
        self.run(move |c| {
            let sign_ins = i64::try_from(u.sign_ins).unwrap_or(i64::MAX);
            c.execute(
                "INSERT INTO users (user_id, tenant, role, via, email, name, first_sign_in, last_sign_in, sign_ins)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    u.user_id,
                    u.tenant,
                    u.role.as_str(),
                    u.via,
                    u.email,
                    u.name,
                    u.first_sign_in,
                    u.last_sign_in,
                    sign_ins
                ],
            )
            .map_err(|e| insert_error(e, &u.user_id))?;
            Ok(())
        })
        .await
    }
}

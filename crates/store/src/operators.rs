//! Console operators: accounts (argon2id hashes computed by the console), the shops each one
//! sees, and server-side sessions (only the SHA-256 of a session token is stored).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Found as _;
use crate::StoreError;

/// A shop an operator sees.
#[derive(Debug, Clone)]
pub struct ShopRef {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub time_zone: String,
    pub marketplaces: Vec<String>,
}

/// Creates an operator, or updates the display name and password hash of an existing one (and
/// reactivates it); the operator then sees exactly `shop_codes`, and every open session of the
/// operator ends. An unknown shop code is [`StoreError::NotFound`] (`what` = `"shop"`), with
/// nothing written: call it in a transaction and commit on success.
pub async fn upsert(
    conn: &mut PgConnection,
    username: &str,
    display_name: &str,
    password_hash: &str,
    shop_codes: &[String],
) -> Result<Uuid, StoreError> {
    let mut shop_ids = Vec::with_capacity(shop_codes.len());
    for code in shop_codes {
        let id = sqlx::query_scalar!("SELECT id FROM shops WHERE code = $1", code)
            .fetch_optional(&mut *conn)
            .await?
            .found("shop", code)?;
        shop_ids.push(id);
    }
    let id = sqlx::query_scalar!(
        r#"INSERT INTO console_users (id, username, display_name, password_hash)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (username) DO UPDATE
              SET display_name = EXCLUDED.display_name, password_hash = EXCLUDED.password_hash,
                  active = true, updated_at = now()
           RETURNING id"#,
        Uuid::now_v7(),
        username,
        display_name,
        password_hash
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query!("DELETE FROM console_user_shops WHERE user_id = $1", id)
        .execute(&mut *conn)
        .await?;
    sqlx::query!(
        "INSERT INTO console_user_shops (user_id, shop_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING",
        id,
        &shop_ids
    )
    .execute(&mut *conn)
    .await?;
    // A changed password ends the user's other sessions.
    sqlx::query!("DELETE FROM console_sessions WHERE user_id = $1", id)
        .execute(&mut *conn)
        .await?;
    Ok(id)
}

/// Makes the operator `user_id` a console administrator (`admin`) or takes the role away. The
/// role needs no new sign-in: the next request reads it. A missing operator is
/// [`StoreError::NotFound`] (`what` = `"operator"`).
pub async fn set_admin(
    conn: &mut PgConnection,
    user_id: Uuid,
    admin: bool,
) -> Result<(), StoreError> {
    let done = sqlx::query!(
        "UPDATE console_users SET admin = $2, updated_at = now() WHERE id = $1",
        user_id,
        admin
    )
    .execute(conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            what: "operator",
            key: user_id.to_string(),
        });
    }
    Ok(())
}

/// An active operator's id and password hash (PHC string).
#[derive(Debug, Clone)]
pub struct Login {
    pub id: Uuid,
    pub password_hash: String,
}

/// The active operator named `username`.
pub async fn login(conn: &mut PgConnection, username: &str) -> Result<Option<Login>, StoreError> {
    Ok(sqlx::query_as!(
        Login,
        "SELECT id, password_hash FROM console_users WHERE username = $1 AND active",
        username
    )
    .fetch_optional(conn)
    .await?)
}

/// Opens a session, and forgets the expired ones.
pub async fn open_session(
    conn: &mut PgConnection,
    token_sha256: &[u8],
    user_id: Uuid,
    csrf_token: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO console_sessions (token_sha256, user_id, csrf_token, expires_at) VALUES ($1, $2, $3, $4)",
        token_sha256,
        user_id,
        csrf_token,
        expires_at
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!("DELETE FROM console_sessions WHERE expires_at < now()")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Ends a session.
pub async fn close_session(conn: &mut PgConnection, token_sha256: &[u8]) -> Result<(), StoreError> {
    sqlx::query!(
        "DELETE FROM console_sessions WHERE token_sha256 = $1",
        token_sha256
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The operator of a live session.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub csrf_token: String,
    /// A console administrator: also sees the dead-letter queues (per service, every shop).
    pub admin: bool,
}

/// The active operator of an unexpired session.
pub async fn session_user(
    conn: &mut PgConnection,
    token_sha256: &[u8],
) -> Result<Option<SessionUser>, StoreError> {
    Ok(sqlx::query_as!(
        SessionUser,
        r#"SELECT u.id, u.username, u.display_name, s.csrf_token, u.admin
           FROM console_sessions s JOIN console_users u ON u.id = s.user_id
           WHERE s.token_sha256 = $1 AND s.expires_at > now() AND u.active"#,
        token_sha256
    )
    .fetch_optional(conn)
    .await?)
}

/// The shops an operator sees, by code.
pub async fn shops_of(conn: &mut PgConnection, user_id: Uuid) -> Result<Vec<ShopRef>, StoreError> {
    Ok(sqlx::query_as!(
        ShopRef,
        r#"SELECT sh.id, sh.code, sh.name, sh.time_zone, sh.marketplaces
           FROM console_user_shops us JOIN shops sh ON sh.id = us.shop_id
           WHERE us.user_id = $1 ORDER BY sh.code"#,
        user_id
    )
    .fetch_all(conn)
    .await?)
}

/// Failed sign-ins since a time: the larger count of the user name's and the address's, and the
/// latest of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInFailures {
    pub count: i64,
    pub last: Option<DateTime<Utc>>,
}

/// Records a failed sign-in (the user name as typed and the client's address; never the
/// password).
pub async fn record_sign_in_failure(
    conn: &mut PgConnection,
    username: &str,
    address: &str,
) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO sign_in_failures (username, address) VALUES ($1, $2)",
        username,
        address
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The failed sign-ins for `username` or from `address` since `since` (the larger of the two
/// counts); failures older than a day are deleted on the way.
pub async fn sign_in_failures(
    conn: &mut PgConnection,
    username: &str,
    address: &str,
    since: DateTime<Utc>,
) -> Result<SignInFailures, StoreError> {
    sqlx::query!("DELETE FROM sign_in_failures WHERE at < now() - interval '1 day'")
        .execute(&mut *conn)
        .await?;
    let r = sqlx::query!(
        r#"SELECT GREATEST(
                  (SELECT count(*) FROM sign_in_failures WHERE username = $1 AND at >= $3),
                  (SELECT count(*) FROM sign_in_failures WHERE address = $2 AND at >= $3)) AS "count!",
                  (SELECT max(at) FROM sign_in_failures
                    WHERE (username = $1 OR address = $2) AND at >= $3) AS last"#,
        username,
        address,
        since
    )
    .fetch_one(conn)
    .await?;
    Ok(SignInFailures {
        count: r.count,
        last: r.last,
    })
}

/// Forgets a user name's failed sign-ins (after a successful one).
pub async fn clear_sign_in_failures(
    conn: &mut PgConnection,
    username: &str,
) -> Result<(), StoreError> {
    sqlx::query!("DELETE FROM sign_in_failures WHERE username = $1", username)
        .execute(conn)
        .await?;
    Ok(())
}

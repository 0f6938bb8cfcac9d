//! Operators: argon2id password hashes, the shops each one sees, and server-side sessions
//! (the cookie holds a random token; the database keeps only its SHA-256).

use anyhow::{Context, bail};
use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "console_session";
/// How long a sign-in lasts.
pub const SESSION_TTL: Duration = Duration::hours(12);

/// Hashes a password to an argon2id PHC string.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let hash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("hashing the password failed: {e}"))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the stored PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// A valid username: 1-64 of letters, digits, `.`, `_`, `@`, `-`.
pub fn valid_username(u: &str) -> bool {
    (1..=64).contains(&u.len())
        && u.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
}

/// Creates an operator, or updates the password, display name and shops of an existing one.
/// Unknown shop codes are refused (naming them) and nothing changes.
pub async fn upsert_user(
    pool: &PgPool,
    username: &str,
    display_name: Option<&str>,
    password: &str,
    shop_codes: &[String],
) -> anyhow::Result<Uuid> {
    if !valid_username(username) {
        bail!(
            "invalid username {username:?}: use 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
        );
    }
    if password.chars().count() < 8 {
        bail!("the password (CONSOLE_PASSWORD) must have at least 8 characters");
    }
    let hash = hash_password(password)?;
    let mut tx = pool.begin().await?;
    let mut shop_ids = Vec::new();
    for code in shop_codes {
        let id = sqlx::query_scalar!("SELECT id FROM shops WHERE code = $1", code)
            .fetch_optional(&mut *tx)
            .await?
            .with_context(|| format!("unknown shop {code:?}: see `ctl shop list`"))?;
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
        display_name.unwrap_or(username),
        hash
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query!("DELETE FROM console_user_shops WHERE user_id = $1", id)
        .execute(&mut *tx)
        .await?;
    sqlx::query!(
        "INSERT INTO console_user_shops (user_id, shop_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING",
        id,
        &shop_ids
    )
    .execute(&mut *tx)
    .await?;
    // A changed password ends the user's other sessions.
    sqlx::query!("DELETE FROM console_sessions WHERE user_id = $1", id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}

/// A shop an operator sees.
#[derive(Debug, Clone)]
pub struct ShopRef {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub time_zone: String,
    pub marketplaces: Vec<String>,
}

/// The signed-in operator.
#[derive(Debug, Clone)]
pub struct Operator {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    pub csrf: String,
    pub shops: Vec<ShopRef>,
}

impl Operator {
    pub fn shop_ids(&self) -> Vec<Uuid> {
        self.shops.iter().map(|s| s.id).collect()
    }

    pub fn shop_by_code(&self, code: &str) -> Option<&ShopRef> {
        self.shops.iter().find(|s| s.code == code)
    }

    pub fn shop_by_id(&self, id: Uuid) -> Option<&ShopRef> {
        self.shops.iter().find(|s| s.id == id)
    }

    /// The shop's code, for display.
    pub fn code_of(&self, id: Option<Uuid>) -> String {
        id.and_then(|id| self.shop_by_id(id))
            .map(|s| s.code.clone())
            .unwrap_or_else(|| "—".to_owned())
    }
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Checks a username and password; on success opens a session and returns its cookie token.
/// `None` for an unknown user, a wrong password or a deactivated user (the same answer for each).
pub async fn sign_in(
    pool: &PgPool,
    username: &str,
    password: &str,
) -> anyhow::Result<Option<String>> {
    let user = sqlx::query!(
        "SELECT id, password_hash FROM console_users WHERE username = $1 AND active",
        username
    )
    .fetch_optional(pool)
    .await?;
    // Verify against a dummy hash when the user is unknown, so timing does not tell.
    let (id, phc) = match user {
        Some(u) => (Some(u.id), u.password_hash),
        None => (None, DUMMY_HASH.clone()),
    };
    let ok = tokio::task::spawn_blocking({
        let password = password.to_owned();
        move || verify_password(&password, &phc)
    })
    .await?;
    let Some(id) = id.filter(|_| ok) else {
        return Ok(None);
    };
    let token = random_token();
    sqlx::query!(
        "INSERT INTO console_sessions (token_sha256, user_id, csrf_token, expires_at) VALUES ($1, $2, $3, $4)",
        token_hash(&token),
        id,
        random_token(),
        Utc::now() + SESSION_TTL
    )
    .execute(pool)
    .await?;
    sqlx::query!("DELETE FROM console_sessions WHERE expires_at < now()")
        .execute(pool)
        .await?;
    Ok(Some(token))
}

/// argon2id of a random string nobody knows (for constant-time answers to unknown users).
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password(&random_token()).unwrap_or_default());

/// Ends a session.
pub async fn sign_out(pool: &PgPool, token: &str) -> anyhow::Result<()> {
    sqlx::query!(
        "DELETE FROM console_sessions WHERE token_sha256 = $1",
        token_hash(token)
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// The operator of a session token, with the shops they see.
pub async fn operator(conn: &mut PgConnection, token: &str) -> anyhow::Result<Option<Operator>> {
    let Some(s) = sqlx::query!(
        r#"SELECT u.id, u.username, u.display_name, s.csrf_token
           FROM console_sessions s JOIN console_users u ON u.id = s.user_id
           WHERE s.token_sha256 = $1 AND s.expires_at > now() AND u.active"#,
        token_hash(token)
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let shops = sqlx::query_as!(
        ShopRef,
        r#"SELECT sh.id, sh.code, sh.name, sh.time_zone, sh.marketplaces
           FROM console_user_shops us JOIN shops sh ON sh.id = us.shop_id
           WHERE us.user_id = $1 ORDER BY sh.code"#,
        s.id
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(Operator {
        user_id: s.id,
        username: s.username,
        display_name: s.display_name,
        csrf: s.csrf_token,
        shops,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(!verify_password("x", &DUMMY_HASH));
    }

    #[test]
    fn usernames() {
        assert!(valid_username("alice"));
        assert!(valid_username("a.b-c_d@x"));
        assert!(!valid_username(""));
        assert!(!valid_username("-a"));
        assert!(!valid_username("a b"));
        assert!(!valid_username("<script>"));
    }
}

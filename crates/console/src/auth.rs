//! Operators: argon2id password hashes, the shops each one sees, and server-side sessions
//! (the cookie holds a random token; the database keeps only its SHA-256).

use anyhow::bail;
use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use store::{StoreError, operators};
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

/// Creates an operator, or updates the password, display name and shops of an existing one
/// (an existing operator keeps the administrator role, a new one is not an administrator).
/// Unknown shop codes are refused (naming them) and nothing changes.
pub async fn upsert_user(
    pool: &PgPool,
    username: &str,
    display_name: Option<&str>,
    password: &str,
    shop_codes: &[String],
) -> anyhow::Result<Uuid> {
    upsert_operator(pool, username, display_name, password, shop_codes, None).await
}

/// [`upsert_user`], and with `admin` = `Some(role)` also sets whether the operator is a console
/// administrator (sees and replays the dead-letter queues, which hold every shop's messages);
/// `None` leaves the role as it is. One transaction: nothing changes when any part is refused.
pub async fn upsert_operator(
    pool: &PgPool,
    username: &str,
    display_name: Option<&str>,
    password: &str,
    shop_codes: &[String],
    admin: Option<bool>,
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
    let id = operators::upsert(
        &mut tx,
        username,
        display_name.unwrap_or(username),
        &hash,
        shop_codes,
    )
    .await
    .map_err(|e| match e {
        StoreError::NotFound { what: "shop", key } => {
            anyhow::anyhow!("unknown shop {key:?}: see `ctl shop list`")
        }
        other => other.into(),
    })?;
    if let Some(admin) = admin {
        operators::set_admin(&mut tx, id, admin).await?;
    }
    tx.commit().await?;
    Ok(id)
}

/// A shop an operator sees.
pub use store::operators::ShopRef;

/// The signed-in operator.
#[derive(Debug, Clone)]
pub struct Operator {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    pub csrf: String,
    pub shops: Vec<ShopRef>,
    /// A console administrator: also sees the dead-letter queues, which are per service and so
    /// hold every shop's messages (`console user add --admin`).
    pub admin: bool,
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
/// Failed sign-ins (for a user name, or from one address) within [`FAILURE_WINDOW`] after which
/// each further attempt waits.
pub const FAILURES_BEFORE_DELAY: i64 = 5;
/// How far back failed sign-ins count.
pub const FAILURE_WINDOW: chrono::Duration = chrono::Duration::minutes(15);
/// The longest wait between two attempts.
pub const MAX_SIGN_IN_DELAY_SECS: i64 = 300;

/// How long the next sign-in attempt must still wait, given the recent failures: nothing below
/// [`FAILURES_BEFORE_DELAY`], then 2 s after the last failure, doubling with each further one
/// (4 s, 8 s, …) up to [`MAX_SIGN_IN_DELAY_SECS`].
pub fn sign_in_wait(
    failures: operators::SignInFailures,
    now: chrono::DateTime<Utc>,
) -> Option<chrono::Duration> {
    if failures.count < FAILURES_BEFORE_DELAY {
        return None;
    }
    let doublings = (failures.count - FAILURES_BEFORE_DELAY).min(10) as u32;
    let delay = (2i64 << doublings).min(MAX_SIGN_IN_DELAY_SECS);
    let until = failures.last? + chrono::Duration::seconds(delay);
    (until > now).then(|| until - now)
}

pub async fn sign_in(
    pool: &PgPool,
    username: &str,
    password: &str,
) -> anyhow::Result<Option<String>> {
    let user = operators::login(&mut *pool.acquire().await?, username).await?;
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
    operators::open_session(
        &mut *pool.acquire().await?,
        &token_hash(&token),
        id,
        &random_token(),
        Utc::now() + SESSION_TTL,
    )
    .await?;
    Ok(Some(token))
}

/// argon2id of a random string nobody knows (for constant-time answers to unknown users).
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password(&random_token()).unwrap_or_default());

/// Ends a session.
pub async fn sign_out(pool: &PgPool, token: &str) -> anyhow::Result<()> {
    operators::close_session(&mut *pool.acquire().await?, &token_hash(token)).await?;
    Ok(())
}

/// The operator of a session token, with the shops they see.
pub async fn operator(conn: &mut PgConnection, token: &str) -> anyhow::Result<Option<Operator>> {
    let Some(s) = operators::session_user(&mut *conn, &token_hash(token)).await? else {
        return Ok(None);
    };
    let shops = operators::shops_of(&mut *conn, s.id).await?;
    Ok(Some(Operator {
        user_id: s.id,
        username: s.username,
        display_name: s.display_name,
        csrf: s.csrf_token,
        shops,
        admin: s.admin,
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

#[cfg(test)]
mod throttle_tests {
    use super::*;
    use store::operators::SignInFailures;

    #[test]
    fn waits_grow_after_five_failures() {
        let now = Utc::now();
        let at = |count, ago_secs| SignInFailures {
            count,
            last: Some(now - chrono::Duration::seconds(ago_secs)),
        };
        assert_eq!(sign_in_wait(at(4, 0), now), None);
        let secs = chrono::Duration::seconds;
        assert_eq!(sign_in_wait(at(5, 0), now), Some(secs(2)));
        assert_eq!(sign_in_wait(at(7, 1), now), Some(secs(7)));
        assert_eq!(sign_in_wait(at(7, 9), now), None);
        assert_eq!(sign_in_wait(at(40, 0), now), Some(secs(300)));
    }
}

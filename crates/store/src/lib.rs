//! Postgres repositories over the root `migrations/`. Functions take `&mut PgConnection` so the
//! caller owns the transaction; every query is compile-checked by sqlx.

pub mod api_log;
pub mod cancel_requests;
pub mod carriers;
pub mod catalog;
pub mod feeds;
pub mod instructions;
pub mod inventory;
pub mod mirror;
pub mod notifications;
pub mod operators;
pub mod packages;
pub mod pii;
pub mod read;
pub mod resend;
pub mod runs;
pub mod schedules;
pub mod shipments;
pub mod shops;
pub mod wms;

use sqlx::{PgPool, migrate::Migrator, postgres::PgPoolOptions};

/// Every migration of the project.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// Errors of the repositories.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    #[error("{what} {key:?} not found")]
    NotFound { what: &'static str, key: String },
    #[error("{what} {key:?} already exists")]
    Duplicate { what: &'static str, key: String },
    #[error("{0}")]
    Conflict(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

/// A row that must exist: `None` becomes [`StoreError::NotFound`] naming what was looked for and
/// by which key (the key is only formatted when the row is missing).
pub(crate) trait Found<T> {
    /// The value, or `NotFound { what, key }`.
    fn found(self, what: &'static str, key: impl std::fmt::Display) -> Result<T, StoreError>;
}

impl<T> Found<T> for Option<T> {
    fn found(self, what: &'static str, key: impl std::fmt::Display) -> Result<T, StoreError> {
        self.ok_or_else(|| StoreError::NotFound {
            what,
            key: key.to_string(),
        })
    }
}

impl StoreError {
    /// Whether retrying later may succeed (connection problems, serialization failures):
    /// [`is_transient_db`] of the database error.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Db(e) => is_transient_db(e),
            _ => false,
        }
    }
}

/// Whether a database error may go away when the work is retried later: connection problems
/// (I/O, pool timed out or closed, worker crashed), serialization failure (40001), deadlock
/// (40P01), server shutting down or starting (57P01, 57P03). The one retryable-error check of
/// the workspace.
pub fn is_transient_db(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            Some("40001" | "40P01" | "57P01" | "57P03")
        ),
        _ => false,
    }
}

/// Maps a unique violation to [`StoreError::Duplicate`].
pub(crate) fn map_unique(e: sqlx::Error, what: &'static str, key: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            StoreError::Duplicate {
                what,
                key: key.to_owned(),
            }
        }
        _ => StoreError::Db(e),
    }
}

/// Default database URL for the local development services.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/connector";

/// Opens a pool.
pub async fn connect(database_url: &str, max_connections: u32) -> Result<PgPool, StoreError> {
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect(database_url)
        .await?)
}

/// Creates the database named in `database_url` if it does not exist (for local runs and the demo).
pub async fn ensure_database(database_url: &str) -> Result<(), StoreError> {
    use sqlx::{Connection, PgConnection, postgres::PgConnectOptions};
    let opts: PgConnectOptions = database_url.parse()?;
    let Some(name) = opts.get_database().map(str::to_owned) else {
        return Ok(());
    };
    let mut admin = PgConnection::connect_with(&opts.clone().database("postgres")).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
            .execute(&mut admin)
            .await?;
    }
    Ok(())
}

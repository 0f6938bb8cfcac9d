//! Configuration from the environment, validated before any command runs.

use anyhow::{Context, bail};

/// Default AMQP URL for the local RabbitMQ.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Where ctl connects.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub amqp_url: String,
    /// Prefix of exchange and queue names (empty in production; tests isolate with it).
    pub bus_prefix: String,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let database_url = env_or("DATABASE_URL", store::DEFAULT_DATABASE_URL);
        if !database_url.starts_with("postgres://") && !database_url.starts_with("postgresql://") {
            bail!(
                "DATABASE_URL must be a postgres:// URL, got a value starting with {:?}",
                database_url.chars().take(11).collect::<String>()
            );
        }
        let amqp_url = env_or("AMQP_URL", DEFAULT_AMQP_URL);
        if !amqp_url.starts_with("amqp://") && !amqp_url.starts_with("amqps://") {
            bail!("AMQP_URL must be an amqp:// or amqps:// URL");
        }
        Ok(Self {
            database_url,
            amqp_url,
            bus_prefix: env_or("BUS_PREFIX", ""),
        })
    }

    pub async fn pool(&self) -> anyhow::Result<sqlx::PgPool> {
        store::connect(&self.database_url, 4)
            .await
            .context("cannot connect to PostgreSQL (DATABASE_URL); is it running and migrated (`ctl migrate`)?")
    }
}

/// `SPAPI_RATE_SCALE` (default 1.0): set it to the simulator's `--rate-scale`.
pub fn spapi_rate_scale() -> anyhow::Result<f64> {
    match std::env::var("SPAPI_RATE_SCALE") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .with_context(|| format!("SPAPI_RATE_SCALE={v:?} is not a number")),
        _ => Ok(1.0),
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

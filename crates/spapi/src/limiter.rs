//! The rate limiter shared by every replica and service through Postgres (`rate_buckets`).
//!
//! Amazon's quota is a token bucket per selling partner and operation. Each acquire is one
//! atomic statement that creates the bucket from the documented usage plan if it is missing,
//! refills it by the elapsed database clock time, and takes a token if at least one is
//! available; otherwise it reports how long until one will be. Waiting is left to the caller:
//! [`RateLimiter::acquire`] never sleeps, [`RateLimiter::acquire_within`] sleeps only up to a
//! bound and otherwise returns [`Error::Throttled`] so that long waits become persisted
//! cursors, not sleeping workers.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::error::{Error, Result};
use crate::operation::{Operation, Quota};

/// The outcome of one acquire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// A token was taken: send the request now.
    Go,
    /// No token: the earliest time one is expected (another replica may take it first).
    WaitUntil(DateTime<Utc>),
}

/// A snapshot of one bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketState {
    /// Refill rate (requests per second).
    pub rate: f64,
    /// Bucket size.
    pub burst: f64,
    /// Tokens at `updated_at`.
    pub tokens: f64,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Token buckets in Postgres, shared by all processes using the same database.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    pool: PgPool,
    rate_scale: f64,
    burst_reserve: f64,
}

impl RateLimiter {
    /// A limiter on `pool` using Amazon's documented rates.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            rate_scale: 1.0,
            burst_reserve: 0.0,
        }
    }

    /// Multiplies documented rates (for a simulator started with `--rate-scale`).
    pub fn with_rate_scale(mut self, scale: f64) -> Self {
        self.rate_scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        self
    }

    /// Starts buckets with `reserve` tokens less than the documented burst (at least 1 remains).
    pub fn with_burst_reserve(mut self, reserve: f64) -> Self {
        self.burst_reserve = reserve.max(0.0);
        self
    }

    /// The database pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The usage plan a new bucket for `op` starts from (documented, scaled, minus reserve).
    pub fn initial_quota(&self, op: Operation) -> Quota {
        let documented = op.default_quota();
        Quota {
            rate: documented.rate * self.rate_scale,
            burst: (documented.burst - self.burst_reserve).max(1.0),
        }
    }

    /// Tries to take one token of `(seller_key, op)`. One atomic statement; never sleeps.
    pub async fn acquire(&self, seller_key: &str, op: Operation) -> Result<Permit> {
        let quota = self.initial_quota(op);
        // A concurrent first insert of the same bucket is invisible to this statement's
        // snapshot; the second attempt sees it.
        for _ in 0..3 {
            let row = sqlx::query!(
                r#"
WITH ins AS (
    INSERT INTO rate_buckets AS b (seller_key, operation, rate, burst, tokens, updated_at)
    VALUES ($1::text, $2::text, $3::float8, $4::float8, $4::float8 - 1, clock_timestamp())
    ON CONFLICT (seller_key, operation) DO NOTHING
    RETURNING b.tokens
), upd AS (
    UPDATE rate_buckets AS b
    SET tokens = LEAST(b.burst, b.tokens + b.rate * GREATEST(0, EXTRACT(EPOCH FROM clock_timestamp() - b.updated_at))::float8) - 1,
        updated_at = GREATEST(b.updated_at, clock_timestamp())
    WHERE b.seller_key = $1::text AND b.operation = $2::text
      AND LEAST(b.burst, b.tokens + b.rate * GREATEST(0, EXTRACT(EPOCH FROM clock_timestamp() - b.updated_at))::float8) >= 1
    RETURNING b.tokens
)
SELECT true AS "granted!", 0::float8 AS "wait_secs!" FROM ins
UNION ALL
SELECT true, 0::float8 FROM upd
UNION ALL
SELECT false,
       GREATEST(0.001, (1 - LEAST(b.burst, b.tokens + b.rate * GREATEST(0, EXTRACT(EPOCH FROM clock_timestamp() - b.updated_at))::float8)) / b.rate)
FROM rate_buckets AS b
WHERE b.seller_key = $1 AND b.operation = $2
  AND NOT EXISTS (SELECT 1 FROM ins) AND NOT EXISTS (SELECT 1 FROM upd)
"#,
                seller_key,
                op.name(),
                quota.rate,
                quota.burst,
            )
            .fetch_optional(&self.pool)
            .await?;
            if let Some(row) = row {
                return Ok(if row.granted {
                    Permit::Go
                } else {
                    let wait = Duration::from_secs_f64(row.wait_secs.clamp(0.0, 1.0e7));
                    Permit::WaitUntil(
                        Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default(),
                    )
                });
            }
        }
        Err(Error::Config(format!(
            "rate bucket ({seller_key}, {op}) could not be read"
        )))
    }

    /// Acquires a token, sleeping while the total wait stays within `max_wait`; otherwise
    /// returns [`Error::Throttled`] with the earliest expected time. Returns the time slept.
    pub async fn acquire_within(
        &self,
        seller_key: &str,
        op: Operation,
        max_wait: Duration,
    ) -> Result<Duration> {
        let started = Instant::now();
        loop {
            match self.acquire(seller_key, op).await? {
                Permit::Go => return Ok(started.elapsed()),
                Permit::WaitUntil(at) => {
                    let wait = (at - Utc::now()).to_std().unwrap_or_default();
                    // A little jitter so that waiters on one bucket do not all wake at once.
                    let jitter_ms = (wait.as_millis() as u64 / 20).min(25);
                    let wait = wait + Duration::from_millis(rand::random_range(0..=jitter_ms));
                    if started.elapsed() + wait > max_wait {
                        return Err(Error::Throttled {
                            operation: op.name(),
                            retry_at: at,
                        });
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Adopts the rate Amazon applied (`x-amzn-RateLimit-Limit`). The bucket is first refilled
    /// at the old rate up to now. Returns whether the stored rate changed.
    pub async fn set_rate(&self, seller_key: &str, op: Operation, rate: f64) -> Result<bool> {
        if !(rate.is_finite() && rate > 0.0) {
            return Ok(false);
        }
        let done = sqlx::query!(
            r#"
UPDATE rate_buckets
SET tokens = LEAST(burst, tokens + rate * GREATEST(0, EXTRACT(EPOCH FROM clock_timestamp() - updated_at))::float8),
    updated_at = GREATEST(updated_at, clock_timestamp()),
    rate = $3
WHERE seller_key = $1 AND operation = $2 AND abs(rate - $3) > $3 * 0.001
"#,
            seller_key,
            op.name(),
            rate,
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Empties the bucket after Amazon answered 429 (its bucket is empty, ours was not), so
    /// that every replica backs off.
    pub async fn drain(&self, seller_key: &str, op: Operation) -> Result<()> {
        sqlx::query!(
            r#"
UPDATE rate_buckets
SET tokens = LEAST(0, tokens), updated_at = GREATEST(updated_at, clock_timestamp())
WHERE seller_key = $1 AND operation = $2
"#,
            seller_key,
            op.name(),
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Reads a bucket (for tests and operator views).
    pub async fn bucket(&self, seller_key: &str, op: Operation) -> Result<Option<BucketState>> {
        let row = sqlx::query!(
            r#"SELECT rate, burst, tokens, updated_at FROM rate_buckets WHERE seller_key = $1 AND operation = $2"#,
            seller_key,
            op.name(),
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| BucketState {
            rate: r.rate,
            burst: r.burst,
            tokens: r.tokens,
            updated_at: r.updated_at,
        }))
    }
}

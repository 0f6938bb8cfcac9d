//! feed-poller (フィード送信結果取得): processing results of the feeds sent by shipment-feedback
//! and inventory-sync (seed section 5).
//!
//! Commands come in through the job runner's intake ([`runtime::job::intake`]: decoding, contract
//! version, unknown shop); its unit of work is a feed claim, not a run, so it records no run in
//! the ledger: the claim of a due feed is its lease and its duplicate check. Its follow-up polls
//! are commands through the outbox ([`bus::OutboxMessage::command`]), and an SP-API failure
//! is classified by the runner's error policy ([`runtime::job::errors::Decision`]).
//!
//! Triggered by `feed.submitted` events and by `feed-poller` commands (one feed, or every due
//! feed of a shop, e.g. from the scheduler). A feed is polled only when due (`next_poll_at` in
//! Postgres, claimed atomically so duplicate triggers do nothing); when it is not final the next
//! poll is scheduled through the outbox (`not_before`) with a growing delay: seconds at first,
//! then minutes. Nothing sleeps while holding a message. A feed not final after hours is flagged
//! once in the API log.
//!
//! On DONE: `getFeedDocument`, download (gunzip), decode (UTF-8 or CP932), parse the XML or JSON
//! report; every message's result goes to the API log with the order id or SKU and Amazon's code
//! and message. Shipments: success or warning (e.g. "already shipped") → 出荷済み (shipped);
//! error → `failed` with Amazon's message. Inventory messages go to
//! `store::inventory::apply_listing_results` (push state confirmed / failed); shipment results to
//! `store::shipments::apply_feed_result`. Modules: `poll` (claim, getFeed, reschedule, failures),
//! `apply` (a final feed's results). FATAL and
//! CANCELLED feeds fail every message with the reason.

mod apply;
mod poll;

use std::time::Duration;

use bus::{Handler, HandlerError, Incoming, Topology};
use chrono::Utc;
use domain::messages::{Action, Command, CommandParams, Event, EventKind};
use domain::shop::Shop;
use runtime::job::RunnerError;
use serde::Serialize;
use spapi::SpApi;
use sqlx::{PgConnection, PgPool};
use store::feeds as feeds_store;
use uuid::Uuid;

/// Service, queue and api_log action name.
pub const SERVICE: &str = "feed-poller";
const ACTION: &str = "feed-poller";
/// Tuning.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Delay after the first unfinished poll; doubled each time.
    pub first_delay: Duration,
    /// Longest delay between two polls.
    pub max_delay: Duration,
    /// A feed not final this long after submission is flagged as stuck.
    pub stuck_after: chrono::Duration,
    /// How long a claim protects a feed from a concurrent poll.
    pub claim_lease: chrono::Duration,
    /// Polls of a feed DONE without a result document before its results are given up as
    /// unknown.
    pub missing_report_polls: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(5 * 60),
            stuck_after: chrono::Duration::hours(3),
            claim_lease: chrono::Duration::minutes(2),
            missing_report_polls: 5,
        }
    }
}

impl Settings {
    /// Delay before poll number `attempts + 1`: first_delay × 2^attempts, capped.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u32.checked_shl(attempts.min(20)).unwrap_or(u32::MAX);
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// What one poll did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PollReport {
    pub polled: usize,
    pub still_processing: usize,
    pub finished: Vec<Uuid>,
    pub succeeded: u32,
    pub failed: u32,
    /// What the inventory messages of the finished feeds did to their SKUs.
    pub inventory: store::inventory::AppliedResults,
}

/// Errors that abort a poll (the message is retried).
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Runner(#[from] RunnerError),
}

impl From<PollError> for HandlerError {
    fn from(e: PollError) -> Self {
        match e {
            PollError::Runner(e) => e.into(),
            other => HandlerError::Retry(other.to_string()),
        }
    }
}

/// The feed-poller service.
#[derive(Clone)]
pub struct Poller {
    pool: PgPool,
    keys: crypto::Keyring,
    api: SpApi,
    topology: Topology,
    settings: Settings,
}

impl Poller {
    pub fn new(
        pool: PgPool,
        keys: crypto::Keyring,
        api: SpApi,
        topology: Topology,
        settings: Settings,
    ) -> Self {
        Self {
            pool,
            keys,
            api,
            topology,
            settings,
        }
    }

    /// From the runtime context.
    pub fn from_ctx(ctx: runtime::Ctx) -> anyhow::Result<Self> {
        let api = ctx.spapi_client()?;
        Ok(Self::new(
            ctx.pool,
            ctx.keys,
            api,
            ctx.topology,
            Settings::default(),
        ))
    }

    /// Polls the due feeds of a shop (or just `one`). Feeds that are not due are left alone.
    pub async fn poll(&self, shop_id: Uuid, one: Option<Uuid>) -> Result<PollReport, PollError> {
        let mut conn = self.pool.acquire().await?;
        let claimed =
            feeds_store::claim_due(&mut conn, shop_id, one, self.settings.claim_lease, 100).await?;
        let mut report = PollReport::default();
        if claimed.is_empty() {
            return Ok(report);
        }
        let shop = store::shops::get(&mut conn, shop_id).await?.shop;
        drop(conn);
        let api = self.shop_api(&shop).await?;
        for sub in claimed {
            report.polled += 1;
            self.poll_one(&shop, &api, sub, &mut report).await?;
        }
        Ok(report)
    }

    /// Schedules the first poll of a newly submitted feed (or polls it now when already due).
    pub async fn on_submitted(
        &self,
        shop_id: Uuid,
        submission: Uuid,
    ) -> Result<PollReport, PollError> {
        let mut conn = self.pool.acquire().await?;
        let sub = match feeds_store::get(&mut conn, submission).await {
            Ok(s) => s,
            Err(store::StoreError::NotFound { .. }) => return Ok(PollReport::default()),
            Err(e) => return Err(e.into()),
        };
        if sub.state != feeds_store::state::SUBMITTED {
            return Ok(PollReport::default());
        }
        match sub.next_poll_at {
            Some(at) if at > Utc::now() => {
                self.schedule_command(&mut conn, shop_id, submission, at)
                    .await?;
                Ok(PollReport::default())
            }
            _ => {
                drop(conn);
                self.poll(shop_id, Some(submission)).await
            }
        }
    }

    /// The next poll of `submission` at `at`: a `feed-poller` command through the outbox.
    async fn schedule_command(
        &self,
        conn: &mut PgConnection,
        shop_id: Uuid,
        submission: Uuid,
        at: chrono::DateTime<Utc>,
    ) -> Result<(), PollError> {
        let cmd = Command::new(
            shop_id,
            Action::FeedPoller,
            CommandParams::FeedPoll {
                feed_submission_id: Some(submission),
            },
            "system",
            Utc::now(),
        );
        bus::outbox::enqueue(
            conn,
            bus::OutboxMessage::command(&self.topology, &cmd).not_before(at),
        )
        .await?;
        Ok(())
    }

    async fn shop_api(&self, shop: &Shop) -> Result<spapi::Shop, PollError> {
        let mut conn = self.pool.acquire().await?;
        Ok(job_api::shop_api(&mut conn, &self.keys, &self.api, shop).await?)
    }
}

impl Handler for Poller {
    async fn handle(&self, msg: Incoming) -> Result<(), HandlerError> {
        if msg.routing_key.contains("feed.submitted")
            || msg.payload.get("kind").and_then(|k| k.as_str()) == Some("feed_submitted")
        {
            let event: Event = msg.payload_as()?;
            if let EventKind::FeedSubmitted {
                feed_submission_id, ..
            } = event.kind
            {
                self.on_submitted(event.shop_id, feed_submission_id).await?;
            }
            return Ok(());
        }
        let Some(cmd) = runtime::job::intake(&self.pool, Action::FeedPoller, &msg).await? else {
            return Ok(());
        };
        match cmd.params {
            CommandParams::FeedPoll { feed_submission_id } => {
                let r = self.poll(cmd.shop_id, feed_submission_id).await?;
                tracing::info!(shop_id = %cmd.shop_id, polled = r.polled, finished = r.finished.len(), "feed poll");
                Ok(())
            }
            _ => Err(HandlerError::reject(format!(
                "{} command on the {SERVICE} queue",
                cmd.action
            ))),
        }
    }
}

/// The service binary: reads its settings from the environment (`--help` lists them), then
/// consumes its queue until SIGTERM (`runtime::run`). The `feed-poller` binary and the image's
/// multi-call `connector` binary both run this.
pub async fn main_from_env() -> anyhow::Result<()> {
    runtime::run(SERVICE, &["feed.submitted"], |ctx| {
        Poller::from_ctx(ctx).expect("SP-API client configuration")
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_seconds_then_minutes() {
        let s = Settings::default();
        let d: Vec<u64> = (0..10).map(|n| s.backoff(n).as_secs()).collect();
        assert_eq!(d, vec![5, 10, 20, 40, 80, 160, 300, 300, 300, 300]);
        assert_eq!(s.backoff(u32::MAX), s.max_delay);
    }
}

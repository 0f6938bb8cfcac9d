//! feed-poller (フィード送信結果取得): processing results of the feeds sent by shipment-feedback
//! and inventory-sync (seed section 5).
//!
//! Triggered by `feed.submitted` events and by `feed-poller` commands (one feed, or every due
//! feed of a shop, e.g. from a CronJob). A feed is polled only when due (`next_poll_at` in
//! Postgres, claimed atomically so duplicate triggers do nothing); when it is not final the next
//! poll is scheduled through the outbox (`not_before`) with a growing delay: seconds at first,
//! then minutes. Nothing sleeps while holding a message. A feed not final after hours is flagged
//! once in the API log.
//!
//! On DONE: `getFeedDocument`, download (gunzip), decode (UTF-8 or CP932), parse the XML or JSON
//! report; every message's result goes to the API log with the order id or SKU and Amazon's code
//! and message. Shipments: success or warning (e.g. "already shipped") → 出荷済み (shipped);
//! error → `failed` with Amazon's message. Inventory messages go to
//! `store::inventory::apply_listing_results` (push state confirmed / failed). FATAL and
//! CANCELLED feeds fail every message with the reason.

use std::time::Duration;

use bus::{Handler, HandlerError, Incoming, OutboxMessage, Topology};
use chrono::Utc;
use domain::messages::{Action, Command, CommandParams, Event, EventKind};
use domain::shop::Shop;
use serde::Serialize;
use spapi::feeds::ProcessingStatus;
use spapi::reports::{MessageResult, MessageStatus};
use spapi::{ErrorClass, SpApi};
use sqlx::{PgConnection, PgPool};
use store::api_log::{self, Entry, Level};
use store::feeds::{self as feeds_store, Submission};
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
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(5 * 60),
            stuck_after: domain::feed_stuck::STUCK_AFTER,
            claim_lease: chrono::Duration::minutes(2),
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
}

/// Errors that abort a poll (the message is retried).
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("shop configuration: {0}")]
    Config(String),
}

impl From<PollError> for HandlerError {
    fn from(e: PollError) -> Self {
        match e {
            PollError::Config(m) => HandlerError::Reject(m),
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
            OutboxMessage::command(&self.topology, &cmd).not_before(at),
        )
        .await?;
        Ok(())
    }

    async fn shop_api(&self, shop: &Shop) -> Result<spapi::Shop, PollError> {
        let mut conn = self.pool.acquire().await?;
        Ok(runtime::shop_api(&mut conn, &self.keys, &self.api, shop).await?)
    }

    /// Not final (or a transient failure): record and schedule the next poll.
    async fn reschedule(
        &self,
        shop: &Shop,
        sub: &Submission,
        status: &str,
    ) -> Result<(), PollError> {
        let delay = self.settings.backoff(sub.poll_attempts.max(0) as u32);
        let at =
            Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::minutes(5));
        let mut tx = self.pool.begin().await?;
        feeds_store::schedule_poll(&mut tx, sub.id, status, at).await?;
        self.schedule_command(&mut tx, shop.id, sub.id, at).await?;
        let since = sub.submitted_at.unwrap_or(sub.created_at);
        if Utc::now() - since > self.settings.stuck_after
            && feeds_store::flag_stuck(&mut tx, sub.id).await?
        {
            let hours = (Utc::now() - since).num_minutes() as f64 / 60.0;
            api_log::write(
                &mut tx,
                &Entry {
                    code: Some("feed_stuck"),
                    details: Some(serde_json::json!({
                        "feed_submission_id": sub.id, "feed_id": sub.amazon_feed_id, "processing_status": status,
                    })),
                    ..Entry::new(
                        Some(shop.id),
                        ACTION,
                        Level::Attention,
                        &format!(
                            "feed {} ({}) is still {status} {hours:.1} hours after submission; Amazon may be delayed — polling continues every {} minutes",
                            sub.amazon_feed_id.as_deref().unwrap_or("?"),
                            sub.feed_type,
                            self.settings.max_delay.as_secs() / 60
                        ),
                    )
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn poll_one(
        &self,
        shop: &Shop,
        api: &spapi::Shop,
        sub: Submission,
        report: &mut PollReport,
    ) -> Result<(), PollError> {
        let Some(feed_id) = sub.amazon_feed_id.clone() else {
            return Ok(());
        };
        let status_now = sub
            .processing_status
            .clone()
            .unwrap_or_else(|| "IN_QUEUE".into());
        let feed = match api.get_feed(&feed_id).await {
            Ok(f) => f,
            Err(e) => {
                return self
                    .api_failure(shop, &sub, &status_now, "getFeed", &e)
                    .await;
            }
        };
        match feed.processing_status {
            ProcessingStatus::Done => {
                let outcome = match &feed.result_feed_document_id {
                    Some(doc) => self.fetch_report(api, doc).await,
                    None => Ok(None),
                };
                match outcome {
                    Ok(parsed) => {
                        self.apply_done(
                            shop,
                            &sub,
                            feed.result_feed_document_id.as_deref(),
                            parsed,
                            report,
                        )
                        .await
                    }
                    Err(e) if e.is_retryable() => {
                        self.api_failure(shop, &sub, "DONE", "getFeedDocument", &e)
                            .await
                    }
                    Err(e) => {
                        self.unreadable(shop, &sub, feed.result_feed_document_id.as_deref(), &e)
                            .await
                    }
                }
            }
            ProcessingStatus::Fatal | ProcessingStatus::Cancelled => {
                let fatal = feed.processing_status == ProcessingStatus::Fatal;
                // A FATAL feed may come with a report that says why.
                let mut reason = if fatal {
                    format!("Amazon aborted feed {feed_id} (FATAL)")
                } else {
                    format!("feed {feed_id} was cancelled (CANCELLED)")
                };
                if let Some(doc) = &feed.result_feed_document_id
                    && let Ok(Some((report_doc, _))) = self.fetch_report(api, doc).await
                {
                    let issues: Vec<String> = report_doc
                        .feed_issues()
                        .into_iter()
                        .map(|i| i.message)
                        .collect();
                    if !issues.is_empty() {
                        reason = format!("{reason}: {}", issues.join("; "));
                    }
                }
                self.apply_failed(
                    shop,
                    &sub,
                    if fatal {
                        feeds_store::state::FATAL
                    } else {
                        feeds_store::state::CANCELLED
                    },
                    feed.processing_status.as_str(),
                    feed.result_feed_document_id.as_deref(),
                    &reason,
                    report,
                )
                .await
            }
            other => {
                report.still_processing += 1;
                self.reschedule(shop, &sub, other.as_str()).await
            }
        }
    }

    /// Downloads, decodes and parses a result document. Returns the report and the encoding.
    async fn fetch_report(
        &self,
        api: &spapi::Shop,
        document_id: &str,
    ) -> Result<Option<(spapi::reports::ProcessingReport, &'static str)>, spapi::Error> {
        let doc = api.get_feed_document(document_id).await?;
        let downloaded = api.download_document(&doc).await?;
        let decoded = downloaded.text();
        let parsed = spapi::reports::parse_processing_report(&decoded.text)?;
        Ok(Some((parsed, decoded.encoding)))
    }

    async fn api_failure(
        &self,
        shop: &Shop,
        sub: &Submission,
        status: &str,
        op: &str,
        e: &spapi::Error,
    ) -> Result<(), PollError> {
        match e.class() {
            ErrorClass::Reauthorize => {
                let mut conn = self.pool.acquire().await?;
                store::shops::set_auth_status(&mut conn, shop.id, Some(&e.to_string())).await?;
                api_log::write(
                    &mut conn,
                    &Entry {
                        code: Some("reauthorize"),
                        ..Entry::new(
                            Some(shop.id),
                            ACTION,
                            Level::Attention,
                            &format!("{op}: the shop must be re-authorized in Seller Central: {e}"),
                        )
                    },
                )
                .await?;
                drop(conn);
                self.reschedule(shop, sub, status).await
            }
            ErrorClass::Permanent => {
                let mut tx = self.pool.begin().await?;
                feeds_store::finish(
                    &mut tx,
                    sub.id,
                    feeds_store::state::FAILED,
                    status,
                    None,
                    Some(&e.to_string()),
                )
                .await?;
                api_log::write(
                    &mut tx,
                    &Entry {
                        code: Some("poll_failed"),
                        details: Some(serde_json::json!({"feed_submission_id": sub.id, "feed_id": sub.amazon_feed_id})),
                        ..Entry::new(
                            Some(shop.id),
                            ACTION,
                            Level::Attention,
                            &format!("{op} refused for feed {}: {e}; its results cannot be fetched", sub.amazon_feed_id.as_deref().unwrap_or("?")),
                        )
                    },
                )
                .await?;
                tx.commit().await?;
                Ok(())
            }
            _ => {
                tracing::warn!(error = %e, op, "feed poll failed; rescheduled");
                self.reschedule(shop, sub, status).await
            }
        }
    }

    async fn unreadable(
        &self,
        shop: &Shop,
        sub: &Submission,
        doc: Option<&str>,
        e: &spapi::Error,
    ) -> Result<(), PollError> {
        let mut tx = self.pool.begin().await?;
        feeds_store::finish(
            &mut tx,
            sub.id,
            feeds_store::state::FAILED,
            "DONE",
            doc,
            Some(&e.to_string()),
        )
        .await?;
        api_log::write(
            &mut tx,
            &Entry {
                code: Some("report_unreadable"),
                details: Some(serde_json::json!({"feed_submission_id": sub.id, "feed_id": sub.amazon_feed_id, "result_document_id": doc})),
                ..Entry::new(
                    Some(shop.id),
                    ACTION,
                    Level::Attention,
                    &format!(
                        "the processing report of feed {} could not be read ({e}); check the results in Seller Central",
                        sub.amazon_feed_id.as_deref().unwrap_or("?")
                    ),
                )
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn apply_done(
        &self,
        shop: &Shop,
        sub: &Submission,
        result_document_id: Option<&str>,
        parsed: Option<(spapi::reports::ProcessingReport, &'static str)>,
        report: &mut PollReport,
    ) -> Result<(), PollError> {
        let mut tx = self.pool.begin().await?;
        feeds_store::lock_instructions(&mut tx, sub.id).await?;
        let messages = feeds_store::messages(&mut tx, sub.id).await?;
        let ids: Vec<u64> = messages.iter().map(|m| m.message_id as u64).collect();
        let (results, encoding): (Vec<MessageResult>, Option<&str>) = match &parsed {
            Some((r, enc)) => (r.message_results(ids.iter().copied()), Some(*enc)),
            None => (
                ids.iter()
                    .map(|&message_id| MessageResult {
                        message_id,
                        status: MessageStatus::Success,
                        issues: vec![],
                        amazon_order_id: None,
                        sku: None,
                    })
                    .collect(),
                None,
            ),
        };
        let (mut ok, mut bad) = (0u32, 0u32);
        let mut inventory = Vec::new();
        for r in &results {
            let Some(m) = messages
                .iter()
                .find(|m| m.message_id as u64 == r.message_id)
            else {
                continue;
            };
            let success = r.status != MessageStatus::Error;
            if success {
                ok += 1;
            } else {
                bad += 1;
            }
            if m.external_product_id.is_some() {
                // Inventory results are applied (and their failures logged) in one place:
                // store::inventory::apply_listing_results, below.
                inventory.push(store::inventory::MessageOutcome {
                    message_id: m.message_id,
                    result: r.status.as_str(),
                    code: r.code().map(str::to_owned),
                    message: r.message().map(str::to_owned),
                });
                if r.status == MessageStatus::Error {
                    continue;
                }
            } else {
                feeds_store::set_message_result(
                    &mut tx,
                    sub.id,
                    m.message_id,
                    r.status.as_str(),
                    r.code(),
                    r.message(),
                )
                .await?;
            }
            let amazon_text = r.message().map(str::to_owned);
            let code = r.code().map(str::to_owned);
            if let Some(instruction) = m.instruction_id {
                let failure = (!success).then(|| {
                    format!(
                        "Amazon refused the shipment{}: {}",
                        code.as_deref()
                            .map(|c| format!(" ({c})"))
                            .unwrap_or_default(),
                        amazon_text.as_deref().unwrap_or("no message")
                    )
                });
                apply_shipment(&mut tx, instruction, failure.as_deref()).await?;
            }
            let (level, text) = match r.status {
                MessageStatus::Success => (
                    Level::Info,
                    if m.instruction_id.is_some() {
                        "shipment confirmed by Amazon: 出荷済み (shipped)".to_owned()
                    } else {
                        "quantity accepted by Amazon".to_owned()
                    },
                ),
                MessageStatus::Warning => (
                    Level::Warning,
                    format!(
                        "accepted with a warning: {}",
                        amazon_text.as_deref().unwrap_or("")
                    ),
                ),
                MessageStatus::Error => (
                    Level::Error,
                    amazon_text
                        .clone()
                        .unwrap_or_else(|| "refused by Amazon".into()),
                ),
            };
            api_log::write(
                &mut tx,
                &Entry {
                    amazon_order_id: m.amazon_order_id.as_deref(),
                    sku: m.sku.as_deref(),
                    code: code.as_deref(),
                    details: Some(serde_json::json!({
                        "feed_submission_id": sub.id, "feed_id": sub.amazon_feed_id, "message_id": m.message_id,
                        "result": r.status.as_str(),
                    })),
                    ..Entry::new(Some(shop.id), ACTION, level, &text)
                },
            )
            .await?;
        }
        if !inventory.is_empty() {
            store::inventory::apply_listing_results(&mut tx, sub.id, &inventory, ACTION).await?;
        }
        feeds_store::finish(
            &mut tx,
            sub.id,
            feeds_store::state::DONE,
            "DONE",
            result_document_id,
            None,
        )
        .await?;
        let summary = format!(
            "feed {} ({}) processed: {ok} succeeded, {bad} failed",
            sub.amazon_feed_id.as_deref().unwrap_or("?"),
            sub.feed_type
        );
        api_log::write(
            &mut tx,
            &Entry {
                code: Some("feed_done"),
                details: Some(serde_json::json!({
                    "feed_submission_id": sub.id, "feed_id": sub.amazon_feed_id, "succeeded": ok, "failed": bad,
                    "report_encoding": encoding,
                })),
                ..Entry::new(Some(shop.id), ACTION, if bad > 0 { Level::Warning } else { Level::Info }, &summary)
            },
        )
        .await?;
        self.processed_event(&mut tx, shop.id, sub.id, ok, bad)
            .await?;
        tx.commit().await?;
        report.finished.push(sub.id);
        report.succeeded += ok;
        report.failed += bad;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply_failed(
        &self,
        shop: &Shop,
        sub: &Submission,
        final_state: &str,
        processing_status: &str,
        result_document_id: Option<&str>,
        reason: &str,
        report: &mut PollReport,
    ) -> Result<(), PollError> {
        let mut tx = self.pool.begin().await?;
        feeds_store::lock_instructions(&mut tx, sub.id).await?;
        let messages = feeds_store::messages(&mut tx, sub.id).await?;
        let mut inventory = Vec::new();
        for m in &messages {
            if m.external_product_id.is_some() {
                // Applied and logged per SKU by store::inventory::apply_listing_results.
                inventory.push(store::inventory::MessageOutcome {
                    message_id: m.message_id,
                    result: "error",
                    code: Some(processing_status.to_owned()),
                    message: Some(reason.to_owned()),
                });
                continue;
            }
            feeds_store::set_message_result(
                &mut tx,
                sub.id,
                m.message_id,
                "error",
                Some(processing_status),
                Some(reason),
            )
            .await?;
            if let Some(instruction) = m.instruction_id {
                apply_shipment(&mut tx, instruction, Some(reason)).await?;
            }
            api_log::write(
                &mut tx,
                &Entry {
                    amazon_order_id: m.amazon_order_id.as_deref(),
                    sku: m.sku.as_deref(),
                    code: Some(processing_status),
                    details: Some(serde_json::json!({"feed_submission_id": sub.id, "message_id": m.message_id})),
                    ..Entry::new(Some(shop.id), ACTION, Level::Error, reason)
                },
            )
            .await?;
        }
        if !inventory.is_empty() {
            store::inventory::apply_listing_results(&mut tx, sub.id, &inventory, ACTION).await?;
        }
        feeds_store::finish(
            &mut tx,
            sub.id,
            final_state,
            processing_status,
            result_document_id,
            Some(reason),
        )
        .await?;
        api_log::write(
            &mut tx,
            &Entry {
                code: Some(processing_status),
                details: Some(serde_json::json!({"feed_submission_id": sub.id, "feed_id": sub.amazon_feed_id, "messages": messages.len()})),
                ..Entry::new(
                    Some(shop.id),
                    ACTION,
                    Level::Attention,
                    &format!("{reason}: all {} messages failed", messages.len()),
                )
            },
        )
        .await?;
        let n = messages.len() as u32;
        self.processed_event(&mut tx, shop.id, sub.id, 0, n).await?;
        tx.commit().await?;
        report.finished.push(sub.id);
        report.failed += n;
        Ok(())
    }

    async fn processed_event(
        &self,
        tx: &mut PgConnection,
        shop_id: Uuid,
        sub: Uuid,
        ok: u32,
        bad: u32,
    ) -> Result<(), PollError> {
        let event = Event::new(
            shop_id,
            EventKind::FeedProcessed {
                feed_submission_id: sub,
                succeeded: ok,
                failed: bad,
            },
            Utc::now(),
        );
        bus::outbox::enqueue(
            tx,
            OutboxMessage::new(
                self.topology.events_exchange(),
                event.kind.routing_key(),
                serde_json::to_value(&event).unwrap_or_default(),
            ),
        )
        .await?;
        Ok(())
    }
}

/// Shipment result: shipped (出荷済み), or failed with Amazon's message. Only instructions still
/// recorded as sent (印刷済み) change: an operator's later resend is not overwritten.
async fn apply_shipment(
    tx: &mut PgConnection,
    instruction: Uuid,
    failure: Option<&str>,
) -> Result<(), sqlx::Error> {
    let status = if failure.is_some() {
        "failed"
    } else {
        "shipped"
    };
    sqlx::query!(
        r#"UPDATE shipping_instructions SET api_status = $2, api_error = $3, updated_at = now()
           WHERE id = $1 AND api_status = 'printed'"#,
        instruction,
        status,
        failure
    )
    .execute(tx)
    .await?;
    Ok(())
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
        let cmd = Command::decode(
            &serde_json::to_vec(&msg.payload).unwrap_or_default(),
            Utc::now(),
        )
        .map_err(HandlerError::reject)?;
        if !self.shop_known(&cmd).await? {
            return Ok(());
        }
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

impl Poller {
    /// An unknown shop is refused once with an API-log error, and the message acknowledged.
    async fn shop_known(&self, cmd: &Command) -> Result<bool, HandlerError> {
        let mut conn = self.pool.acquire().await?;
        store::api_log::shop_known_or_refused(&mut conn, SERVICE, cmd.shop_id, cmd.message_id)
            .await
            .map_err(HandlerError::retry)
    }
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

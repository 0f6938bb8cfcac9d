//! Step 4: one feed, in two parts so that the next feed's intent is recorded while this one is
//! uploaded and marked sent (see `job::Sync::send_feeds`):
//! - [`Sync::record`]: the submission and every messageId ↔ SKU with the quantity, handling days
//!   and change sequence sent (**intent**, committed before any call);
//! - [`Sync::send`]: upload, mark `in_flight`, `createFeed`, then in one transaction: feed id,
//!   SKUs `sent`, API log, `feed.submitted` (outbox).

use bus::OutboxMessage;
use chrono::Utc;
use domain::messages::{Event, EventKind};
use job_api::JobError;
use sha2::{Digest, Sha256};
use store::api_log::{self, Entry, Level};
use store::feeds as feeds_store;
use store::inventory::{self, ListingMessage};
use uuid::Uuid;

use crate::job::{Run, Sync};
use crate::{ACTION, FEED_TYPE, RunReport};

/// Why the run stops sending: Amazon did not accept a feed.
pub(crate) struct Stop {
    pub(crate) operation: &'static str,
    pub(crate) error: spapi::Error,
    pub(crate) submission: Uuid,
    /// `operation: error`, for the SKUs left unsent and the summary.
    pub(crate) reason: String,
}

/// One feed of a run, built and not recorded yet.
pub(crate) struct Feed<'t> {
    pub(crate) marketplace_id: &'static str,
    pub(crate) json: String,
    pub(crate) messages: Vec<ListingMessage<'t>>,
}

/// A feed whose intent is committed: it may be uploaded.
pub(crate) struct Recorded<'t> {
    pub(crate) submission: Uuid,
    pub(crate) feed: Feed<'t>,
}

impl Sync {
    /// Records the intent of one feed (submission and messages) in its own transaction.
    /// Returns it with the time it took (the `intent` phase).
    pub(crate) async fn record<'t>(
        &self,
        run: &Run<'_>,
        feed: Feed<'t>,
    ) -> Result<(Recorded<'t>, std::time::Duration), JobError> {
        let t = std::time::Instant::now();
        let sha = hex(&Sha256::digest(feed.json.as_bytes()));
        let mut tx = self.deps.pool.begin().await?;
        let submission = inventory::insert_listing_submission(
            &mut tx,
            run.shop.shop.id,
            run.run_id,
            feed.marketplace_id,
            &sha,
            &feed.messages,
        )
        .await?;
        tx.commit().await?;
        Ok((Recorded { submission, feed }, t.elapsed()))
    }

    /// Uploads and submits one recorded feed. Returns why the run must stop sending (Amazon
    /// refused, throttled or failed), after marking the feed's SKUs as not sent.
    pub(crate) async fn send(
        &self,
        run: &Run<'_>,
        api: &spapi::Shop,
        recorded: Recorded<'_>,
        report: &mut RunReport,
    ) -> Result<Option<Stop>, JobError> {
        let Recorded { submission, feed } = recorded;
        let t = std::time::Instant::now();
        report.amazon_calls += 1;
        let document = match api
            .prepare_feed_document(spapi::feeds::JSON_CONTENT_TYPE, feed.json.into_bytes())
            .await
        {
            Ok(d) => d,
            Err(e) => {
                return self
                    .not_accepted(submission, "createFeedDocument/upload", e, report)
                    .await
                    .map(Some);
            }
        };
        {
            let mut conn = self.deps.pool.acquire().await?;
            feeds_store::mark_in_flight(&mut conn, submission, &document.feed_document_id).await?;
        }
        report.timed("upload", t);
        let t = std::time::Instant::now();
        let spec = spapi::feeds::CreateFeedSpecification {
            feed_type: FEED_TYPE.to_owned(),
            marketplace_ids: vec![feed.marketplace_id.to_owned()],
            input_feed_document_id: document.feed_document_id.clone(),
            feed_options: None,
        };
        report.amazon_calls += 1;
        let created = match api.create_feed(&spec).await {
            Ok(created) => created,
            Err(e) => {
                return self
                    .not_accepted(submission, "createFeed", e, report)
                    .await
                    .map(Some);
            }
        };
        report.timed("create", t);
        let t = std::time::Instant::now();
        self.accepted(
            run,
            submission,
            &created.feed_id,
            feed.marketplace_id,
            feed.messages.len(),
        )
        .await?;
        report.timed("sent", t);
        report.sent += feed.messages.len();
        report.feed_submission_ids.push(submission);
        Ok(None)
    }

    /// Amazon accepted the feed: in one transaction, the submission `submitted` with Amazon's
    /// feed id, its SKUs `sent`, the API log and `feed.submitted` (outbox).
    async fn accepted(
        &self,
        run: &Run<'_>,
        submission: Uuid,
        feed_id: &str,
        marketplace_id: &str,
        messages: usize,
    ) -> Result<(), JobError> {
        let shop = &run.shop.shop;
        let mut tx = self.deps.pool.begin().await?;
        let next_poll =
            feeds_store::first_poll_at(&mut tx, shop.id, self.settings.first_poll_delay).await?;
        if feeds_store::mark_submitted(&mut tx, submission, feed_id, next_poll).await? {
            let skus = inventory::mark_skus_sent(&mut tx, submission, run.run_id).await?;
            api_log::write(
                &mut tx,
                &Entry {
                    run_id: Some(run.run_id),
                    code: Some("feed_submitted"),
                    details: Some(serde_json::json!({
                        "feed_submission_id": submission,
                        "feed_id": feed_id,
                        "marketplace_id": marketplace_id,
                        "messages": messages,
                    })),
                    ..Entry::new(
                        Some(shop.id),
                        ACTION,
                        Level::Info,
                        &format!(
                            "feed {feed_id} accepted by Amazon: stock of {skus} SKU(s) for marketplace {marketplace_id}"
                        ),
                    )
                },
            )
            .await?;
            let event = Event::new(
                shop.id,
                EventKind::FeedSubmitted {
                    feed_submission_id: submission,
                    feed_type: FEED_TYPE.to_owned(),
                },
                Utc::now(),
            );
            bus::outbox::enqueue(
                &mut tx,
                OutboxMessage::new(
                    &self.deps.events,
                    event.kind.routing_key(),
                    serde_json::to_value(&event).unwrap_or_default(),
                ),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Amazon did not accept a feed (or its outcome is unknown: a stock push is safe to repeat,
    /// so it is treated as not sent). Its SKUs are `failed` and sent by the next run; what
    /// follows (log, continuation, failed run) is the runner's error policy.
    async fn not_accepted(
        &self,
        submission: Uuid,
        operation: &'static str,
        error: spapi::Error,
        report: &mut RunReport,
    ) -> Result<Stop, JobError> {
        let reason = format!("{operation}: {error}");
        report.not_sent += self
            .close_not_sent(submission, &reason, &format!("not sent: {reason}"))
            .await?;
        Ok(Stop {
            operation,
            error,
            submission,
            reason,
        })
    }

    /// Closes a recorded submission as not sent (`reason`): its SKUs are `failed` with
    /// `sku_error` and sent by the next run. Returns how many SKUs.
    pub(crate) async fn close_not_sent(
        &self,
        submission: Uuid,
        reason: &str,
        sku_error: &str,
    ) -> Result<usize, JobError> {
        let mut tx = self.deps.pool.begin().await?;
        feeds_store::mark_not_sent(&mut tx, submission, reason).await?;
        let n = inventory::mark_skus_not_sent(&mut tx, submission, sku_error).await?;
        tx.commit().await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

//! One poll of a claimed feed: `getFeed`, then the result document of a final feed, or the
//! next poll with backoff; SP-API failures by the runner's error policy.

use chrono::Utc;
use job_api::errors::Decision;
use spapi::feeds::ProcessingStatus;
use store::api_log::{self, Entry, Level};
use store::feeds::{self as feeds_store, Submission};

use domain::shop::Shop;

use crate::{ACTION, PollError, PollReport, Poller};

impl Poller {
    /// Not final (or a transient failure): record and schedule the next poll.
    pub(crate) async fn reschedule(
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

    pub(crate) async fn poll_one(
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
                    // DONE without a report is not "all succeeded": ask again, then leave the
                    // messages unconfirmed.
                    None => return self.missing_report(shop, &sub, report).await,
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
        match Decision::of(e) {
            Decision::Reauthorize => {
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
            Decision::Refuse => {
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
            Decision::Wait | Decision::Retry => {
                tracing::warn!(error = %e, op, "feed poll failed; rescheduled");
                self.reschedule(shop, sub, status).await
            }
        }
    }

    /// A DONE feed without a result document: polled again with backoff up to
    /// `Settings::missing_report_polls` times; then the submission ends `failed`, shipments stay
    /// 印刷済み (sent, not confirmed), inventory SKUs are sent again by the next run, and an
    /// attention entry says what to check.
    async fn missing_report(
        &self,
        shop: &Shop,
        sub: &Submission,
        report: &mut PollReport,
    ) -> Result<(), PollError> {
        let mut conn = self.pool.acquire().await?;
        let seen = feeds_store::note_missing_report(&mut conn, sub.id).await?;
        drop(conn);
        if seen <= self.settings.missing_report_polls as i32 {
            report.still_processing += 1;
            return self.reschedule(shop, sub, "DONE").await;
        }
        let feed = sub.amazon_feed_id.as_deref().unwrap_or("?");
        let why = format!(
            "Amazon reports feed {feed} DONE but gave no processing report after {seen} polls: its results are unknown"
        );
        let mut tx = self.pool.begin().await?;
        feeds_store::finish(
            &mut tx,
            sub.id,
            feeds_store::state::FAILED,
            "DONE",
            None,
            Some(&why),
        )
        .await?;
        let resent = store::inventory::mark_skus_not_sent(&mut tx, sub.id, &why).await?;
        let message = format!(
            "{why}. Shipments stay 印刷済み (sent, not confirmed): check these orders in Seller Central \
             (Manage Orders) and confirm any that do not show as shipped there. {resent} SKU(s) will \
             be sent again by the next inventory sync."
        );
        api_log::write(
            &mut tx,
            &Entry {
                code: Some("report_missing"),
                details: Some(serde_json::json!({
                    "feed_submission_id": sub.id, "feed_id": sub.amazon_feed_id, "polls": seen,
                })),
                ..Entry::new(Some(shop.id), ACTION, Level::Attention, &message)
            },
        )
        .await?;
        tx.commit().await?;
        report.finished.push(sub.id);
        Ok(())
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
}

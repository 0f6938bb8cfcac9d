//! Step 4, strategy `feed`: record the submission and every MessageID ↔ instruction
//! (**intent**), upload the document, mark `in_flight`, `createFeed`, then in one transaction:
//! feed id, instructions → 印刷済み (printed), API log, `feed.submitted` event (outbox).

use bus::OutboxMessage;
use chrono::{DateTime, Utc};
use domain::messages::{Event, EventKind};
use job_api::JobError;
use sha2::{Digest, Sha256};
use spapi::ErrorClass;
use spapi::fulfillment_feed::{self, ShipmentConfirmation};
use sqlx::PgConnection;
use store::api_log::{self, Entry, Level};
use store::feeds::{self as feeds_store, NewMessage};
use uuid::Uuid;

use crate::confirmation::{confirmation, offset_of};
use crate::job::{Feedback, Run, refuse};
use crate::validate::Parcel;
use crate::{ACTION, FEED_TYPE, FailPoints, RunReport};
use store::shipments::{self as db, Target};

impl Feedback {
    /// Amazon accepted `feed_id` for `submission`: feed id, instructions printed, log, event.
    pub(crate) async fn record_accepted(
        &self,
        tx: &mut PgConnection,
        run: &Run<'_>,
        submission: Uuid,
        feed_id: &str,
        reconciled: bool,
    ) -> Result<(), JobError> {
        let shop = &run.shop.shop;
        let next_poll =
            feeds_store::first_poll_at(&mut *tx, shop.id, self.settings.first_poll_delay).await?;
        if !feeds_store::mark_submitted(tx, submission, feed_id, next_poll).await? {
            return Ok(());
        }
        let printed = db::mark_printed(tx, submission).await?;
        let message = if reconciled {
            format!(
                "feed {feed_id} found at Amazon after an interruption: {printed} shipments recorded as sent (印刷済み), nothing sent twice"
            )
        } else {
            format!("feed {feed_id} accepted by Amazon: {printed} shipments sent (印刷済み)")
        };
        api_log::write(
            tx,
            &Entry {
                run_id: Some(run.run_id),
                code: Some(if reconciled { "feed_reconciled" } else { "feed_submitted" }),
                details: Some(serde_json::json!({"feed_submission_id": submission, "feed_id": feed_id, "messages": printed})),
                ..Entry::new(Some(shop.id), ACTION, Level::Info, &message)
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
            tx,
            OutboxMessage::new(
                &self.deps.events,
                event.kind.routing_key(),
                serde_json::to_value(&event).unwrap_or_default(),
            ),
        )
        .await?;
        Ok(())
    }

    /// Sends the validated targets in feeds of at most `max_messages_per_feed` messages.
    pub(crate) async fn send_feeds(
        &self,
        run: &Run<'_>,
        api: &spapi::Shop,
        valid: Vec<(Target, Vec<Parcel>)>,
        now: DateTime<Utc>,
        report: &mut RunReport,
    ) -> Result<(), JobError> {
        let shop = &run.shop.shop;
        let offset = offset_of(shop, now);
        // One message per parcel; an instruction's parcels stay together in one feed, and one
        // the feed builder refuses is refused whole before anything is built.
        // A message's key: its target and package number (`None`: the whole order).
        type Keyed = ((Target, Option<u16>), ShipmentConfirmation);
        let mut groups: Vec<Vec<Keyed>> = Vec::new();
        for (t, parcels) in valid {
            let confirmations: Vec<Keyed> = parcels
                .iter()
                .map(|p| {
                    (
                        (t.clone(), p.number),
                        confirmation(shop, &t, p, offset, now),
                    )
                })
                .collect();
            let problems: Vec<String> = confirmations
                .iter()
                .flat_map(|(_, c)| c.problems(now))
                .collect();
            if parcels.len() > 1 && !problems.is_empty() {
                report.refused += 1;
                let mut conn = self.deps.pool.acquire().await?;
                let msg = t.describe_problems(&problems);
                refuse(&mut conn, run, &t, "invalid_shipment_data", &msg).await?;
                continue;
            }
            groups.push(confirmations);
        }
        let max = self.settings.max_messages_per_feed.max(1);
        let mut chunks: Vec<Vec<Keyed>> = Vec::new();
        for group in groups {
            match chunks.last_mut() {
                Some(last) if last.len() + group.len() <= max => last.extend(group),
                _ => chunks.push(group),
            }
        }
        for chunk in chunks {
            {
                let mut conn = self.deps.pool.acquire().await?;
                if !run.keep_lease(&mut conn).await? {
                    return Ok(());
                }
            }
            let built = fulfillment_feed::build_fulfillment_feed(&shop.seller_id, chunk, now);
            {
                let mut conn = self.deps.pool.acquire().await?;
                for r in &built.rejected {
                    report.refused += 1;
                    let msg = r.key.0.describe_problems(&r.problems);
                    refuse(&mut conn, run, &r.key.0, "invalid_shipment_data", &msg).await?;
                }
            }
            let Some(xml) = built.xml else { continue };
            let marketplaces = {
                let mut m: Vec<String> = built
                    .messages
                    .iter()
                    .filter_map(|m| m.key.0.marketplace_id.clone())
                    .collect();
                m.sort();
                m.dedup();
                if m.is_empty() {
                    m.push(shop.primary_marketplace().id().to_owned());
                }
                m
            };
            let messages: Vec<NewMessage> = built
                .messages
                .iter()
                .map(|m| NewMessage {
                    message_id: m.message_id as i64,
                    instruction_id: Some(m.key.0.id),
                    amazon_order_id: Some(m.amazon_order_id.clone()),
                    package_no: m.key.1.map(|n| n as i16),
                    ..Default::default()
                })
                .collect();
            let (submission, spec, mut conn) = self
                .intend_and_upload(run, api, FEED_TYPE, marketplaces, xml, &messages)
                .await?;
            match api.create_feed(&spec).await {
                Ok(created) => {
                    if FailPoints::armed(&self.fail.crash_after_create_feed) {
                        return Err(self.fail.hit("crash after createFeed"));
                    }
                    drop(conn);
                    let mut tx = self.deps.pool.begin().await?;
                    self.record_accepted(&mut tx, run, submission, &created.feed_id, false)
                        .await?;
                    tx.commit().await?;
                    report.sent += messages.len();
                    report.feed_submission_ids.push(submission);
                }
                // Stays in_flight: the next run reconciles with getFeeds first.
                Err(e) if e.class() == ErrorClass::Reconcile => {
                    return Err(JobError::api("createFeed", e));
                }
                Err(e) => {
                    // Amazon did not take the feed (refused, throttled, never reached).
                    feeds_store::mark_not_sent(&mut conn, submission, &format!("createFeed: {e}"))
                        .await?;
                    return Err(JobError::api("createFeed", e));
                }
            }
        }
        Ok(())
    }
}

impl Feedback {
    /// Records the intent (the submission and every MessageID ↔ instruction, committed before
    /// any call), uploads `xml` and marks the submission in flight. Returns the submission, the
    /// specification to create the feed with, and the connection. A failed upload closes the
    /// submission as not sent.
    pub(crate) async fn intend_and_upload(
        &self,
        run: &Run<'_>,
        api: &spapi::Shop,
        feed_type: &str,
        marketplaces: Vec<String>,
        xml: String,
        messages: &[NewMessage],
    ) -> Result<
        (
            Uuid,
            spapi::feeds::CreateFeedSpecification,
            sqlx::pool::PoolConnection<sqlx::Postgres>,
        ),
        JobError,
    > {
        let sha = hex(&Sha256::digest(xml.as_bytes()));
        let submission = {
            let mut tx = self.deps.pool.begin().await?;
            let id = feeds_store::insert(
                &mut tx,
                run.shop.shop.id,
                Some(run.run_id),
                feed_type,
                &marketplaces,
                &sha,
                messages,
            )
            .await?;
            tx.commit().await?;
            id
        };
        let mut conn = self.deps.pool.acquire().await?;
        let document = match api
            .prepare_feed_document(spapi::feeds::XML_CONTENT_TYPE, xml.into_bytes())
            .await
        {
            Ok(d) => d,
            Err(e) => {
                feeds_store::mark_not_sent(
                    &mut conn,
                    submission,
                    &format!("document upload failed: {e}"),
                )
                .await?;
                return Err(JobError::api("createFeedDocument/upload", e));
            }
        };
        feeds_store::mark_in_flight(&mut conn, submission, &document.feed_document_id).await?;
        let spec = spapi::feeds::CreateFeedSpecification {
            feed_type: feed_type.to_owned(),
            marketplace_ids: marketplaces,
            input_feed_document_id: document.feed_document_id,
            feed_options: None,
        };
        Ok((submission, spec, conn))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

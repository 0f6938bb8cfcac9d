//! A final feed's results: per message the API log, shipments through
//! `store::shipments::apply_feed_result`, inventory through
//! `store::inventory::apply_listing_results`; the submission finished and `feed.processed`.

use bus::OutboxMessage;
use chrono::Utc;
use domain::messages::{Event, EventKind};
use domain::shop::Shop;
use spapi::reports::{MessageResult, MessageStatus};
use sqlx::PgConnection;
use store::api_log::{self, Entry, Level};
use store::feeds::{self as feeds_store, Submission};
use uuid::Uuid;

use crate::{ACTION, PollError, PollReport, Poller};

impl Poller {
    pub(crate) async fn apply_done(
        &self,
        shop: &Shop,
        sub: &Submission,
        result_document_id: Option<&str>,
        parsed: Option<(spapi::reports::ProcessingReport, &'static str)>,
        report: &mut PollReport,
    ) -> Result<(), PollError> {
        let mut tx = self.pool.begin().await?;
        if !feeds_store::lock_submitted(&mut tx, sub.id).await? {
            // Another poll (the scheduled one and the one a notification asked for) applied it.
            return Ok(());
        }
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
        let mut shipments: std::collections::BTreeMap<uuid::Uuid, Option<String>> =
            std::collections::BTreeMap::new();
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
                // An instruction sent as several packages (several messages) is shipped when
                // every one was accepted, failed with the first refusal otherwise: applied once
                // per instruction after the loop.
                let failure = (!success).then(|| {
                    format!(
                        "Amazon refused the shipment{}: {}",
                        code.as_deref()
                            .map(|c| format!(" ({c})"))
                            .unwrap_or_default(),
                        amazon_text.as_deref().unwrap_or("no message")
                    )
                });
                let seen = shipments.entry(instruction).or_insert(None);
                if seen.is_none() {
                    *seen = failure;
                }
            }
            let (level, text) = match r.status {
                MessageStatus::Success => (
                    Level::Info,
                    if m.instruction_id.is_some() && is_acknowledgement(sub) {
                        "the buyer's cancellation was accepted by Amazon: the order is cancelled"
                            .to_owned()
                    } else if let (Some(_), Some(n)) = (m.instruction_id, m.package_no) {
                        format!("package {n} confirmed by Amazon")
                    } else if m.instruction_id.is_some() {
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
        for (instruction, failure) in &shipments {
            instruction_result(&mut tx, sub, *instruction, failure.as_deref()).await?;
        }
        if !inventory.is_empty() {
            report.inventory +=
                store::inventory::apply_listing_results(&mut tx, sub.id, &inventory, ACTION)
                    .await?;
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
    pub(crate) async fn apply_failed(
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
        if !feeds_store::lock_submitted(&mut tx, sub.id).await? {
            // Another poll (the scheduled one and the one a notification asked for) applied it.
            return Ok(());
        }
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
                instruction_result(&mut tx, sub, instruction, Some(reason)).await?;
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
            report.inventory +=
                store::inventory::apply_listing_results(&mut tx, sub.id, &inventory, ACTION)
                    .await?;
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

/// Whether `sub` carried accepted buyer cancellations (the order acknowledgement feed) rather
/// than shipments.
fn is_acknowledgement(sub: &Submission) -> bool {
    sub.feed_type == spapi::acknowledgement_feed::POST_ORDER_ACKNOWLEDGEMENT_DATA
}

/// Amazon's result for one instruction of `sub`: its shipment (出荷済み or failed), or, for an
/// acknowledgement feed, its cancellation told to Amazon (done or failed).
async fn instruction_result(
    tx: &mut sqlx::PgConnection,
    sub: &Submission,
    instruction: uuid::Uuid,
    failure: Option<&str>,
) -> Result<(), store::StoreError> {
    if is_acknowledgement(sub) {
        store::cancel_requests::apply_result(tx, instruction, failure).await
    } else {
        store::shipments::apply_feed_result(tx, sub.id, instruction, failure).await
    }
}

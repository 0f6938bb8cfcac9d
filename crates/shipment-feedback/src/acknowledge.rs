//! Accepted buyer cancellations told to Amazon (issue 21 item 1): the instructions an operator
//! cancelled for their buyer (`ctl cancel-request accept`) go in one
//! `POST_ORDER_ACKNOWLEDGEMENT_DATA` feed per run (`StatusCode=Failure`,
//! `CancelReason=BuyerCanceled` on every item), recorded like a shipment feed (intent, upload,
//! `createFeed`, submitted) and applied by feed-poller. An acknowledgement Amazon did not take
//! stays pending and is sent again by the next run; sending one twice is harmless (Amazon keeps
//! the order cancelled).

use job_api::JobError;
use spapi::acknowledgement_feed::{
    BuyerCancellation, POST_ORDER_ACKNOWLEDGEMENT_DATA, build_cancellation_feed,
};
use store::api_log::{self, Entry, Level};
use store::feeds::{self as feeds_store, NewMessage};

use crate::job::{Feedback, Run};
use crate::{ACTION, RunReport};

impl Feedback {
    /// Sends the shop's pending acknowledgements, if any.
    pub(crate) async fn acknowledge(
        &self,
        run: &Run<'_>,
        api: &spapi::Shop,
        report: &mut RunReport,
    ) -> Result<(), JobError> {
        let shop = &run.shop.shop;
        let mut conn = self.deps.pool.acquire().await?;
        let pending = store::cancel_requests::pending_acks(&mut conn, shop.id).await?;
        if pending.is_empty() {
            return Ok(());
        }
        let built = build_cancellation_feed(
            &shop.seller_id,
            pending.into_iter().map(|p| {
                (
                    (p.instruction_id, p.amazon_order_id.clone()),
                    BuyerCancellation {
                        amazon_order_id: p.amazon_order_id,
                        order_item_ids: p.order_item_ids,
                    },
                )
            }),
        );
        for r in &built.rejected {
            let (id, order) = &r.key;
            let msg = format!(
                "the buyer's cancellation cannot be sent to Amazon: {}",
                r.problems.join("; ")
            );
            store::cancel_requests::apply_result(&mut conn, *id, Some(&msg)).await?;
            api_log::write(
                &mut conn,
                &Entry {
                    run_id: Some(run.run_id),
                    amazon_order_id: Some(order),
                    code: Some("cancel_ack_invalid"),
                    ..Entry::new(Some(shop.id), ACTION, Level::Error, &msg)
                },
            )
            .await?;
        }
        let Some(xml) = built.xml else {
            return Ok(());
        };
        let marketplaces: Vec<String> = shop
            .marketplaces
            .iter()
            .map(|m| m.id().to_owned())
            .collect();
        drop(conn);
        let messages: Vec<NewMessage> = built
            .messages
            .iter()
            .map(|m| NewMessage {
                message_id: m.message_id as i64,
                instruction_id: Some(m.key.0),
                amazon_order_id: Some(m.amazon_order_id.clone()),
                ..Default::default()
            })
            .collect();
        let (submission, spec, mut conn) = self
            .intend_and_upload(
                run,
                api,
                POST_ORDER_ACKNOWLEDGEMENT_DATA,
                marketplaces,
                xml,
                &messages,
            )
            .await?;
        let created = match api.create_feed(&spec).await {
            Ok(c) => c,
            Err(e) => {
                // Not taken (or not known to be): the acknowledgements stay pending and go again.
                feeds_store::mark_not_sent(&mut conn, submission, &format!("createFeed: {e}"))
                    .await?;
                return Err(JobError::api("createFeed", e));
            }
        };
        drop(conn);
        let mut tx = self.deps.pool.begin().await?;
        let next_poll =
            feeds_store::first_poll_at(&mut tx, shop.id, self.settings.first_poll_delay).await?;
        feeds_store::mark_submitted(&mut tx, submission, &created.feed_id, next_poll).await?;
        let sent = store::cancel_requests::mark_sent(&mut tx, submission).await?;
        let message = format!(
            "{sent} accepted buyer cancellation(s) sent to Amazon in feed {} (POST_ORDER_ACKNOWLEDGEMENT_DATA)",
            created.feed_id
        );
        api_log::write(
            &mut tx,
            &Entry {
                run_id: Some(run.run_id),
                code: Some("cancel_ack_submitted"),
                details: Some(serde_json::json!({"feed_submission_id": submission, "feed_id": created.feed_id})),
                ..Entry::new(Some(shop.id), ACTION, Level::Info, &message)
            },
        )
        .await?;
        tx.commit().await?;
        report.acknowledged += sent as usize;
        report.feed_submission_ids.push(submission);
        Ok(())
    }
}

//! notification-listener: Amazon's notifications, delivered to an SQS queue, turned into the
//! connector's work (issue 19).
//!
//! * `ORDER_CHANGE` (payment, cancellation, buyer cancellation request, …): the order goes to
//!   status-sync as `CommandParams::StatusSyncOrders` — status-sync fetches it with `getOrder`
//!   and applies the seed's rules, importing it if nobody has yet. The orders of one receive
//!   are grouped per shop (up to 100 ids a command), so a burst costs one run, not one per
//!   order.
//! * `FEED_PROCESSING_FINISHED`: feed-poller polls that feed now (`CommandParams::FeedPoll`),
//!   instead of waiting for its next scheduled poll.
//!
//! Delivery is at least once and in no order: every notification is recorded by its
//! `NotificationId` (`store::notifications`) in the same transaction that writes its commands
//! to the outbox, so a duplicate is acted on once; an SQS message is deleted only after that
//! transaction committed (a listener killed in between receives it again, finds it recorded and
//! deletes it). Out-of-order delivery is harmless: status-sync reads the order's current state
//! from Amazon, not the notification's. A notification that cannot be read (poison) is recorded
//! with the reason, sent to the dead-letter queue when one is configured (with the reason as a
//! message attribute), and deleted; one for a seller, marketplace or feed the connector does
//! not serve is recorded as ignored.
//!
//! Not done yet (issue 19): the admin server (probes, metrics), subscribing shops from ctl and
//! the console, the attention entry when notifications stop, status-sync's sweep at a low
//! frequency. (An `orders` run that finds the lease held is tried again later by the runner.)

use std::collections::BTreeMap;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageAttributeValue};
use chrono::{DateTime, Utc};
use domain::marketplace::Marketplace;
use domain::messages::{Action, Command, CommandParams, MAX_ANNOUNCED_ORDERS};
use serde_json::Value;
use sqlx::PgPool;
use store::feeds as feeds_store;
use store::notifications::{self, Outcome, Received};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub mod admin;
mod program;
pub use program::{ENVIRONMENT, main_from_env};

/// Who the commands are from (the ledger's `requested_by`).
pub const REQUESTED_BY: &str = "notification";

/// Typed errors of the listener.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("SQS {operation}: {message}")]
    Sqs {
        operation: &'static str,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// Where and how to listen.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The SQS queue Amazon delivers to (the destination's queue).
    pub queue_url: String,
    /// Where poison notifications go, with the reason (optional).
    pub dead_letter_queue_url: Option<String>,
    /// Long-poll wait, 0-20 s.
    pub wait_seconds: i32,
    /// Messages per receive, 1-10.
    pub max_messages: i32,
    /// How long a received message stays invisible to other listeners, seconds.
    pub visibility_timeout: i32,
}

/// A notification as the listener reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    OrderChange {
        id: String,
        seller_id: String,
        marketplace_id: String,
        order_id: String,
        event_time: Option<DateTime<Utc>>,
        /// `Summary.OrderStatus` (`Unshipped`, `Canceled`, `Shipped`, …), when given.
        order_status: Option<String>,
        /// `OrderChangeType` (`OrderStatusChange`, `BuyerRequestedChange`, …), when given.
        change_type: Option<String>,
        /// `Summary.PurchaseDate`, when given.
        purchase_date: Option<DateTime<Utc>>,
    },
    FeedFinished {
        id: String,
        feed_id: String,
        event_time: Option<DateTime<Utc>>,
    },
    /// A type the connector does not act on.
    Other {
        id: String,
        kind: String,
        event_time: Option<DateTime<Utc>>,
    },
}

/// `obj[key]`, with the key in PascalCase or camelCase (ORDER_CHANGE uses the first, other
/// notification types the second).
fn field<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        let mut c = key.chars();
        let camel: String = c
            .next()
            .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
            .unwrap_or_default();
        obj.get(&camel)
    })
}

fn text(obj: &Value, key: &str) -> Option<String> {
    field(obj, key).and_then(Value::as_str).map(str::to_owned)
}

/// Reads a notification's body. The error says what is missing (a poison notification).
pub fn parse(body: &str) -> Result<Notification, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let kind = text(&v, "NotificationType").ok_or("no NotificationType")?;
    let meta = field(&v, "NotificationMetadata").ok_or("no NotificationMetadata")?;
    let id = text(meta, "NotificationId").ok_or("no NotificationMetadata.NotificationId")?;
    let event_time = text(&v, "EventTime").and_then(|t| t.parse().ok());
    let payload = field(&v, "Payload").ok_or("no Payload")?;
    match kind.as_str() {
        "ORDER_CHANGE" => {
            let n = field(payload, "OrderChangeNotification")
                .ok_or("no Payload.OrderChangeNotification")?;
            let order_id = text(n, "AmazonOrderId").ok_or("no AmazonOrderId")?;
            if !domain::order_id::is_amazon_order_id(&order_id) {
                return Err(format!(
                    "AmazonOrderId {order_id:?} is not an Amazon order id"
                ));
            }
            let summary = field(n, "Summary");
            Ok(Notification::OrderChange {
                id,
                seller_id: text(n, "SellerId").ok_or("no SellerId")?,
                marketplace_id: summary
                    .and_then(|s| text(s, "MarketplaceId"))
                    .ok_or("no Summary.MarketplaceId")?,
                order_id,
                event_time,
                order_status: summary.and_then(|s| text(s, "OrderStatus")),
                change_type: text(n, "OrderChangeType"),
                purchase_date: summary
                    .and_then(|s| text(s, "PurchaseDate"))
                    .and_then(|t| t.parse().ok()),
            })
        }
        "FEED_PROCESSING_FINISHED" => {
            let n = field(payload, "FeedProcessingFinishedNotification")
                .ok_or("no Payload.feedProcessingFinishedNotification")?;
            Ok(Notification::FeedFinished {
                id,
                feed_id: text(n, "FeedId").ok_or("no feedId")?,
                event_time,
            })
        }
        _ => Ok(Notification::Other {
            id,
            kind,
            event_time,
        }),
    }
}

/// What one receive did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Polled {
    pub received: usize,
    /// Notifications turned into commands.
    pub queued: usize,
    /// Commands written (orders grouped per shop).
    pub commands: usize,
    pub duplicates: usize,
    pub ignored: usize,
    pub poison: usize,
}

/// The environment variable of the listener's fail point (tests of the program only): with
/// `hold-after-commit`, the first receive that commits anything then stops before deleting its
/// messages from SQS and waits for ever (a test SIGKILLs it there).
pub const FAIL_POINT_ENV: &str = "LISTENER_FAIL_POINT";
/// The one value [`FAIL_POINT_ENV`] takes.
pub const HOLD_AFTER_COMMIT: &str = "hold-after-commit";

/// The listener: SQS in, outbox out.
pub struct Listener {
    pool: PgPool,
    sqs: aws_sdk_sqs::Client,
    topology: bus::Topology,
    settings: Settings,
    hold_after_commit: bool,
    stats: std::sync::Arc<admin::Stats>,
}

impl Listener {
    pub fn new(
        pool: PgPool,
        sqs: aws_sdk_sqs::Client,
        topology: bus::Topology,
        settings: Settings,
    ) -> Self {
        Self {
            pool,
            sqs,
            topology,
            settings,
            hold_after_commit: false,
            stats: {
                let stats = std::sync::Arc::<admin::Stats>::default();
                // Alive from the start; the first receive may take a whole long poll.
                stats
                    .beat
                    .store(admin::unix_now(), std::sync::atomic::Ordering::Relaxed);
                stats
            },
        }
    }

    /// What the receive loop reports (the admin server's probes and metrics).
    pub fn stats(&self) -> std::sync::Arc<admin::Stats> {
        self.stats.clone()
    }

    /// The fail point ([`FAIL_POINT_ENV`]): stop for ever after the first commit, before the
    /// SQS messages are deleted.
    #[must_use]
    pub fn hold_after_commit(mut self) -> Self {
        self.hold_after_commit = true;
        self
    }

    /// Receives and handles until `cancel`; an SQS or database failure is logged and retried
    /// after a pause (messages not deleted come back after their visibility timeout).
    pub async fn run(&self, cancel: CancellationToken) {
        while !cancel.is_cancelled() {
            tokio::select! {
                r = self.poll_once() => match r {
                    Ok(p) => {
                        self.stats.polled(&p);
                        if p.received > 0 {
                            tracing::info!(?p, "notifications handled");
                        }
                    }
                    Err(e) => {
                        self.stats.failed();
                        tracing::warn!(error = %e, "receiving notifications failed; trying again in 5 s");
                        tokio::select! {
                            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                            _ = cancel.cancelled() => {}
                        }
                    }
                },
                _ = cancel.cancelled() => {}
            }
        }
    }

    /// One long-poll receive: records every notification, writes the commands, commits, then
    /// deletes the messages from SQS.
    pub async fn poll_once(&self) -> Result<Polled, ListenError> {
        let s = &self.settings;
        let got = self
            .sqs
            .receive_message()
            .queue_url(&s.queue_url)
            .max_number_of_messages(s.max_messages)
            .wait_time_seconds(s.wait_seconds)
            .visibility_timeout(s.visibility_timeout)
            .send()
            .await
            .map_err(|e| ListenError::Sqs {
                operation: "ReceiveMessage",
                message: aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
            })?;
        let messages = got.messages.unwrap_or_default();
        let mut polled = Polled {
            received: messages.len(),
            ..Polled::default()
        };
        if messages.is_empty() {
            return Ok(polled);
        }
        let mut poison: Vec<(String, String)> = Vec::new();
        let mut tx = self.pool.begin().await?;
        // Orders per shop, then one command per shop (at most MAX_ANNOUNCED_ORDERS ids each).
        let mut orders: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
        let mut feeds: Vec<(Uuid, Uuid)> = Vec::new();
        for m in &messages {
            let body = m.body.as_deref().unwrap_or_default();
            let sqs_id = m.message_id.as_deref().unwrap_or("unknown");
            let (received, work) = match parse(body) {
                Err(reason) => {
                    poison.push((body.to_owned(), reason.clone()));
                    let id = format!("sqs:{sqs_id}");
                    let r = Received {
                        notification_id: &id,
                        notification_type: "unknown",
                        shop_id: None,
                        subject: None,
                        outcome: Outcome::Poison,
                        reason: Some(&reason),
                        event_time: None,
                    };
                    tracing::warn!(sqs_message_id = sqs_id, %reason, "poison notification");
                    if notifications::record(&mut tx, &r).await? {
                        polled.poison += 1;
                    } else {
                        polled.duplicates += 1;
                    }
                    continue;
                }
                Ok(n) => self.route(&mut tx, &n).await?,
            };
            if !notifications::record(&mut tx, &received.as_received()).await? {
                polled.duplicates += 1;
                continue;
            }
            match (received.outcome, work) {
                (Outcome::Queued, Some(Work::Order { shop_id, order_id })) => {
                    polled.queued += 1;
                    orders.entry(shop_id).or_default().push(order_id);
                }
                (
                    Outcome::Queued,
                    Some(Work::Feed {
                        shop_id,
                        submission,
                    }),
                ) => {
                    polled.queued += 1;
                    // Amazon says the result is there: due now, not at its scheduled poll.
                    feeds_store::announce_finished(&mut tx, submission).await?;
                    feeds.push((shop_id, submission));
                }
                _ => polled.ignored += 1,
            }
        }
        let now = Utc::now();
        for (shop_id, mut ids) in orders {
            ids.sort();
            ids.dedup();
            for chunk in ids.chunks(MAX_ANNOUNCED_ORDERS) {
                let cmd = Command::new(
                    shop_id,
                    Action::StatusSync,
                    CommandParams::StatusSyncOrders {
                        order_ids: chunk.to_vec(),
                    },
                    REQUESTED_BY,
                    now,
                );
                bus::outbox::enqueue(&mut tx, bus::OutboxMessage::command(&self.topology, &cmd))
                    .await?;
                polled.commands += 1;
            }
        }
        for (shop_id, submission) in feeds {
            let cmd = Command::new(
                shop_id,
                Action::FeedPoller,
                CommandParams::FeedPoll {
                    feed_submission_id: Some(submission),
                },
                REQUESTED_BY,
                now,
            );
            bus::outbox::enqueue(&mut tx, bus::OutboxMessage::command(&self.topology, &cmd))
                .await?;
            polled.commands += 1;
        }
        tx.commit().await?;
        if self.hold_after_commit {
            tracing::warn!(
                received = messages.len(),
                "fail point {HOLD_AFTER_COMMIT}: committed, holding before deleting from SQS"
            );
            std::future::pending::<()>().await;
        }
        if let Some(dlq) = &s.dead_letter_queue_url {
            for (body, reason) in &poison {
                let reason_attr = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(reason)
                    .build()
                    .map_err(|e| ListenError::Sqs {
                        operation: "SendMessage",
                        message: e.to_string(),
                    })?;
                self.sqs
                    .send_message()
                    .queue_url(dlq)
                    .message_body(if body.is_empty() { "(empty)" } else { body })
                    .message_attributes("reason", reason_attr)
                    .send()
                    .await
                    .map_err(|e| ListenError::Sqs {
                        operation: "SendMessage (dead letters)",
                        message: aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
                    })?;
            }
        }
        let entries: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .set_receipt_handle(m.receipt_handle.clone())
                    .build()
                    .ok()
            })
            .collect();
        if !entries.is_empty() {
            self.sqs
                .delete_message_batch()
                .queue_url(&s.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| ListenError::Sqs {
                    operation: "DeleteMessageBatch",
                    message: aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
                })?;
        }
        Ok(polled)
    }

    /// Which shop and which work a notification means.
    async fn route(
        &self,
        conn: &mut sqlx::PgConnection,
        n: &Notification,
    ) -> Result<(Record, Option<Work>), ListenError> {
        Ok(match n {
            Notification::OrderChange {
                id,
                seller_id,
                marketplace_id,
                order_id,
                event_time,
                order_status,
                change_type,
                purchase_date,
            } => {
                let code = Marketplace::ALL
                    .iter()
                    .find(|m| m.id() == marketplace_id)
                    .map(|m| m.code());
                let shop = match code {
                    Some(code) => notifications::shop_for(conn, seller_id, code).await?,
                    None => None,
                };
                let mut r = Record::new(id, "ORDER_CHANGE", Some(order_id), *event_time);
                let requested = change_type.as_deref() == Some("BuyerRequestedChange");
                let shipped = order_status.as_deref() == Some("Shipped") && !requested;
                let new = !requested
                    && matches!(order_status.as_deref(), Some("Pending" | "Unshipped"))
                    && purchase_date.is_some_and(|p| {
                        event_time.unwrap_or_else(Utc::now) - p
                            <= domain::notifications::NEW_ORDER_NOTICE
                    });
                // The instruction's status, looked up once for the two rules that need it.
                let here = match shop {
                    Some(shop_id) if new || shipped => {
                        instruction_status(conn, shop_id, order_id).await?
                    }
                    _ => None,
                };
                match shop {
                    Some(shop_id) if new && here.is_none() => {
                        r.shop_id = Some(shop_id);
                        r.outcome = Outcome::Ignored;
                        r.reason = Some(format!(
                            "order {order_id} is a new order: order-ingest's new-orders poll \
                             imports it (every 5 minutes while notifications are on), so no \
                             getOrder is spent on it"
                        ));
                        (r, None)
                    }
                    Some(shop_id) if shipped && here.as_deref() == Some("shipped") => {
                        r.shop_id = Some(shop_id);
                        r.outcome = Outcome::Ignored;
                        r.reason = Some(format!(
                            "order {order_id} is shipped here and on Amazon (the connector's own \
                             shipment confirmation): nothing for status-sync to apply"
                        ));
                        (r, None)
                    }
                    Some(shop_id) => {
                        r.shop_id = Some(shop_id);
                        (
                            r,
                            Some(Work::Order {
                                shop_id,
                                order_id: order_id.clone(),
                            }),
                        )
                    }
                    None => {
                        r.outcome = Outcome::Ignored;
                        r.reason = Some(format!(
                            "no active shop of seller {seller_id} on marketplace {marketplace_id}"
                        ));
                        (r, None)
                    }
                }
            }
            Notification::FeedFinished {
                id,
                feed_id,
                event_time,
            } => {
                let mut r = Record::new(id, "FEED_PROCESSING_FINISHED", Some(feed_id), *event_time);
                match notifications::feed(conn, feed_id).await? {
                    Some((submission, shop_id)) => {
                        r.shop_id = Some(shop_id);
                        (
                            r,
                            Some(Work::Feed {
                                shop_id,
                                submission,
                            }),
                        )
                    }
                    None => {
                        r.outcome = Outcome::Ignored;
                        r.reason = Some(format!("feed {feed_id} was not sent by the connector"));
                        (r, None)
                    }
                }
            }
            Notification::Other {
                id,
                kind,
                event_time,
            } => {
                let mut r = Record::new(id, kind, None, *event_time);
                r.outcome = Outcome::Ignored;
                r.reason = Some(format!("{kind} is not a type the connector acts on"));
                (r, None)
            }
        })
    }
}

/// The status of the shop's instruction for `order_id`, if it has one. Two notifications are
/// decided by it without a `getOrder`: an Amazon `Shipped` for an instruction shipped here (the
/// connector's own confirmation coming back: status-sync's rules leave a shipped instruction
/// alone unless Amazon cancels) and a new order with no instruction yet (order-ingest's
/// new-orders poll imports it).
async fn instruction_status(
    conn: &mut sqlx::PgConnection,
    shop_id: Uuid,
    order_id: &str,
) -> Result<Option<String>, ListenError> {
    let instruction = store::instructions::by_order(conn, shop_id, order_id).await?;
    Ok(instruction.map(|i| i.status))
}

/// The work a notification asks for.
enum Work {
    Order { shop_id: Uuid, order_id: String },
    Feed { shop_id: Uuid, submission: Uuid },
}

/// A notification's record, owned while it is routed.
struct Record {
    id: String,
    kind: String,
    shop_id: Option<Uuid>,
    subject: Option<String>,
    outcome: Outcome,
    reason: Option<String>,
    event_time: Option<DateTime<Utc>>,
}

impl Record {
    fn new(id: &str, kind: &str, subject: Option<&str>, event_time: Option<DateTime<Utc>>) -> Self {
        Self {
            id: id.to_owned(),
            kind: kind.to_owned(),
            shop_id: None,
            subject: subject.map(str::to_owned),
            outcome: Outcome::Queued,
            reason: None,
            event_time,
        }
    }

    fn as_received(&self) -> Received<'_> {
        Received {
            notification_id: &self.id,
            notification_type: &self.kind,
            shop_id: self.shop_id,
            subject: self.subject.as_deref(),
            outcome: self.outcome,
            reason: self.reason.as_deref(),
            event_time: self.event_time,
        }
    }
}

/// An SQS client for `endpoint` (moto in tests and the demo; `None`: AWS's own endpoint for
/// `region`), with the given static credentials.
pub fn sqs_client(
    region: &str,
    endpoint: Option<&str>,
    access_key_id: &str,
    secret_access_key: &str,
) -> aws_sdk_sqs::Client {
    let creds = aws_sdk_sqs::config::Credentials::new(
        access_key_id,
        secret_access_key,
        None,
        None,
        "connector",
    );
    let mut b = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new(region.to_owned()))
        .credentials_provider(creds);
    if let Some(e) = endpoint {
        b = b.endpoint_url(e);
    }
    aws_sdk_sqs::Client::from_conf(b.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_order_change_and_feed_finished_and_refuses_poison() {
        let order = r#"{"NotificationVersion":"1.0","NotificationType":"ORDER_CHANGE","PayloadVersion":"1.0",
            "EventTime":"2026-12-02T01:02:03Z","Payload":{"OrderChangeNotification":{"NotificationLevel":"OrderLevel",
            "SellerId":"A1SIMSELLER0001","AmazonOrderId":"503-1234567-1234567","OrderChangeType":"OrderStatusChange",
            "Summary":{"MarketplaceId":"A1VC38T7YXB528","OrderStatus":"Unshipped","PurchaseDate":"2026-12-01T23:00:00Z"}}},
            "NotificationMetadata":{"ApplicationId":"app","SubscriptionId":"sub","PublishTime":"2026-12-02T01:02:04Z",
            "NotificationId":"n-1"}}"#;
        assert_eq!(
            parse(order).unwrap(),
            Notification::OrderChange {
                id: "n-1".into(),
                seller_id: "A1SIMSELLER0001".into(),
                marketplace_id: "A1VC38T7YXB528".into(),
                order_id: "503-1234567-1234567".into(),
                event_time: Some("2026-12-02T01:02:03Z".parse().unwrap()),
                order_status: Some("Unshipped".into()),
                change_type: Some("OrderStatusChange".into()),
                purchase_date: Some("2026-12-01T23:00:00Z".parse().unwrap()),
            }
        );
        let feed = r#"{"notificationVersion":"2020-09-04","notificationType":"FEED_PROCESSING_FINISHED",
            "payloadVersion":"2020-09-04","eventTime":"2026-12-02T01:02:03Z",
            "payload":{"feedProcessingFinishedNotification":{"sellerId":"A1","feedId":"5334","feedType":"JSON_LISTINGS_FEED","processingStatus":"DONE"}},
            "notificationMetadata":{"applicationId":"app","subscriptionId":"s","publishTime":"2026-12-02T01:02:04Z","notificationId":"n-2"}}"#;
        assert!(
            matches!(parse(feed).unwrap(), Notification::FeedFinished { feed_id, .. } if feed_id == "5334")
        );
        assert!(parse("not json").unwrap_err().contains("not JSON"));
        assert!(parse("{}").unwrap_err().contains("NotificationType"));
        let bad_id = order.replace("503-1234567-1234567", "<script>");
        assert!(
            parse(&bad_id)
                .unwrap_err()
                .contains("not an Amazon order id")
        );
    }
}

//! Dead-letter queue tooling: look at dead-lettered messages and send them back.

use lapin::options::{BasicAckOptions, BasicGetOptions, BasicRejectOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Connection};
use serde_json::Value;
use uuid::Uuid;

use crate::BusError;
use crate::headers::{self, Headers};
use crate::publisher::{DEFAULT_CONFIRM_TIMEOUT, confirmed_publish};
use crate::topology::{dlq_of, name_of};

/// A message in a dead-letter queue.
#[derive(Debug, Clone, PartialEq)]
pub struct DlqMessage {
    /// The AMQP `message_id` (`None` when missing or not a UUID — one reason to be here).
    pub message_id: Option<Uuid>,
    /// The message_id property as it was, if any.
    pub raw_message_id: Option<String>,
    /// Routing key the message had before it was dead-lettered.
    pub original_routing_key: String,
    /// Exchange it was originally published to.
    pub original_exchange: String,
    /// Why it was dead-lettered first: `rejected`, `delivery_limit`, `expired`, `maxlen`.
    pub reason: Option<String>,
    /// All headers (`x-death`, `x-first-death-*`, `traceparent`, ...).
    pub headers: Headers,
    /// The body as received.
    pub payload: Vec<u8>,
}

impl DlqMessage {
    /// The body parsed as JSON, if it is JSON.
    #[must_use]
    pub fn payload_json(&self) -> Option<Value> {
        serde_json::from_slice(&self.payload).ok()
    }
}

/// What [`dlq_replay`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Messages republished to the work queue and removed from the DLQ.
    pub replayed: usize,
    /// Messages left in the DLQ because the republish was not confirmed.
    pub failed: usize,
}

/// Returns up to `limit` messages of the DLQ of work queue `queue` (`<queue>.dlq`) without
/// removing them: they are fetched unacknowledged on a private channel, which is then closed so
/// the broker puts them back.
pub async fn dlq_peek(
    conn: &Connection,
    queue: &str,
    limit: usize,
) -> Result<Vec<DlqMessage>, BusError> {
    let dlq = dlq_of(queue);
    let channel = conn.create_channel().await?;
    let mut messages = Vec::new();
    while messages.len() < limit {
        let Some(got) = channel
            .basic_get(name_of("queue", &dlq)?, BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        messages.push(describe(
            &got.delivery.properties,
            &got.delivery.routing_key,
            &got.delivery.exchange,
            &got.delivery.data,
        ));
    }
    channel.close(200, "OK".into()).await?;
    Ok(messages)
}

/// Moves up to `limit` messages from the DLQ of `queue` back to `queue`, one at a time:
/// republish through the default exchange straight to the queue (confirm + mandatory), then
/// acknowledge the DLQ copy. A crash in between can leave a duplicate, which the consumer's duplicate check (the run
/// ledger for the services) absorbs.
///
/// The replayed message keeps its `message_id`, body and headers (minus `x-delivery-count`, so
/// it gets a fresh delivery budget) and gains `x-original-routing-key`, which the consumer driver
/// reports as the routing key. Stops at the first failed republish, leaving that message in the
/// DLQ. Fix the cause before replaying: a message that fails again is dead-lettered again.
pub async fn dlq_replay(
    conn: &Connection,
    queue: &str,
    limit: usize,
) -> Result<ReplayStats, BusError> {
    let dlq = dlq_of(queue);
    let channel = conn.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut stats = ReplayStats::default();
    while stats.replayed < limit {
        let Some(got) = channel
            .basic_get(name_of("queue", &dlq)?, BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        let delivery = got.delivery;
        let described = describe(
            &delivery.properties,
            &delivery.routing_key,
            &delivery.exchange,
            &delivery.data,
        );
        let properties = replay_properties(&delivery.properties, &described.original_routing_key);
        let published = confirmed_publish(
            &channel,
            "",
            queue,
            &delivery.data,
            properties,
            DEFAULT_CONFIRM_TIMEOUT,
        )
        .await;
        match published {
            Ok(()) => {
                delivery.acker.ack(BasicAckOptions::default()).await?;
                stats.replayed += 1;
                tracing::info!(%queue, message_id = ?described.raw_message_id, "replayed dead-lettered message");
            }
            Err(err) => {
                tracing::error!(%queue, message_id = ?described.raw_message_id, error = %err, "replay publish failed; message stays in the DLQ");
                let _ = delivery
                    .acker
                    .reject(BasicRejectOptions { requeue: true })
                    .await;
                stats.failed += 1;
                break;
            }
        }
    }
    if channel.status().connected() {
        channel.close(200, "OK".into()).await?;
    }
    Ok(stats)
}

fn replay_properties(original: &BasicProperties, original_routing_key: &str) -> BasicProperties {
    let mut table = FieldTable::default();
    if let Some(headers) = original.headers() {
        for (key, value) in headers {
            if key.as_str() != headers::DELIVERY_COUNT {
                table.insert(key.clone(), value.clone());
            }
        }
    }
    if !table.contains_key(headers::ORIGINAL_ROUTING_KEY) {
        table.insert(
            headers::ORIGINAL_ROUTING_KEY.into(),
            AMQPValue::LongString(LongString::from(original_routing_key)),
        );
    }
    original.clone().with_headers(table)
}

fn describe(
    properties: &BasicProperties,
    routing_key: &lapin::types::ShortString,
    exchange: &lapin::types::ShortString,
    data: &[u8],
) -> DlqMessage {
    let headers = properties
        .headers()
        .as_ref()
        .map(headers::from_field_table)
        .unwrap_or_default();
    let first_death = headers
        .get("x-death")
        .and_then(Value::as_array)
        .and_then(|deaths| deaths.last())
        .cloned()
        .unwrap_or(Value::Null);
    let original_routing_key = headers
        .get(headers::ORIGINAL_ROUTING_KEY)
        .and_then(Value::as_str)
        .or_else(|| {
            first_death
                .get("routing-keys")
                .and_then(Value::as_array)
                .and_then(|keys| keys.first())
                .and_then(Value::as_str)
        })
        .unwrap_or(routing_key.as_str())
        .to_owned();
    let original_exchange = first_death
        .get("exchange")
        .and_then(Value::as_str)
        .or_else(|| {
            headers
                .get("x-first-death-exchange")
                .and_then(Value::as_str)
        })
        .unwrap_or(exchange.as_str())
        .to_owned();
    let reason = headers
        .get("x-first-death-reason")
        .and_then(Value::as_str)
        .or_else(|| first_death.get("reason").and_then(Value::as_str))
        .map(str::to_owned);
    let raw_message_id = properties
        .message_id()
        .as_ref()
        .map(|id| id.as_str().to_owned());
    DlqMessage {
        message_id: raw_message_id
            .as_deref()
            .and_then(|id| Uuid::parse_str(id).ok()),
        raw_message_id,
        original_routing_key,
        original_exchange,
        reason,
        headers,
        payload: data.to_vec(),
    }
}

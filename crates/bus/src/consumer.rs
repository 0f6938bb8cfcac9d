//! Consumer driver: decode deliveries, run a plain async handler, ack/retry/dead-letter.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::FieldTable;
use lapin::{Acker, Connection};
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use uuid::Uuid;

use crate::headers::{self, Headers};
use crate::topology::name_of;
use crate::{BusError, HandlerError};

/// A decoded message as a handler sees it (no AMQP types).
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// The AMQP `message_id` (the outbox row id); the inbox key.
    pub message_id: Uuid,
    /// Exchange the message was published to (`""` for a DLQ replay).
    pub exchange: String,
    /// Routing key it was published with (the original one for a DLQ replay).
    pub routing_key: String,
    /// The JSON body.
    pub payload: serde_json::Value,
    /// All headers, including `traceparent`, `x-delivery-count`, `x-death`.
    pub headers: Headers,
    /// The broker's redelivery hint (the message was delivered before, maybe processed).
    pub redelivered: bool,
    /// How many times the message was returned to the queue before (`x-delivery-count`,
    /// 0 on the first delivery).
    pub delivery_count: u32,
}

impl Incoming {
    /// A message as a first delivery would look; for unit tests of handlers.
    pub fn new(
        message_id: Uuid,
        routing_key: impl Into<String>,
        payload: serde_json::Value,
    ) -> Self {
        Self {
            message_id,
            exchange: String::new(),
            routing_key: routing_key.into(),
            payload,
            headers: Headers::new(),
            redelivered: false,
            delivery_count: 0,
        }
    }

    /// Deserializes the payload; a payload that does not fit `T` can never succeed, so the
    /// error is [`HandlerError::Reject`] (dead-letter).
    pub fn payload_as<T: DeserializeOwned>(&self) -> Result<T, HandlerError> {
        T::deserialize(&self.payload)
            .map_err(|err| HandlerError::Reject(format!("payload does not decode: {err}")))
    }
}

/// A message handler: a plain async function of the decoded message.
///
/// `Ok(())` acknowledges the message; see [`HandlerError`] for the error classes. A panic is
/// treated as [`HandlerError::Retry`]. Implemented for closures
/// `Fn(Incoming) -> impl Future<Output = Result<(), HandlerError>>`; for effects in Postgres use
/// [`crate::WithInbox`].
pub trait Handler: Send + Sync + 'static {
    /// Handles one message.
    fn handle(&self, msg: Incoming) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

impl<F, Fut> Handler for F
where
    F: Fn(Incoming) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send,
{
    fn handle(&self, msg: Incoming) -> impl Future<Output = Result<(), HandlerError>> + Send {
        self(msg)
    }
}

/// Consumes `queue` until `cancel` fires, running `handler` for each message, at most
/// `prefetch` at a time (`basic_qos(prefetch)`; keep it small, 1–10).
///
/// * `Ok` → `basic.ack`; [`HandlerError::Retry`] or a panic → `basic.reject(requeue = true)`
///   after a short pause growing with `x-delivery-count` (250 ms doubling, at most 5 s; the
///   pause ends early on cancellation); each return counts toward `x-delivery-limit`, after
///   which the message is dead-lettered; [`HandlerError::Reject`], a missing
///   or non-UUID `message_id`, or a body that is not JSON → `basic.reject(requeue = false)`
///   (dead-lettered at once).
/// * The handler runs in a `bus.consume` span whose parent is the `traceparent` of the message.
/// * After a connection failure lapin recovers the channel and the consumer
///   ([`lapin::Channel::wait_for_recovery`]); acks of deliveries from before the failure are
///   not delivered and the broker redelivers those messages (handlers must be idempotent).
/// * Graceful shutdown when `cancel` fires: `basic.cancel`, wait for the handlers already
///   running to finish and acknowledge, then close the channel (messages prefetched but not
///   started go back to the queue). Close the connection with [`crate::close`] afterwards.
///
/// `consumer_name` names the consumer tag (`<consumer_name>.<uuid>`); use the same name as the
/// inbox key. Returns an error when the channel fails for good or the broker cancels the consumer.
pub async fn consume<H: Handler>(
    conn: &Connection,
    queue: &str,
    consumer_name: &str,
    handler: H,
    prefetch: u16,
    cancel: CancellationToken,
) -> Result<(), BusError> {
    let channel = conn.create_channel().await?;
    channel
        .basic_qos(prefetch.max(1), BasicQosOptions::default())
        .await?;
    let tag = format!("{consumer_name}.{}", Uuid::now_v7().simple());
    let mut consumer = channel
        .basic_consume(
            name_of("queue", queue)?,
            name_of("consumer tag", &tag)?,
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(queue, consumer_tag = %tag, prefetch, "consuming");

    let handler = Arc::new(handler);
    let queue_name: Arc<str> = Arc::from(queue);
    let mut tasks = JoinSet::new();
    let result = loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break Ok(()),
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(err) = joined {
                    tracing::error!(error = %err, "message task failed");
                }
            }
            next = consumer.next() => match next {
                Some(Ok(delivery)) => {
                    tasks.spawn(process(handler.clone(), queue_name.clone(), delivery, cancel.clone()));
                }
                Some(Err(err)) => {
                    tracing::warn!(queue, error = %err, "consumer stream error, waiting for recovery");
                    tokio::select! {
                        () = cancel.cancelled() => break Ok(()),
                        recovered = channel.wait_for_recovery(err) => match recovered {
                            Ok(()) => tracing::info!(queue, "consumer recovered"),
                            Err(err) => break Err(BusError::Amqp(err)),
                        },
                    }
                }
                None => break Err(BusError::ConsumerCancelled {
                    queue: queue.to_owned(),
                    consumer_tag: tag.clone(),
                }),
            },
        }
    };

    tracing::info!(queue, in_flight = tasks.len(), "stopping consumer");
    if channel.status().connected()
        && let Err(err) = channel
            .basic_cancel(
                name_of("consumer tag", &tag)?,
                BasicCancelOptions::default(),
            )
            .await
    {
        tracing::warn!(queue, error = %err, "basic.cancel failed");
    }
    drop(consumer);
    while let Some(joined) = tasks.join_next().await {
        if let Err(err) = joined {
            tracing::error!(error = %err, "message task failed");
        }
    }
    if channel.status().connected()
        && let Err(err) = channel.close(200, "OK".into()).await
    {
        tracing::warn!(queue, error = %err, "channel close failed");
    }
    tracing::info!(queue, "consumer stopped");
    result
}

/// Decodes the AMQP properties of a delivery; `Err` carries why it can never be handled.
fn decode(delivery: &Delivery) -> Result<Incoming, String> {
    let headers = delivery
        .properties
        .headers()
        .as_ref()
        .map(headers::from_field_table)
        .unwrap_or_default();
    let message_id = match delivery.properties.message_id() {
        None => return Err("message has no message_id".to_owned()),
        Some(id) => Uuid::parse_str(id.as_str())
            .map_err(|err| format!("message_id {:?} is not a UUID: {err}", id.as_str()))?,
    };
    let payload = serde_json::from_slice(&delivery.data)
        .map_err(|err| format!("payload of {message_id} is not JSON: {err}"))?;
    let routing_key = headers
        .get(headers::ORIGINAL_ROUTING_KEY)
        .and_then(serde_json::Value::as_str)
        .map_or_else(|| delivery.routing_key.as_str().to_owned(), str::to_owned);
    let delivery_count = headers
        .get(headers::DELIVERY_COUNT)
        .and_then(serde_json::Value::as_u64)
        .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX));
    Ok(Incoming {
        message_id,
        exchange: delivery.exchange.as_str().to_owned(),
        routing_key,
        payload,
        headers,
        redelivered: delivery.redelivered,
        delivery_count,
    })
}

enum Outcome {
    Ack,
    Requeue,
    DeadLetter,
}

/// Pause before returning a failed message to the queue, so that a short outage (a database
/// restart) does not burn through the delivery limit in milliseconds: 250 ms × 2^count, ≤ 5 s.
fn requeue_delay(delivery_count: u32) -> Duration {
    Duration::from_millis(250)
        .saturating_mul(2u32.saturating_pow(delivery_count.min(5)))
        .min(Duration::from_secs(5))
}

async fn process<H: Handler>(
    handler: Arc<H>,
    queue: Arc<str>,
    delivery: Delivery,
    cancel: CancellationToken,
) {
    let acker = delivery.acker.clone();
    let incoming = match decode(&delivery) {
        Ok(incoming) => incoming,
        Err(reason) => {
            tracing::error!(%queue, routing_key = %delivery.routing_key, %reason, "undecodable message, dead-lettering");
            settle(&acker, Outcome::DeadLetter, &queue, None).await;
            return;
        }
    };
    drop(delivery);

    let message_id = incoming.message_id;
    let delivery_count = incoming.delivery_count;
    let span = tracing::info_span!(
        "bus.consume",
        %queue,
        %message_id,
        routing_key = %incoming.routing_key,
        redelivered = incoming.redelivered,
        delivery_count = incoming.delivery_count,
    );
    let _ = span.set_parent(headers::extract_context(&incoming.headers));

    let outcome = async {
        match AssertUnwindSafe(handler.handle(incoming))
            .catch_unwind()
            .await
        {
            Ok(Ok(())) => Outcome::Ack,
            Ok(Err(HandlerError::Retry(reason))) => {
                tracing::warn!(%reason, "handler failed, message will be retried");
                Outcome::Requeue
            }
            Ok(Err(HandlerError::Reject(reason))) => {
                tracing::error!(%reason, "handler rejected message, dead-lettering");
                Outcome::DeadLetter
            }
            Err(_) => {
                tracing::error!("handler panicked, message will be retried");
                Outcome::Requeue
            }
        }
    }
    .instrument(span.clone())
    .await;
    if matches!(outcome, Outcome::Requeue) {
        tokio::select! {
            () = cancel.cancelled() => {}
            () = tokio::time::sleep(requeue_delay(delivery_count)) => {}
        }
    }
    settle(&acker, outcome, &queue, Some(message_id))
        .instrument(span)
        .await;
}

async fn settle(acker: &Acker, outcome: Outcome, queue: &str, message_id: Option<Uuid>) {
    let (what, result) = match outcome {
        Outcome::Ack => ("ack", acker.ack(BasicAckOptions::default()).await),
        Outcome::Requeue => (
            "reject(requeue)",
            acker.reject(BasicRejectOptions { requeue: true }).await,
        ),
        Outcome::DeadLetter => (
            "reject(dead-letter)",
            acker.reject(BasicRejectOptions { requeue: false }).await,
        ),
    };
    match result {
        Ok(true) => tracing::debug!(queue, ?message_id, what, "settled"),
        // lapin: the delivery belongs to a channel that was closed or recovered since; nothing
        // was sent and the broker will redeliver the message.
        Ok(false) => tracing::warn!(
            queue,
            ?message_id,
            what,
            "settlement not delivered (channel closed or recovered); broker will redeliver"
        ),
        Err(err) => {
            tracing::warn!(queue, ?message_id, what, error = %err, "settlement failed; broker will redeliver")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requeue_delay_grows_and_is_capped() {
        assert_eq!(requeue_delay(0), Duration::from_millis(250));
        assert_eq!(requeue_delay(1), Duration::from_millis(500));
        assert_eq!(requeue_delay(3), Duration::from_secs(2));
        assert_eq!(requeue_delay(50), Duration::from_secs(5));
    }

    #[test]
    fn payload_as_rejects_what_does_not_fit() {
        #[derive(serde::Deserialize, Debug)]
        struct Cmd {
            #[allow(dead_code)]
            shop_id: String,
        }
        let ok = Incoming::new(Uuid::now_v7(), "k", serde_json::json!({"shop_id": "acme"}));
        assert!(ok.payload_as::<Cmd>().is_ok());
        let bad = Incoming::new(Uuid::now_v7(), "k", serde_json::json!({"shop": 1}));
        assert!(matches!(
            bad.payload_as::<Cmd>(),
            Err(HandlerError::Reject(_))
        ));
    }
}

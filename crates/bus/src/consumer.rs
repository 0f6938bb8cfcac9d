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
    /// The AMQP `message_id` (the outbox row id; a command's own `message_id`).
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
/// `Fn(Incoming) -> impl Future<Output = Result<(), HandlerError>>`. The services' handlers are
/// `runtime::job::Runner`s (duplicates caught by the run ledger); [`crate::WithInbox`] is the
/// inbox alternative for single-transaction effects.
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
/// * A watch every [`WATCH_EVERY`] (see [`consume_with`]): when the connection has not been
///   usable for [`MAX_DOWN`] (lapin's recovery stuck), or is closed for good, it returns
///   [`BusError::ConnectionUnavailable`] (`runtime::serve` then connects afresh). When the queue holds ready messages
///   at two checks in a row while nothing is in flight here and nothing was delivered in
///   between, this consumer is no longer registered on the broker (seen after a RabbitMQ
///   restart: the connection recovers, the consumer does not). It then subscribes again on a
///   new channel. A consumer cancelled by the broker (its queue deleted) subscribes again at the
///   next watch.
///
/// `consumer_name` names the consumer tag (`<consumer_name>.<uuid>`); use the same name as the
/// inbox key. Returns an error when the channel fails for good, or when subscribing again keeps
/// failing for [`RESUBSCRIBE_ATTEMPTS`] watches in a row (the orchestrator restarts the process).
pub async fn consume<H: Handler>(
    conn: &Connection,
    queue: &str,
    consumer_name: &str,
    handler: H,
    prefetch: u16,
    cancel: CancellationToken,
) -> Result<(), BusError> {
    let options = ConsumeOptions {
        prefetch,
        ..ConsumeOptions::default()
    };
    consume_with(
        conn,
        queue,
        consumer_name,
        Arc::new(handler),
        options,
        cancel,
    )
    .await
}

/// How often [`consume`] checks that its consumer is still registered.
pub const WATCH_EVERY: Duration = Duration::from_secs(5);
/// Failed subscriptions in a row after which [`consume`] gives up.
pub const RESUBSCRIBE_ATTEMPTS: u32 = 12;

/// How long [`consume`] tolerates a connection that is not usable (lapin still recovering it)
/// before it returns [`BusError::ConnectionUnavailable`], so that the caller connects afresh.
pub const MAX_DOWN: Duration = Duration::from_secs(30);

/// Tuning of [`consume_with`].
#[derive(Debug, Clone, Copy)]
pub struct ConsumeOptions {
    /// `basic.qos` prefetch (at least 1).
    pub prefetch: u16,
    /// Interval of the registration watch.
    pub watch_every: Duration,
    /// Longest time the connection may stay unusable; see [`MAX_DOWN`].
    pub max_down: Duration,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        Self {
            prefetch: 2,
            watch_every: WATCH_EVERY,
            max_down: MAX_DOWN,
        }
    }
}

/// One `basic.consume` on its own channel.
struct Subscription {
    channel: lapin::Channel,
    consumer: lapin::Consumer,
    tag: String,
}

impl Subscription {
    async fn open(
        conn: &Connection,
        queue: &str,
        consumer_name: &str,
        prefetch: u16,
    ) -> Result<Self, BusError> {
        let channel = conn.create_channel().await?;
        channel
            .basic_qos(prefetch.max(1), BasicQosOptions::default())
            .await?;
        let tag = format!("{consumer_name}.{}", Uuid::now_v7().simple());
        let consumer = channel
            .basic_consume(
                name_of("queue", queue)?,
                name_of("consumer tag", &tag)?,
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tracing::info!(queue, consumer_tag = %tag, prefetch, "consuming");
        Ok(Self {
            channel,
            consumer,
            tag,
        })
    }

    /// `basic.cancel`: nothing new arrives; deliveries already here can still be acknowledged.
    async fn cancel(&self, queue: &str) {
        if !self.channel.status().connected() {
            return;
        }
        let cancelled = bounded("basic.cancel", async {
            let name = name_of("consumer tag", &self.tag)?;
            Ok(self
                .channel
                .basic_cancel(name, BasicCancelOptions::default())
                .await?)
        })
        .await;
        if let Err(err) = cancelled {
            tracing::warn!(queue, error = %err, "basic.cancel failed");
        }
    }

    /// Closes the channel: deliveries prefetched but not acknowledged go back to the queue.
    async fn close(self, queue: &str) {
        drop(self.consumer);
        if self.channel.status().connected()
            && let Err(err) = bounded("channel.close", async {
                Ok(self.channel.close(200, "OK".into()).await?)
            })
            .await
        {
            tracing::warn!(queue, error = %err, "channel close failed");
        }
    }
}

/// Longest wait for one broker operation of the watch or of the shutdown: a connection that
/// looks connected but no longer answers must not keep the consumer from noticing cancellation.
const BROKER_OP_TIMEOUT: Duration = Duration::from_secs(10);

async fn bounded<T>(
    what: &'static str,
    op: impl Future<Output = Result<T, BusError>>,
) -> Result<T, BusError> {
    tokio::time::timeout(BROKER_OP_TIMEOUT, op)
        .await
        .map_err(|_| BusError::BrokerTimeout {
            what,
            after: BROKER_OP_TIMEOUT,
        })?
}

/// The watch's judgement whether the broker still delivers to this consumer.
#[derive(Debug, Default)]
struct Registration {
    /// Something was delivered since the last watch.
    delivered: bool,
    /// The last watch saw ready messages while idle.
    backlog_seen: bool,
}

impl Registration {
    /// Whether this watch should count the queue's ready messages: only when idle (nothing in
    /// flight, so prefetch has room) and nothing arrived since the last watch.
    fn should_check(&self, in_flight: usize) -> bool {
        in_flight == 0 && !self.delivered
    }

    /// Ends a watch with the ready count it saw (`None` when it did not look): the consumer is
    /// lost when two watches in a row saw ready messages that were never delivered.
    fn lost(&mut self, ready: Option<u32>) -> bool {
        let backlog = ready.is_some_and(|n| n > 0);
        let lost = backlog && self.backlog_seen;
        self.backlog_seen = backlog && !lost;
        self.delivered = false;
        lost
    }
}

/// Ready messages in `queue` (a passive declare on a channel of its own: a failing one closes
/// its channel).
async fn ready_messages(conn: &Connection, queue: &str) -> Result<u32, BusError> {
    let channel = conn.create_channel().await?;
    let declared = channel
        .queue_declare(
            name_of("queue", queue)?,
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    if channel.status().connected() {
        let _ = channel.close(200, "OK".into()).await;
    }
    Ok(declared?.message_count())
}

/// [`consume`] with explicit tuning and a handler shared with the caller (who may consume
/// again with it on a new connection after an error).
pub async fn consume_with<H: Handler>(
    conn: &Connection,
    queue: &str,
    consumer_name: &str,
    handler: Arc<H>,
    options: ConsumeOptions,
    cancel: CancellationToken,
) -> Result<(), BusError> {
    let prefetch = options.prefetch;
    let mut sub = Some(Subscription::open(conn, queue, consumer_name, prefetch).await?);
    let mut down_since: Option<std::time::Instant> = None;
    let queue_name: Arc<str> = Arc::from(queue);
    let mut tasks = JoinSet::new();
    let mut watch = tokio::time::interval_at(
        tokio::time::Instant::now() + options.watch_every,
        options.watch_every,
    );
    watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut registration = Registration::default();
    // Failed subscriptions in a row.
    let mut failures = 0u32;
    let result = loop {
        let next = async {
            match sub.as_mut() {
                Some(s) => s.consumer.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => break Ok(()),
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(err) = joined {
                    tracing::error!(error = %err, "message task failed");
                }
            }
            next = next => match next {
                Some(Ok(delivery)) => {
                    registration.delivered = true;
                    tasks.spawn(process(handler.clone(), queue_name.clone(), delivery, cancel.clone()));
                }
                Some(Err(err)) => {
                    tracing::warn!(queue, error = %err, "consumer stream error, waiting for recovery");
                    let channel = sub.as_ref().map(|s| s.channel.clone());
                    if let Some(channel) = channel {
                        tokio::select! {
                            () = cancel.cancelled() => break Ok(()),
                            recovered = channel.wait_for_recovery(err) => match recovered {
                                Ok(()) => tracing::info!(queue, "consumer recovered"),
                                Err(err) => break Err(BusError::Amqp(err)),
                            },
                        }
                    }
                }
                None => {
                    // The broker cancelled the consumer (its queue was deleted, say): the next
                    // watch subscribes again, and keeps trying while the queue is missing.
                    if let Some(old) = sub.take() {
                        tracing::warn!(queue, consumer_tag = %old.tag, "consumer cancelled by the broker");
                        old.close(queue).await;
                    }
                }
            },
            _ = watch.tick() => {
                let status = conn.status();
                if !status.connected() {
                    // lapin is recovering the connection; judge once it is back, or give up
                    // when that takes too long (the caller connects afresh).
                    registration = Registration::default();
                    let since = *down_since.get_or_insert_with(std::time::Instant::now);
                    if status.closed() || status.errored() || since.elapsed() > options.max_down {
                        tracing::warn!(queue, down_for = ?since.elapsed(), "connection not usable; consumer gives up");
                        break Err(BusError::ConnectionUnavailable {
                            down_for: since.elapsed(),
                            state: format!("{status:?}"),
                        });
                    }
                    continue;
                }
                down_since = None;
                let ready = if sub.is_some() && registration.should_check(tasks.len()) {
                    bounded("queue.declare (passive)", ready_messages(conn, queue))
                        .await
                        .inspect_err(|err| tracing::warn!(queue, error = %err, "cannot check the queue"))
                        .ok()
                } else {
                    None
                };
                let stale = registration.lost(ready);
                if sub.is_some() && !stale {
                    continue;
                }
                if let Some(old) = sub.take() {
                    tracing::warn!(queue, consumer_tag = %old.tag,
                        "ready messages but no delivery: consumer no longer registered; subscribing again");
                    old.cancel(queue).await;
                    old.close(queue).await;
                }
                let opened = tokio::select! {
                    () = cancel.cancelled() => break Ok(()),
                    opened = bounded("basic.consume", Subscription::open(conn, queue, consumer_name, prefetch)) => opened,
                };
                match opened {
                    Ok(s) => {
                        sub = Some(s);
                        failures = 0;
                    }
                    Err(err) => {
                        failures += 1;
                        tracing::warn!(queue, error = %err, failures, "cannot subscribe again");
                        if failures >= RESUBSCRIBE_ATTEMPTS {
                            break Err(err);
                        }
                    }
                }
            }
        }
    };

    tracing::info!(queue, in_flight = tasks.len(), "stopping consumer");
    // basic.cancel first so that nothing new arrives while the in-flight handlers finish; the
    // channel stays open until they have acknowledged.
    if let Some(sub) = &sub {
        sub.cancel(queue).await;
    }
    while let Some(joined) = tasks.join_next().await {
        if let Err(err) = joined {
            tracing::error!(error = %err, "message task failed");
        }
    }
    if let Some(sub) = sub.take() {
        sub.close(queue).await;
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
    fn registration_is_lost_only_after_two_idle_watches_with_a_backlog() {
        let mut r = Registration::default();
        assert!(r.should_check(0));
        assert!(
            !r.lost(Some(3)),
            "one watch with a backlog may be a message in transit"
        );
        assert!(r.lost(Some(3)), "a second one without a delivery: lost");
        assert!(!r.lost(Some(3)), "judged afresh after subscribing again");

        let mut r = Registration::default();
        assert!(!r.lost(Some(1)));
        r.delivered = true;
        assert!(
            !r.should_check(0),
            "a delivery since the last watch: registered"
        );
        assert!(!r.lost(None));
        assert!(!r.lost(Some(1)), "the backlog must be seen twice again");

        let mut r = Registration::default();
        assert!(
            !r.should_check(1),
            "busy: prefetch may be full, the backlog proves nothing"
        );
        assert!(!r.lost(Some(0)));
        assert!(!r.lost(Some(0)), "an empty queue is never a lost consumer");
    }

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

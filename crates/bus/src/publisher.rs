//! Confirmed, mandatory, persistent publishing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use uuid::Uuid;

use crate::headers::{self, Headers};
use crate::{BusError, PublishError};

/// A message to publish: JSON payload, stable id, headers.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    /// Becomes the AMQP `message_id`; consumers deduplicate on it. Use a UUID v7 generated when
    /// the message is first created (the outbox row id), never a fresh one per attempt.
    pub message_id: Uuid,
    /// Exchange to publish to (see [`crate::Topology`] for the names).
    pub exchange: String,
    /// Routing key (a service name for commands, an event key for events).
    pub routing_key: String,
    /// JSON body (`content_type: application/json`).
    pub payload: serde_json::Value,
    /// Extra headers. A `traceparent` is added from the current span when missing.
    pub headers: Headers,
}

/// Content type of every message the bus publishes.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// How long to wait for a publisher confirm before giving up on a publish.
pub const DEFAULT_CONFIRM_TIMEOUT: Duration = Duration::from_secs(15);

/// Publishes with publisher confirms and `mandatory: true`, persistent (`delivery_mode = 2`),
/// with `message_id`, `content_type: application/json`, a timestamp and W3C trace headers.
///
/// `Ok(())` means the broker confirmed (`basic.ack`) and did not return the message. A `Nack`,
/// a returned message (312 NO_ROUTE), a confirm timeout or a channel/connection error is a
/// [`PublishError`].
///
/// The publisher keeps a few channels and never has more than **one unconfirmed publish per
/// channel**: lapin hands a `basic.return` to whichever confirm on the channel resolves next
/// (and resolves `multiple` acks in hash-map order), so pipelining mandatory publishes on one
/// channel could blame the wrong message for a NO_ROUTE. Concurrency comes from the channel pool
/// instead. A channel the broker closed (for example after a publish to a missing exchange,
/// 404) is reopened on the next publish; channels are recovered by lapin after a connection
/// failure.
///
/// Cheap to clone; clones share the channels.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Arc<Connection>,
    slots: Vec<tokio::sync::Mutex<Option<Channel>>>,
    next: AtomicUsize,
    confirm_timeout: Duration,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("channels", &self.inner.slots.len())
            .field("confirm_timeout", &self.inner.confirm_timeout)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// A publisher with 4 confirm channels and [`DEFAULT_CONFIRM_TIMEOUT`].
    pub async fn new(conn: Arc<Connection>) -> Result<Self, BusError> {
        Self::with_options(conn, 4, DEFAULT_CONFIRM_TIMEOUT).await
    }

    /// A publisher with `channels` confirm channels (at least 1), each carrying at most one
    /// unconfirmed message, and the given confirm timeout.
    pub async fn with_options(
        conn: Arc<Connection>,
        channels: usize,
        confirm_timeout: Duration,
    ) -> Result<Self, BusError> {
        let mut slots = Vec::with_capacity(channels.max(1));
        for _ in 0..channels.max(1) {
            slots.push(tokio::sync::Mutex::new(Some(
                open_confirm_channel(&conn).await?,
            )));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                conn,
                slots,
                next: AtomicUsize::new(0),
                confirm_timeout,
            }),
        })
    }

    /// Number of channels, i.e. how many publishes can be awaiting a confirm at once.
    #[must_use]
    pub fn channels(&self) -> usize {
        self.inner.slots.len()
    }

    /// The connection this publisher uses.
    #[must_use]
    pub fn connection(&self) -> &Arc<Connection> {
        &self.inner.conn
    }

    /// Publishes one JSON message and waits for its confirm. See [`Publisher`].
    pub async fn publish(&self, msg: &OutgoingMessage) -> Result<(), PublishError> {
        let mut headers = msg.headers.clone();
        headers::inject_current_context(&mut headers);
        let payload = serde_json::to_vec(&msg.payload)
            .map_err(|err| PublishError::Encode(err.to_string()))?;
        let properties = json_properties(msg.message_id, &headers)?;
        self.publish_bytes(&msg.exchange, &msg.routing_key, &payload, properties)
            .await
    }

    /// Publishes raw bytes with the given properties (which should include a `message_id`) and
    /// waits for the confirm. `mandatory` and persistence are enforced.
    pub async fn publish_bytes(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<(), PublishError> {
        let slot = self.acquire_slot();
        let mut guard = slot.lock().await;
        let channel = usable_channel(&self.inner.conn, &mut guard).await?;
        let result = confirmed_publish(
            &channel,
            exchange,
            routing_key,
            payload,
            properties,
            self.inner.confirm_timeout,
        )
        .await;
        if matches!(result, Err(PublishError::ConfirmTimeout(_))) {
            // A late confirm or return could be attributed to the next publish: drop the channel.
            if let Some(channel) = guard.take() {
                tokio::spawn(async move {
                    let _ = channel.close(200, "confirm timeout".into()).await;
                });
            }
        }
        result
    }

    /// Waits until the connection is up and every channel is usable (reopening channels the
    /// broker closed), at most `timeout`. Returns whether the publisher is ready.
    pub async fn wait_until_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.inner.conn.status().connected() && self.ensure_channels().await {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn ensure_channels(&self) -> bool {
        for slot in &self.inner.slots {
            let mut guard = slot.lock().await;
            match usable_channel(&self.inner.conn, &mut guard).await {
                Ok(channel) if channel.status().connected() => {}
                _ => return false,
            }
        }
        true
    }

    fn acquire_slot(&self) -> &tokio::sync::Mutex<Option<Channel>> {
        let slots = &self.inner.slots;
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed);
        // Prefer an idle channel; otherwise queue on the round-robin one.
        for i in 0..slots.len() {
            let slot = &slots[(start + i) % slots.len()];
            if let Ok(guard) = slot.try_lock() {
                drop(guard);
                return slot;
            }
        }
        &slots[start % slots.len()]
    }
}

/// Returns the slot's channel when it is open or being recovered by lapin; opens a fresh one
/// when the broker closed it (or it was dropped after a timeout).
async fn usable_channel(
    conn: &Connection,
    slot: &mut Option<Channel>,
) -> Result<Channel, PublishError> {
    if let Some(channel) = slot.as_ref() {
        let status = channel.status();
        if status.connected() || status.reconnecting() {
            return Ok(channel.clone());
        }
        tracing::info!(
            channel = channel.id(),
            "publisher channel closed, reopening"
        );
    }
    *slot = None;
    let channel = open_confirm_channel(conn).await.map_err(|err| match err {
        BusError::Amqp(err) => PublishError::Amqp(err),
        other => PublishError::Encode(other.to_string()),
    })?;
    *slot = Some(channel.clone());
    Ok(channel)
}

async fn open_confirm_channel(conn: &Connection) -> Result<Channel, BusError> {
    let channel = conn.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

/// The properties of a JSON message: persistent, content type, message id, timestamp, headers.
pub(crate) fn json_properties(
    message_id: Uuid,
    headers: &Headers,
) -> Result<BasicProperties, PublishError> {
    Ok(BasicProperties::default()
        .with_content_type(CONTENT_TYPE_JSON.into())
        .with_delivery_mode(2)
        .with_message_id(message_id.to_string().into())
        .with_timestamp(u64::try_from(chrono::Utc::now().timestamp()).unwrap_or_default())
        .with_headers(headers::to_field_table(headers)?))
}

/// Publishes one message `mandatory` + persistent on a confirm channel and waits for its confirm.
pub(crate) async fn confirmed_publish(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    payload: &[u8],
    properties: BasicProperties,
    confirm_timeout: Duration,
) -> Result<(), PublishError> {
    let message_id = properties
        .message_id()
        .as_ref()
        .map(|id| id.as_str().to_owned())
        .unwrap_or_default();
    let properties = properties.with_delivery_mode(2);
    let confirm = channel
        .basic_publish(
            headers::short("exchange", exchange)?,
            headers::short("routing key", routing_key)?,
            BasicPublishOptions {
                mandatory: true,
                immediate: false,
            },
            payload,
            properties,
        )
        .await?;
    let confirmation = tokio::time::timeout(confirm_timeout, confirm)
        .await
        .map_err(|_| PublishError::ConfirmTimeout(confirm_timeout))??;
    match confirmation {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
            let returned_id = returned
                .delivery
                .properties
                .message_id()
                .as_ref()
                .map(|id| id.as_str().to_owned())
                .unwrap_or_default();
            if returned_id != message_id {
                tracing::error!(%message_id, %returned_id, "returned message does not match the publish");
            }
            Err(PublishError::Unroutable {
                message_id,
                exchange: exchange.to_owned(),
                routing_key: routing_key.to_owned(),
                reply_code: returned.reply_code,
                reply_text: returned.reply_text.to_string(),
            })
        }
        Confirmation::Nack(None) => Err(PublishError::Nacked { message_id }),
        Confirmation::NotRequested => Err(PublishError::Encode(
            "channel is not in confirm mode".to_owned(),
        )),
    }
}

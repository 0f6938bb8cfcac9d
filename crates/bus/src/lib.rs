//! The message bus of the connector: RabbitMQ topology, a confirmed publisher, the
//! transactional outbox relay, and a consumer driver.
//!
//! * [`Topology`] declares the `commands` (direct) and `events` (topic) exchanges, one durable
//!   quorum queue per service with `x-delivery-limit` and at-least-once dead-lettering, and a
//!   `<queue>.dlq` per work queue.
//! * [`Publisher`] publishes with publisher confirms and `mandatory`; a nack or a returned
//!   message is an error.
//! * [`outbox::enqueue`] writes a message in the caller's transaction; [`Relay`] publishes due
//!   rows and marks them sent only after a confirm.
//! * [`consume`] runs a plain async [`Handler`] per message and maps its result to ack, retry
//!   (reject + requeue, bounded by the delivery limit) or dead-letter. [`WithInbox`] makes a
//!   database effect exactly-once with an inbox row; the services do not use it: their one
//!   duplicate check is the run ledger (`runtime::job`: a trigger whose run succeeded is not
//!   run again), and feed-poller's is its atomic claim of due feeds.
//! * W3C trace context travels in the `traceparent` header (see [`headers`]).
//!
//! Payloads are JSON values; the bus knows nothing of the domain.
//!
//! ```no_run
//! # async fn demo(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
//! use bus::{consume, connect, HandlerError, Incoming, Publisher, Relay, Topology};
//! use tokio_util::sync::CancellationToken;
//!
//! let conn = connect(bus::DEFAULT_AMQP_URL, "order-ingest@host").await?;
//! let topology = Topology::production();
//! let setup = conn.create_channel().await?;
//! let queue = topology.declare_service(&setup, "order-ingest", &[]).await?;
//!
//! let cancel = CancellationToken::new();
//! let relay = Relay::new(pool.clone(), Publisher::new(conn.clone()).await?);
//! tokio::spawn({ let cancel = cancel.clone(); async move { relay.run(cancel).await } });
//!
//! let handler = |msg: Incoming| async move {
//!     tracing::info!(id = %msg.message_id, "got it");
//!     Ok::<(), HandlerError>(())
//! };
//! consume(&conn, &queue, "order-ingest", handler, 4, cancel.clone()).await?;
//! bus::close(&conn).await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod connection;
mod consumer;
mod dlq;
mod error;
pub mod headers;
pub mod inbox;
pub mod outbox;
mod publisher;
mod topology;

pub use connection::{
    DEFAULT_AMQP_URL, RECONNECT_ATTEMPTS, RECONNECT_MAX_DELAY, RECONNECT_MIN_DELAY, close, connect,
    reconnect_schedule, shutdown_signal, watchdog,
};
pub use consumer::{
    ConsumeOptions, Handler, Incoming, MAX_DOWN, RESUBSCRIBE_ATTEMPTS, WATCH_EVERY, consume,
    consume_with,
};
pub use dlq::{DlqMessage, ReplayStats, dlq_peek, dlq_replay};
pub use error::{BusError, HandlerError, PublishError};
pub use headers::Headers;
pub use inbox::{TxHandler, WithInbox};
pub use outbox::{OutboxMessage, Relay, RelayConfig, RelayStats};
pub use publisher::{CONTENT_TYPE_JSON, DEFAULT_CONFIRM_TIMEOUT, OutgoingMessage, Publisher};
pub use topology::{DEFAULT_DELIVERY_LIMIT, Topology};

/// The AMQP client the bus is built on, for callers that need a channel or a connection type.
pub use lapin;

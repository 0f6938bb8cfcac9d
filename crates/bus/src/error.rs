//! Error types of the bus.

use std::time::Duration;

/// Errors returned by the bus's own operations (connecting, declaring topology, relaying,
/// consuming, DLQ tooling).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The AMQP client reported an error (connection, channel or protocol level).
    #[error("AMQP error: {0}")]
    Amqp(#[from] lapin::Error),
    /// A database statement failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// A publish was not confirmed by the broker.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// A name (exchange, queue, routing key, header key) is longer than AMQP's 255-byte limit.
    #[error("AMQP short string too long ({len} bytes): {what}")]
    NameTooLong {
        /// Which name was too long.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// The connection to the broker has been down for longer than allowed, or is closed for good.
    #[error("AMQP connection unavailable for {down_for:?} (state: {state})")]
    ConnectionUnavailable {
        /// How long the connection has not been usable.
        down_for: Duration,
        /// The connection state observed last.
        state: String,
    },
    /// The broker did not answer an operation in time (a half-open connection).
    #[error("RabbitMQ did not answer {what} within {after:?}")]
    BrokerTimeout {
        /// The operation.
        what: &'static str,
        /// How long it waited.
        after: Duration,
    },
}

/// Why a single publish was not accepted by the broker.
///
/// Only `Ok(())` from [`crate::Publisher::publish`] proves the broker took responsibility for the
/// message (publisher confirm `basic.ack` with no `basic.return`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The broker answered `basic.nack`: it did not accept the message.
    #[error("broker nacked message {message_id}")]
    Nacked {
        /// AMQP message id of the rejected message.
        message_id: String,
    },
    /// The message was `mandatory` and no queue was bound for it (`basic.return`, 312 NO_ROUTE).
    #[error(
        "message {message_id} unroutable on exchange {exchange:?} with routing key {routing_key:?}: {reply_code} {reply_text}"
    )]
    Unroutable {
        /// AMQP message id of the returned message.
        message_id: String,
        /// Exchange the message was published to.
        exchange: String,
        /// Routing key the message was published with.
        routing_key: String,
        /// AMQP reply code (312 for NO_ROUTE).
        reply_code: u16,
        /// AMQP reply text.
        reply_text: String,
    },
    /// No publisher confirm arrived in time; the outcome is unknown and the message must be
    /// considered not sent (a later retry may duplicate it; consumers deduplicate).
    #[error("no publisher confirm within {0:?}")]
    ConfirmTimeout(Duration),
    /// The channel or connection failed before the confirm arrived (or before publishing).
    /// This covers a broker restart as well as a channel closed by the broker, e.g. 404 when
    /// the exchange does not exist.
    #[error("AMQP error while publishing: {0}")]
    Amqp(#[from] lapin::Error),
    /// A name or header could not be encoded as AMQP.
    #[error("cannot encode message: {0}")]
    Encode(String),
}

impl PublishError {
    /// True when the failure is about the connection or channel rather than the message itself
    /// (the same message will probably succeed once the broker is reachable again).
    #[must_use]
    pub fn is_transport(&self) -> bool {
        match self {
            PublishError::ConfirmTimeout(_) => true,
            PublishError::Amqp(err) => !matches!(
                err.kind(),
                lapin::ErrorKind::ProtocolError(amqp) if matches!(amqp.kind(), lapin::protocol::AMQPErrorKind::Soft(_))
            ),
            PublishError::Nacked { .. }
            | PublishError::Unroutable { .. }
            | PublishError::Encode(_) => false,
        }
    }
}

/// What a message handler reports when it could not complete.
///
/// The consumer driver maps the variants to broker actions:
/// * [`HandlerError::Retry`] → `basic.reject(requeue = true)`: the message comes back later; each
///   return counts toward the queue's `x-delivery-limit`, after which it is dead-lettered.
/// * [`HandlerError::Reject`] → `basic.reject(requeue = false)`: dead-lettered immediately.
///
/// Delays (throttling, polling) belong in Postgres (`not_before`), not in broker retries: a handler
/// that must wait should schedule the work, return `Ok`, and let the message be acknowledged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// A transient failure: try the message again (bounded by the delivery limit).
    #[error("retry: {0}")]
    Retry(String),
    /// A permanent failure: the message can never succeed; send it to the dead-letter queue.
    #[error("reject: {0}")]
    Reject(String),
}

impl HandlerError {
    /// A transient failure with the given reason.
    pub fn retry(reason: impl std::fmt::Display) -> Self {
        HandlerError::Retry(reason.to_string())
    }

    /// A permanent failure with the given reason.
    pub fn reject(reason: impl std::fmt::Display) -> Self {
        HandlerError::Reject(reason.to_string())
    }
}

/// Database errors are treated as transient (connection loss, serialization failure, deadlock).
/// Map constraint violations yourself if they mean "never succeeds".
impl From<sqlx::Error> for HandlerError {
    fn from(err: sqlx::Error) -> Self {
        HandlerError::Retry(format!("database: {err}"))
    }
}

/// Bus errors inside a handler (for example a failed outbox enqueue) are transient.
impl From<BusError> for HandlerError {
    fn from(err: BusError) -> Self {
        HandlerError::Retry(err.to_string())
    }
}

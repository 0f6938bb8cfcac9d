//! RabbitMQ topology, declared idempotently in code.
//!
//! ```text
//!  <p>commands (direct) --[service]--------------> <p><service>  (quorum queue)
//!  <p>events   (topic)  --[feed.submitted, ...]--> <p><service>
//!  <p><service> --dead-letter [<p><service>]--> <p>dlx (direct) --[<p><service>]--> <p><service>.dlq
//! ```
//!
//! Every work queue is a durable quorum queue with an explicit `x-delivery-limit`, a dead-letter
//! exchange, `x-dead-letter-strategy = at-least-once` and `x-overflow = reject-publish` (both
//! required by at-least-once dead-lettering, RabbitMQ ≥ 3.10). The dead-letter routing key is the
//! queue's own name, so a dead-lettered *event* (routing key `feed.submitted`) still lands in its
//! queue's DLQ. The original routing key stays in the `x-death` header.
//!
//! Declaring through a connection made with [`crate::connect`] also makes lapin redeclare the
//! topology after a connection recovery. Redeclaring a queue with different arguments fails with
//! `PRECONDITION_FAILED` (406): change arguments only together with a migration of the queue.

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};

use crate::BusError;

/// Names and queue arguments of the bus. Production uses an empty prefix; tests use a unique
/// prefix per test so they can run in parallel and twice in a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Prepended to every exchange and queue name (`""` in production).
    pub prefix: String,
    /// `x-delivery-limit` of every work queue: how many times a message may be returned
    /// (rejected with requeue, or left unacked by a dying consumer) before it is dead-lettered.
    pub delivery_limit: u32,
}

/// Delivery limit used by [`Topology::production`].
pub const DEFAULT_DELIVERY_LIMIT: u32 = 5;

impl Topology {
    /// A topology with the given name prefix and delivery limit.
    pub fn new(prefix: impl Into<String>, delivery_limit: u32) -> Self {
        Self {
            prefix: prefix.into(),
            delivery_limit,
        }
    }

    /// The production topology: no prefix, [`DEFAULT_DELIVERY_LIMIT`].
    #[must_use]
    pub fn production() -> Self {
        Self::new("", DEFAULT_DELIVERY_LIMIT)
    }

    /// Name of the direct exchange for commands (routing key = service name).
    #[must_use]
    pub fn commands_exchange(&self) -> String {
        format!("{}commands", self.prefix)
    }

    /// Name of the topic exchange for events (routing keys such as `feed.submitted`).
    #[must_use]
    pub fn events_exchange(&self) -> String {
        format!("{}events", self.prefix)
    }

    /// Name of the dead-letter exchange (direct, routing key = work queue name).
    #[must_use]
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}dlx", self.prefix)
    }

    /// Name of the bounded queue that receives every event (`#`), so an event is always
    /// routable (publishes are `mandatory`) even before any service listens to its key, and
    /// operators can see recent events. Classic queue, newest 10,000 kept.
    #[must_use]
    pub fn events_log_queue(&self) -> String {
        format!("{}events.log", self.prefix)
    }

    /// Name of a service's work queue.
    #[must_use]
    pub fn queue(&self, service: &str) -> String {
        format!("{}{service}", self.prefix)
    }

    /// Name of a service's dead-letter queue (`<queue>.dlq`).
    #[must_use]
    pub fn dlq(&self, service: &str) -> String {
        dlq_of(&self.queue(service))
    }

    /// Declares the three exchanges (durable). Idempotent.
    pub async fn declare_exchanges(&self, channel: &Channel) -> Result<(), BusError> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        for (name, kind) in [
            (self.commands_exchange(), ExchangeKind::Direct),
            (self.events_exchange(), ExchangeKind::Topic),
            (self.dead_letter_exchange(), ExchangeKind::Direct),
        ] {
            channel
                .exchange_declare(
                    name_of("exchange", &name)?,
                    kind,
                    durable,
                    FieldTable::default(),
                )
                .await?;
        }
        let log = self.events_log_queue();
        let mut args = FieldTable::default();
        args.insert(
            "x-max-length".into(),
            AMQPValue::LongLongInt(EVENTS_LOG_MAX_LENGTH),
        );
        args.insert("x-overflow".into(), long_string("drop-head"));
        channel
            .queue_declare(
                name_of("queue", &log)?,
                QueueDeclareOptions::durable(),
                args,
            )
            .await?;
        channel
            .queue_bind(
                name_of("queue", &log)?,
                name_of("exchange", &self.events_exchange())?,
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(())
    }

    /// Declares a service's work queue and its DLQ, binds the work queue to the commands exchange
    /// with the service name and to the events exchange with each of `event_keys` (topic
    /// patterns allowed). Declares the exchanges first. Idempotent. Returns the queue name.
    pub async fn declare_service(
        &self,
        channel: &Channel,
        service: &str,
        event_keys: &[&str],
    ) -> Result<String, BusError> {
        self.declare_exchanges(channel).await?;
        let queue = self.queue(service);
        let dlq = self.dlq(service);
        let dlx = self.dead_letter_exchange();

        let mut dlq_args = FieldTable::default();
        dlq_args.insert("x-queue-type".into(), long_string("quorum"));
        channel
            .queue_declare(
                name_of("queue", &dlq)?,
                QueueDeclareOptions::durable(),
                dlq_args,
            )
            .await?;
        channel
            .queue_bind(
                name_of("queue", &dlq)?,
                name_of("exchange", &dlx)?,
                name_of("routing key", &queue)?,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;

        channel
            .queue_declare(
                name_of("queue", &queue)?,
                QueueDeclareOptions::durable(),
                self.work_queue_arguments(&queue),
            )
            .await?;
        channel
            .queue_bind(
                name_of("queue", &queue)?,
                name_of("exchange", &self.commands_exchange())?,
                name_of("routing key", service)?,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        for key in event_keys {
            channel
                .queue_bind(
                    name_of("queue", &queue)?,
                    name_of("exchange", &self.events_exchange())?,
                    name_of("routing key", key)?,
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        tracing::debug!(%queue, %dlq, ?event_keys, "declared service queue");
        Ok(queue)
    }

    /// The arguments every work queue is declared with.
    #[must_use]
    pub fn work_queue_arguments(&self, queue: &str) -> FieldTable {
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), long_string("quorum"));
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(self.delivery_limit)),
        );
        args.insert(
            "x-dead-letter-exchange".into(),
            long_string(&self.dead_letter_exchange()),
        );
        args.insert("x-dead-letter-routing-key".into(), long_string(queue));
        args.insert(
            "x-dead-letter-strategy".into(),
            long_string("at-least-once"),
        );
        args.insert("x-overflow".into(), long_string("reject-publish"));
        args
    }

    /// Deletes a service's work queue and DLQ (with their messages). For tests and tooling.
    pub async fn delete_service(&self, channel: &Channel, service: &str) -> Result<(), BusError> {
        for queue in [self.queue(service), self.dlq(service)] {
            channel
                .queue_delete(name_of("queue", &queue)?, QueueDeleteOptions::default())
                .await?;
        }
        Ok(())
    }

    /// Deletes the three exchanges and the events log queue. For tests and tooling; never with
    /// the production prefix.
    pub async fn delete_exchanges(&self, channel: &Channel) -> Result<(), BusError> {
        channel
            .queue_delete(
                name_of("queue", &self.events_log_queue())?,
                QueueDeleteOptions::default(),
            )
            .await?;
        for name in [
            self.commands_exchange(),
            self.events_exchange(),
            self.dead_letter_exchange(),
        ] {
            channel
                .exchange_delete(
                    name_of("exchange", &name)?,
                    ExchangeDeleteOptions::default(),
                )
                .await?;
        }
        Ok(())
    }
}

/// Messages kept in the events log queue (oldest dropped first).
const EVENTS_LOG_MAX_LENGTH: i64 = 10_000;

/// The DLQ name of a work queue.
pub(crate) fn dlq_of(queue: &str) -> String {
    format!("{queue}.dlq")
}

fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

pub(crate) fn name_of(what: &'static str, name: &str) -> Result<ShortString, BusError> {
    ShortString::try_new(name).map_err(|_| BusError::NameTooLong {
        what,
        len: name.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed() {
        let t = Topology::new("t1.", 3);
        assert_eq!(t.commands_exchange(), "t1.commands");
        assert_eq!(t.events_exchange(), "t1.events");
        assert_eq!(t.dead_letter_exchange(), "t1.dlx");
        assert_eq!(t.queue("order-ingest"), "t1.order-ingest");
        assert_eq!(t.dlq("order-ingest"), "t1.order-ingest.dlq");
        let p = Topology::production();
        assert_eq!(p.commands_exchange(), "commands");
        assert_eq!(p.queue("feed-poller"), "feed-poller");
    }

    #[test]
    fn work_queue_arguments_enable_at_least_once_dead_lettering() {
        let t = Topology::new("", 4);
        let args = t.work_queue_arguments("order-ingest");
        let get = |k: &str| args.inner().get(k).cloned();
        assert_eq!(get("x-delivery-limit"), Some(AMQPValue::LongLongInt(4)));
        assert_eq!(get("x-queue-type"), Some(long_string("quorum")));
        assert_eq!(get("x-dead-letter-exchange"), Some(long_string("dlx")));
        assert_eq!(
            get("x-dead-letter-routing-key"),
            Some(long_string("order-ingest"))
        );
        assert_eq!(
            get("x-dead-letter-strategy"),
            Some(long_string("at-least-once"))
        );
        assert_eq!(get("x-overflow"), Some(long_string("reject-publish")));
    }
}

//! Error classes: retry until the delivery limit, reject, undecodable; DLQ peek and replay.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus::lapin::BasicProperties;
use bus::{HandlerError, Incoming, OutgoingMessage, Publisher, consume, dlq_peek, dlq_replay};
use common::{publish_raw, wait_until, with_bus};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const SERVICE: &str = "worker";
const LIMIT: u32 = 2;

fn command(bus: &common::TestBus, payload: serde_json::Value) -> OutgoingMessage {
    OutgoingMessage {
        message_id: Uuid::now_v7(),
        exchange: bus.topology.commands_exchange(),
        routing_key: SERVICE.to_owned(),
        payload,
        headers: bus::Headers::new(),
    }
}

/// Must show 3: a handler that always fails lands its message in the dead-letter queue after the
/// delivery limit, while the other messages keep flowing.
#[tokio::test]
async fn always_failing_message_is_dead_lettered_after_the_delivery_limit_others_flow() {
    with_bus(LIMIT, async |bus| {
        let queue = bus.service(SERVICE, &[]).await;
        let publisher = Publisher::new(bus.conn.clone()).await.unwrap();

        let poison = command(bus, json!({"poison": true}));
        publisher.publish(&poison).await.unwrap();
        let mut good = Vec::new();
        for n in 0..20 {
            let msg = command(bus, json!({"n": n}));
            publisher.publish(&msg).await.unwrap();
            good.push(msg.message_id);
        }

        let poison_attempts = Arc::new(AtomicUsize::new(0));
        let handled: Arc<Mutex<HashMap<Uuid, usize>>> = Arc::default();
        let handler = {
            let (poison_attempts, handled) = (poison_attempts.clone(), handled.clone());
            move |msg: Incoming| {
                let (poison_attempts, handled) = (poison_attempts.clone(), handled.clone());
                async move {
                    if msg.payload["poison"] == json!(true) {
                        poison_attempts.fetch_add(1, Ordering::SeqCst);
                        return Err(HandlerError::retry("downstream always fails"));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    *handled.lock().unwrap().entry(msg.message_id).or_default() += 1;
                    Ok(())
                }
            }
        };
        let cancel = CancellationToken::new();
        let consumer = tokio::spawn({
            let (conn, queue, cancel) = (bus.conn.clone(), queue.clone(), cancel.clone());
            async move { consume(&conn, &queue, SERVICE, handler, 4, cancel).await }
        });

        wait_until(
            Duration::from_secs(30),
            "good messages and a dead letter",
            || async {
                handled.lock().unwrap().len() == good.len()
                    && dlq_peek(&bus.conn, &queue, 5).await.unwrap().len() == 1
            },
        )
        .await;
        cancel.cancel();
        consumer.await.unwrap().unwrap();

        // delivered once + LIMIT returns, then dead-lettered on the next return
        assert_eq!(poison_attempts.load(Ordering::SeqCst), LIMIT as usize + 1);
        let handled = handled.lock().unwrap().clone();
        assert!(
            good.iter().all(|id| handled.get(id) == Some(&1)),
            "each good message once: {handled:?}"
        );

        let dead = dlq_peek(&bus.conn, &queue, 10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].message_id, Some(poison.message_id));
        assert_eq!(dead[0].reason.as_deref(), Some("delivery_limit"));
        assert_eq!(dead[0].original_routing_key, SERVICE);
        assert_eq!(dead[0].original_exchange, bus.topology.commands_exchange());
        assert_eq!(dead[0].payload_json(), Some(json!({"poison": true})));
        assert_eq!(bus.ready_settled(&queue).await, 0);
        // Peeking does not consume: the peeked message goes back when the peek channel closes
        // (asynchronously; the count catches up shortly after).
        let dlq = bus.topology.dlq(SERVICE);
        wait_until(
            Duration::from_secs(5),
            "peeked message back in the DLQ",
            || async { bus.ready(&dlq).await == 1 },
        )
        .await;
    })
    .await;
}

/// Reject, a missing message id and a body that is not JSON go to the DLQ at once.
#[tokio::test]
async fn rejected_and_undecodable_messages_are_dead_lettered_immediately() {
    with_bus(LIMIT, async |bus| {
        let queue = bus.service(SERVICE, &[]).await;
        let publisher = Publisher::new(bus.conn.clone()).await.unwrap();
        let rejected = command(bus, json!({"bad": "forever"}));
        publisher.publish(&rejected).await.unwrap();
        let exchange = bus.topology.commands_exchange();
        publish_raw(
            &bus.conn,
            &exchange,
            SERVICE,
            b"{\"no\":\"id\"}",
            BasicProperties::default(),
        )
        .await;
        let not_json = Uuid::now_v7();
        publish_raw(
            &bus.conn,
            &exchange,
            SERVICE,
            b"<html>oops</html>",
            BasicProperties::default().with_message_id(not_json.to_string().into()),
        )
        .await;
        let fine = command(bus, json!({"ok": true}));
        publisher.publish(&fine).await.unwrap();

        let calls = Arc::new(AtomicUsize::new(0));
        let handler = {
            let calls = calls.clone();
            move |msg: Incoming| {
                let calls = calls.clone();
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    if msg.payload.get("bad").is_some() {
                        Err(HandlerError::reject("cannot ever succeed"))
                    } else {
                        Ok(())
                    }
                }
            }
        };
        let cancel = CancellationToken::new();
        let consumer = tokio::spawn({
            let (conn, queue, cancel) = (bus.conn.clone(), queue.clone(), cancel.clone());
            async move { consume(&conn, &queue, SERVICE, handler, 2, cancel).await }
        });
        wait_until(Duration::from_secs(20), "three dead letters", || async {
            dlq_peek(&bus.conn, &queue, 5).await.unwrap().len() == 3
        })
        .await;
        cancel.cancel();
        consumer.await.unwrap().unwrap();

        // Only the two decodable messages reached the handler, each once.
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let dead = dlq_peek(&bus.conn, &queue, 10).await.unwrap();
        assert!(
            dead.iter().all(|d| d.reason.as_deref() == Some("rejected")),
            "{dead:?}"
        );
        assert!(
            dead.iter()
                .any(|d| d.message_id == Some(rejected.message_id))
        );
        assert!(dead.iter().any(|d| d.message_id == Some(not_json)));
        assert!(dead.iter().any(|d| d.raw_message_id.is_none()));
        assert_eq!(bus.ready_settled(&queue).await, 0);
    })
    .await;
}

/// A dead-lettered event goes back to its queue with its id and original routing key.
#[tokio::test]
async fn dlq_replay_sends_messages_back_to_their_queue() {
    with_bus(LIMIT, async |bus| {
        let queue = bus.service("feed-poller", &["feed.submitted"]).await;
        let publisher = Publisher::new(bus.conn.clone()).await.unwrap();
        let event = OutgoingMessage {
            message_id: Uuid::now_v7(),
            exchange: bus.topology.events_exchange(),
            routing_key: "feed.submitted".to_owned(),
            payload: json!({"feed_submission_id": "f-1"}),
            headers: bus::Headers::new(),
        };
        publisher.publish(&event).await.unwrap();

        let healthy = Arc::new(AtomicBool::new(false));
        let seen: Arc<Mutex<Vec<Incoming>>> = Arc::default();
        let handler = {
            let (healthy, seen) = (healthy.clone(), seen.clone());
            move |msg: Incoming| {
                let (healthy, seen) = (healthy.clone(), seen.clone());
                async move {
                    seen.lock().unwrap().push(msg);
                    if healthy.load(Ordering::SeqCst) {
                        Ok(())
                    } else {
                        Err(HandlerError::reject("bug in handler"))
                    }
                }
            }
        };
        let cancel = CancellationToken::new();
        let consumer = tokio::spawn({
            let (conn, queue, cancel) = (bus.conn.clone(), queue.clone(), cancel.clone());
            async move { consume(&conn, &queue, "feed-poller", handler, 1, cancel).await }
        });
        wait_until(Duration::from_secs(20), "dead letter", || async {
            dlq_peek(&bus.conn, &queue, 5).await.unwrap().len() == 1
        })
        .await;
        let dead = dlq_peek(&bus.conn, &queue, 5).await.unwrap();
        assert_eq!(dead[0].original_routing_key, "feed.submitted");

        // The bug is fixed; replay.
        healthy.store(true, Ordering::SeqCst);
        let stats = dlq_replay(&bus.conn, &queue, 100).await.unwrap();
        assert_eq!((stats.replayed, stats.failed), (1, 0));
        wait_until(Duration::from_secs(20), "replayed delivery", || async {
            seen.lock().unwrap().len() == 2
        })
        .await;
        cancel.cancel();
        consumer.await.unwrap().unwrap();

        let replayed = seen.lock().unwrap()[1].clone();
        assert_eq!(replayed.message_id, event.message_id);
        assert_eq!(replayed.routing_key, "feed.submitted");
        assert_eq!(replayed.payload, event.payload);
        assert_eq!(replayed.delivery_count, 0, "fresh delivery budget");
        assert!(replayed.headers.contains_key("x-death"), "history kept");
        assert!(dlq_peek(&bus.conn, &queue, 5).await.unwrap().is_empty());
        assert_eq!(bus.ready_settled(&queue).await, 0);
    })
    .await;
}

/// A handler that panics is treated like a transient failure: retried up to the limit, then
/// dead-lettered; the consumer keeps running.
#[tokio::test]
async fn panicking_handler_is_retried_then_dead_lettered() {
    with_bus(LIMIT, async |bus| {
        let queue = bus.service(SERVICE, &[]).await;
        let publisher = Publisher::new(bus.conn.clone()).await.unwrap();
        let boom = command(bus, json!({"boom": true}));
        publisher.publish(&boom).await.unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let handler = {
            let calls = calls.clone();
            move |_msg: Incoming| {
                let calls = calls.clone();
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    panic!("handler bug");
                }
            }
        };
        let cancel = CancellationToken::new();
        let consumer = tokio::spawn({
            let (conn, queue, cancel) = (bus.conn.clone(), queue.clone(), cancel.clone());
            async move { consume(&conn, &queue, SERVICE, handler, 1, cancel).await }
        });
        wait_until(Duration::from_secs(20), "dead letter", || async {
            dlq_peek(&bus.conn, &queue, 5).await.unwrap().len() == 1
        })
        .await;
        cancel.cancel();
        consumer.await.unwrap().unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), LIMIT as usize + 1);
        let dead = dlq_peek(&bus.conn, &queue, 5).await.unwrap();
        assert_eq!(dead[0].message_id, Some(boom.message_id));
        assert_eq!(dead[0].reason.as_deref(), Some("delivery_limit"));
    })
    .await;
}

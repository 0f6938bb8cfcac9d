//! Must show: two services started with `runtime::serve` (order-ingest against the embedded
//! simulator, and a second service consuming `order.imported` from the events exchange) and
//! one trace id across the trigger, the import's handler span, its Amazon calls and the
//! `order.imported` events as the second service receives them.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus::{HandlerError, Incoming, Topology};
use common::*;
use opentelemetry::trace::{SpanId, TraceContextExt, TraceId};
use order_ingest::{IngestConfig, OrderIngest};
use spapi_sim::SimConfig;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use uuid::Uuid;

const EVENTS_SERVICE: &str = "obs-order-events";
const ORDERS: usize = 12;

/// (trace id, span id) of the current tracing span's OpenTelemetry context.
fn current_ids() -> (TraceId, SpanId) {
    let cx = tracing::Span::current().context();
    let sc = cx.span().span_context().clone();
    (sc.trace_id(), sc.span_id())
}

/// Parses a W3C `traceparent` (`00-<trace>-<parent span>-<flags>`).
fn parse_traceparent(headers: &bus::Headers) -> (TraceId, SpanId) {
    let tp = headers
        .get(bus::headers::TRACEPARENT)
        .and_then(serde_json::Value::as_str)
        .expect("message carries a traceparent");
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(parts.len(), 4, "traceparent {tp}");
    (
        TraceId::from_hex(parts[1]).unwrap(),
        SpanId::from_hex(parts[2]).unwrap(),
    )
}

/// What a handler saw: message id → (trace id and span id of its handler span).
type Seen = Arc<Mutex<BTreeMap<Uuid, (TraceId, SpanId)>>>;

/// order-ingest's handler, noting the trace context of the handler span it runs in.
struct Observed {
    inner: OrderIngest,
    seen: Seen,
}

impl bus::Handler for Observed {
    async fn handle(&self, msg: Incoming) -> Result<(), HandlerError> {
        self.seen
            .lock()
            .unwrap()
            .insert(msg.message_id, current_ids());
        bus::Handler::handle(&self.inner, msg).await
    }
}

#[derive(Debug, Clone)]
struct ReceivedEvent {
    routing_key: String,
    /// From the message's `traceparent`.
    header_trace: TraceId,
    header_parent: SpanId,
    /// The receiving handler span.
    handler_trace: TraceId,
}

#[sqlx::test(migrations = "../../migrations")]
async fn one_trace_id_across_trigger_import_amazon_calls_and_event(pool: PgPool) {
    let captured = init_tracing_with_capture();
    let sim = spapi_sim::spawn(SimConfig {
        rate_scale: 100.0,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    sim.sim().generate_orders(ORDERS, 5, JP_ONLY);
    let shop_id = insert_shop(&pool, &sim.base_url()).await;

    let prefix = unique_prefix("trace");
    let topology = Topology::new(prefix.clone(), bus::DEFAULT_DELIVERY_LIMIT);
    let amqp = bus::connect(&amqp_url(), "obs trace test").await.unwrap();
    {
        // Queues exist before anything is published (events must be routable).
        let ch = amqp.create_channel().await.unwrap();
        topology.declare_exchanges(&ch).await.unwrap();
        topology
            .declare_service(&ch, order_ingest::ACTION, &[])
            .await
            .unwrap();
        topology
            .declare_service(&ch, EVENTS_SERVICE, &["order.imported"])
            .await
            .unwrap();
    }

    let cancel = CancellationToken::new();
    let ingest_seen: Seen = Arc::default();
    let ingest = {
        let config = config(&pool, &prefix, 0, 100.0);
        let api = runtime::spapi_client(&pool, 100.0, Duration::from_secs(2)).unwrap();
        let (cancel, seen) = (cancel.clone(), ingest_seen.clone());
        tokio::spawn(runtime::serve(
            order_ingest::ACTION,
            &[],
            config,
            crypto::Keyring::for_testing(),
            cancel,
            move |ctx| Observed {
                inner: OrderIngest::new(
                    ctx.pool,
                    ctx.keys,
                    api,
                    ctx.topology,
                    IngestConfig::default(),
                ),
                seen,
            },
        ))
    };
    let received: Arc<Mutex<Vec<ReceivedEvent>>> = Arc::default();
    let events = {
        let config = config(&pool, &prefix, 0, 1.0);
        let (cancel, received) = (cancel.clone(), received.clone());
        tokio::spawn(runtime::serve(
            EVENTS_SERVICE,
            &["order.imported"],
            config,
            crypto::Keyring::for_testing(),
            cancel,
            move |_ctx| {
                move |msg: Incoming| {
                    let received = received.clone();
                    async move {
                        let (header_trace, header_parent) = parse_traceparent(&msg.headers);
                        received.lock().unwrap().push(ReceivedEvent {
                            routing_key: msg.routing_key.clone(),
                            header_trace,
                            header_parent,
                            handler_trace: current_ids().0,
                        });
                        Ok::<(), HandlerError>(())
                    }
                }
            },
        ))
    };

    // The trigger, published through the outbox from inside a span.
    let cmd = ingest_trigger(shop_id);
    let trigger_span = tracing::info_span!("test.trigger", command_id = %cmd.message_id);
    let trace_id = trigger_span.context().span().span_context().trace_id();
    assert_ne!(trace_id, TraceId::INVALID);
    enqueue(&pool, &topology, &cmd)
        .instrument(trigger_span.clone())
        .await;
    drop(trigger_span);

    let outcome = async {
        let events = eventually(
            "all order.imported events received",
            Duration::from_secs(20),
            || {
                let received = received.clone();
                async move {
                    let r = received.lock().unwrap().clone();
                    (r.len() >= ORDERS).then_some(r)
                }
            },
        )
        .await;

        // The trigger as it was written to the outbox carries the trigger's trace.
        let headers: serde_json::Value =
            sqlx::query_scalar("SELECT headers FROM outbox WHERE id = $1")
                .bind(cmd.message_id)
                .fetch_one(&pool)
                .await
                .unwrap();
        let serde_json::Value::Object(headers) = headers else {
            panic!("headers")
        };
        assert_eq!(
            parse_traceparent(&headers).0,
            trace_id,
            "trigger's traceparent"
        );

        // The import ran in a handler span of the same trace.
        let (handler_trace, handler_span) = *ingest_seen
            .lock()
            .unwrap()
            .get(&cmd.message_id)
            .expect("order-ingest handled the trigger");
        assert_eq!(handler_trace, trace_id, "order-ingest handler span");

        // Each event, as the second service received it: the same trace in its traceparent,
        // whose parent is the import's handler span (the transaction that wrote the event to
        // the outbox ran inside it), and the receiving handler span continues that trace.
        assert_eq!(events.len(), ORDERS, "one event per order");
        for e in &events {
            assert_eq!(e.routing_key, "order.imported");
            assert_eq!(e.header_trace, trace_id, "event traceparent");
            assert_eq!(
                e.header_parent, handler_span,
                "event written inside the handler span"
            );
            assert_eq!(e.handler_trace, trace_id, "second service's handler span");
        }

        // The finished spans of the trace: Amazon calls with operation, status and limiter
        // wait, under the import's handler span.
        let spans = eventually(
            "spans of the trace finished",
            Duration::from_secs(10),
            || {
                let captured = captured.clone();
                async move {
                    let spans: Vec<_> = captured
                        .spans()
                        .into_iter()
                        .filter(|s| s.span_context.trace_id() == trace_id)
                        .collect();
                    let consumed = spans.iter().filter(|s| s.name == "bus.consume").count();
                    (consumed > ORDERS).then_some(spans)
                }
            },
        )
        .await;
        let attr = |s: &opentelemetry_sdk::trace::SpanData, key: &str| {
            s.attributes
                .iter()
                .find(|kv| kv.key.as_str() == key)
                .map(|kv| kv.value.to_string())
        };
        let names: BTreeMap<String, usize> = spans.iter().fold(BTreeMap::new(), |mut m, s| {
            *m.entry(s.name.to_string()).or_default() += 1;
            m
        });
        eprintln!("spans of trace {trace_id}: {names:?}");
        let handler = spans
            .iter()
            .find(|s| s.span_context.span_id() == handler_span)
            .expect("the import's handler span was exported");
        assert_eq!(handler.name, "bus.consume");
        assert_eq!(
            attr(handler, "queue").as_deref(),
            Some(topology.queue(order_ingest::ACTION).as_str())
        );
        let calls: Vec<_> = spans.iter().filter(|s| s.name == "spapi.call").collect();
        assert!(!calls.is_empty(), "Amazon calls traced: {names:?}");
        let parents: std::collections::HashMap<SpanId, SpanId> = spans
            .iter()
            .map(|s| (s.span_context.span_id(), s.parent_span_id))
            .collect();
        let under_handler = |mut id: SpanId| {
            while let Some(parent) = parents.get(&id) {
                if *parent == handler_span {
                    return true;
                }
                id = *parent;
            }
            false
        };
        for call in &calls {
            assert!(
                under_handler(call.span_context.span_id()),
                "Amazon call inside the handler span"
            );
            assert_eq!(attr(call, "operation").as_deref(), Some("searchOrders"));
            assert_eq!(attr(call, "status").as_deref(), Some("200"));
            assert!(
                attr(call, "limiter_wait_ms").is_some(),
                "limiter wait recorded"
            );
        }
        let event_consumers = spans
            .iter()
            .filter(|s| {
                s.name == "bus.consume"
                    && attr(s, "queue").as_deref() == Some(topology.queue(EVENTS_SERVICE).as_str())
            })
            .count();
        assert_eq!(
            event_consumers, ORDERS,
            "second service's handler spans in the trace"
        );
        // The relay's publish spans continue the trace too (trigger and events).
        assert!(names.get("outbox.publish").copied().unwrap_or(0) > ORDERS);
    };
    let result = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(outcome)).await;

    cancel.cancel();
    for (name, task) in [("order-ingest", ingest), ("events", events)] {
        match tokio::time::timeout(Duration::from_secs(20), task).await {
            Ok(Ok(Ok(()))) => {}
            other => eprintln!("{name} ended with {other:?}"),
        }
    }
    cleanup(&topology, &[order_ingest::ACTION, EVENTS_SERVICE]).await;
    let _ = bus::close(&amqp).await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

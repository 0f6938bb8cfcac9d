//! W3C trace context travels from the enqueuing span, through the outbox and the broker, to the
//! handler's span.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus::{Incoming, OutboxMessage, Publisher, Relay, consume, outbox};
use common::{wait_until, with_bus};
use opentelemetry::trace::{TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn init_otel() -> SdkTracerProvider {
    let provider = SdkTracerProvider::builder().build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bus-test")))
        .init();
    provider
}

fn trace_id_of(span: &tracing::Span) -> TraceId {
    span.context().span().span_context().trace_id()
}

#[sqlx::test(migrations = "../../migrations")]
async fn traceparent_flows_from_enqueue_to_the_handler_span(pool: PgPool) {
    let _provider = init_otel();
    with_bus(3, async |bus| {
        let queue = bus.service("order-ingest", &[]).await;

        let trigger = tracing::info_span!("ctl.trigger");
        let trace_id = trace_id_of(&trigger);
        assert_ne!(trace_id, TraceId::INVALID);
        let id = async {
            let mut tx = pool.begin().await.unwrap();
            let msg =
                OutboxMessage::new(bus.topology.commands_exchange(), "order-ingest", json!({}));
            let id = msg.id;
            outbox::enqueue(&mut tx, msg).await.unwrap();
            tx.commit().await.unwrap();
            id
        }
        .instrument(trigger)
        .await;

        let headers = sqlx::query_scalar!("SELECT headers FROM outbox WHERE id = $1", id)
            .fetch_one(&pool)
            .await
            .unwrap();
        let traceparent = headers["traceparent"]
            .as_str()
            .expect("traceparent stored")
            .to_owned();
        assert!(
            traceparent.starts_with(&format!("00-{trace_id}-")),
            "{traceparent}"
        );

        // The relay runs outside the trigger's span.
        let relay = Relay::new(
            pool.clone(),
            Publisher::new(bus.conn.clone()).await.unwrap(),
        );
        assert_eq!(relay.relay_once().await.unwrap().sent, 1);

        let seen: Arc<Mutex<Vec<(TraceId, Incoming)>>> = Arc::default();
        let handler = {
            let seen = seen.clone();
            move |msg: Incoming| {
                let seen = seen.clone();
                async move {
                    let handler_trace = trace_id_of(&tracing::Span::current());
                    seen.lock().unwrap().push((handler_trace, msg));
                    Ok(())
                }
            }
        };
        let cancel = CancellationToken::new();
        let consumer = tokio::spawn({
            let (conn, queue, cancel) = (bus.conn.clone(), queue.clone(), cancel.clone());
            async move { consume(&conn, &queue, "order-ingest", handler, 1, cancel).await }
        });
        wait_until(Duration::from_secs(20), "delivery", || async {
            !seen.lock().unwrap().is_empty()
        })
        .await;
        cancel.cancel();
        consumer.await.unwrap().unwrap();

        let (handler_trace, msg) = seen.lock().unwrap()[0].clone();
        assert_eq!(msg.headers["traceparent"], json!(traceparent));
        assert_eq!(
            handler_trace, trace_id,
            "handler span continues the trigger's trace"
        );
    })
    .await;
}

//! `/metrics` of served services (OpenMetrics text, `prometheus-client`): runs by status, orders imported, Amazon
//! calls by operation and outcome, 429s, limiter wait, feed messages by result, outbox
//! backlog and dead-letter count.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bus::{HandlerError, Incoming, Topology};
use common::*;
use order_ingest::{IngestConfig, OrderIngest};
use spapi_sim::{Fault, FaultTrigger, SimConfig};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const ORDERS: usize = 15;
const FEEDS_SERVICE: &str = "shipment-feedback";

/// `name{labels}` → value.
fn parse(body: &str) -> BTreeMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {l:?}"));
            (
                k.to_owned(),
                v.parse().unwrap_or_else(|_| panic!("bad value {l:?}")),
            )
        })
        .collect()
}

fn get(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("{key} missing from /metrics:\n{}", keys(m)))
}

fn keys(m: &BTreeMap<String, f64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn scrape(port: u16) -> (String, BTreeMap<String, f64>) {
    let resp = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("admin server answers");
    assert!(resp.status().is_success());
    let ct = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        ct.starts_with("application/openmetrics-text; version=1.0.0"),
        "{ct}"
    );
    let body = resp.text().await.unwrap();
    assert!(body.ends_with("# EOF\n"), "not OpenMetrics text:\n{body}");
    let parsed = parse(&body);
    (body, parsed)
}

#[sqlx::test(migrations = "../../migrations")]
async fn metrics_endpoint_reports_runs_orders_calls_feeds_outbox_and_dead_letters(pool: PgPool) {
    telemetry::init_for_test();
    let sim = spapi_sim::spawn(SimConfig {
        rate_scale: 1000.0,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    sim.sim().generate_orders(ORDERS, 8, JP_ONLY);
    // One 429 from Amazon: the client drains its bucket, waits in the limiter and retries.
    sim.sim()
        .inject_fault(
            "searchOrders",
            Fault::Status { status: 429 },
            FaultTrigger::Count(1),
        )
        .unwrap();
    let shop_id = insert_shop(&pool, &sim.base_url()).await;

    let prefix = unique_prefix("metrics");
    let topology = Topology::new(prefix.clone(), bus::DEFAULT_DELIVERY_LIMIT);
    let amqp = bus::connect(&amqp_url(), "obs metrics test").await.unwrap();
    {
        let ch = amqp.create_channel().await.unwrap();
        topology.declare_exchanges(&ch).await.unwrap();
        topology
            .declare_service(&ch, "events-tap", &["order.#"])
            .await
            .unwrap();
        for service in [order_ingest::ACTION, FEEDS_SERVICE] {
            topology.declare_service(&ch, service, &[]).await.unwrap();
        }
    }
    let cancel = CancellationToken::new();
    let (ingest_port, feeds_port) = (free_port(), free_port());
    let ingest = {
        let config = config(&pool, &prefix, ingest_port, 1000.0);
        let api = runtime::spapi_client(&pool, 1000.0, Duration::from_secs(2)).unwrap();
        tokio::spawn(runtime::serve(
            order_ingest::ACTION,
            &[],
            config,
            crypto::Keyring::for_testing(),
            cancel.clone(),
            move |ctx| {
                OrderIngest::new(
                    ctx.pool,
                    ctx.keys,
                    api,
                    ctx.topology,
                    IngestConfig::default(),
                )
            },
        ))
    };
    // A second service (the feed metrics are per action): its handler is not exercised.
    let feeds = tokio::spawn(runtime::serve(
        FEEDS_SERVICE,
        &[],
        config(&pool, &prefix, feeds_port, 1.0),
        crypto::Keyring::for_testing(),
        cancel.clone(),
        |_ctx| |_msg: Incoming| async { Ok::<(), HandlerError>(()) },
    ));

    let outcome = async {
        // An import through the queue.
        let cmd = ingest_trigger(shop_id);
        enqueue(&pool, &topology, &cmd).await;
        let status: String = eventually("run finished", Duration::from_secs(20), || async {
            sqlx::query_scalar::<_, String>(
                "SELECT status FROM action_runs WHERE command_id = $1 AND status NOT IN ('running', 'waiting')",
            )
            .bind(cmd.message_id)
            .fetch_optional(&pool)
            .await
            .unwrap()
        })
        .await;
        assert_eq!(status, "succeeded");

        // A message order-ingest can never handle: dead-lettered.
        let publisher = bus::Publisher::new(amqp.clone()).await.unwrap();
        publisher
            .publish(&bus::OutgoingMessage {
                message_id: Uuid::now_v7(),
                exchange: topology.commands_exchange(),
                routing_key: order_ingest::ACTION.into(),
                payload: serde_json::json!({"not": "a command"}),
                headers: bus::Headers::new(),
            })
            .await
            .unwrap();
        let dlq = topology.dlq(order_ingest::ACTION);
        eventually("message dead-lettered", Duration::from_secs(10), || async {
            (queue_depth(&amqp, &dlq).await == 1).then_some(())
        })
        .await;

        // Feed messages of a shipment-feedback run: 2 success, 1 error, 1 pending.
        let run_id = Uuid::now_v7();
        sqlx::query("INSERT INTO action_runs (id, shop_id, action, status) VALUES ($1, $2, $3, 'succeeded')")
            .bind(run_id)
            .bind(shop_id)
            .bind(FEEDS_SERVICE)
            .execute(&pool)
            .await
            .unwrap();
        let feed_id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO feed_submissions (id, shop_id, run_id, feed_type, marketplace_ids, state)
             VALUES ($1, $2, $3, 'POST_ORDER_FULFILLMENT_DATA', ARRAY['A1VC38T7YXB528'], 'done')",
        )
        .bind(feed_id)
        .bind(shop_id)
        .bind(run_id)
        .execute(&pool)
        .await
        .unwrap();
        for (n, result) in ["success", "success", "error", "pending"]
            .iter()
            .enumerate()
        {
            sqlx::query("INSERT INTO feed_messages (feed_submission_id, message_id, result) VALUES ($1, $2, $3)")
                .bind(feed_id)
                .bind(n as i64 + 1)
                .bind(result)
                .execute(&pool)
                .await
                .unwrap();
        }
        // A continuation scheduled for later is not backlog.
        let mut conn = pool.acquire().await.unwrap();
        bus::outbox::enqueue(
            &mut conn,
            bus::OutboxMessage::new(
                topology.commands_exchange(),
                order_ingest::ACTION,
                serde_json::json!({}),
            )
            .not_before(chrono::Utc::now() + chrono::Duration::hours(1)),
        )
        .await
        .unwrap();
        drop(conn);
        eventually("outbox drained", Duration::from_secs(10), || async {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND not_before <= now()",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            (n == 0).then_some(())
        })
        .await;

        let (body, m) = scrape(ingest_port).await;
        eprintln!("{body}");
        let oi = order_ingest::ACTION;
        let q = |name: &str, labels: &str| format!("{name}{{{labels}}}");
        assert_eq!(
            get(&m, &q("connector_consuming", &format!("service=\"{oi}\""))),
            1.0
        );
        assert_eq!(
            get(
                &m,
                &q(
                    "connector_runs_24h",
                    &format!("action=\"{oi}\",shop=\"{SHOP_CODE}\",status=\"succeeded\"")
                )
            ),
            1.0
        );
        assert_eq!(
            get(
                &m,
                &q(
                    "connector_orders_24h",
                    &format!("action=\"{oi}\",shop=\"{SHOP_CODE}\",result=\"imported\"")
                )
            ),
            ORDERS as f64
        );
        assert_eq!(
            get(
                &m,
                &q(
                    "connector_orders_24h",
                    &format!("action=\"{oi}\",shop=\"{SHOP_CODE}\",result=\"updated\"")
                )
            ),
            0.0
        );
        assert_eq!(
            get(
                &m,
                &q(
                    "connector_run_counts_24h",
                    &format!("action=\"{oi}\",shop=\"{SHOP_CODE}\",count=\"pages\"")
                )
            ),
            1.0
        );
        assert!(
            get(
                &m,
                &q(
                    "connector_run_amazon_calls_24h",
                    &format!("action=\"{oi}\",shop=\"{SHOP_CODE}\",operation=\"searchOrders\"")
                )
            ) >= 1.0
        );
        let seller = spapi_sim::DEFAULT_SELLER_ID;
        let labels = format!("service=\"{oi}\",seller=\"{seller}\",operation=\"searchOrders\"");
        assert!(
            get(
                &m,
                &q(
                    "connector_amazon_calls_total",
                    &format!("{labels},outcome=\"ok\"")
                )
            ) >= 1.0
        );
        assert!(
            get(
                &m,
                &q(
                    "connector_amazon_calls_total",
                    &format!("{labels},outcome=\"throttled\"")
                )
            ) >= 1.0
        );
        assert!(get(&m, &q("connector_amazon_throttled_total", &labels)) >= 1.0);
        assert!(get(&m, &q("connector_amazon_retries_total", &labels)) >= 1.0);
        assert!(
            get(
                &m,
                &q("connector_amazon_limiter_wait_seconds_total", &labels)
            ) > 0.0,
            "after the 429 the drained bucket made the retry wait"
        );
        assert_eq!(
            get(
                &m,
                &q("connector_outbox_backlog", &format!("service=\"{oi}\""))
            ),
            0.0
        );
        assert_eq!(
            get(
                &m,
                &q("connector_outbox_scheduled", &format!("service=\"{oi}\""))
            ),
            1.0
        );
        assert_eq!(
            get(
                &m,
                &q(
                    "connector_dead_letter_messages",
                    &format!("queue=\"{dlq}\"")
                )
            ),
            1.0
        );
        assert_eq!(
            get(
                &m,
                &q(
                    "connector_queue_messages",
                    &format!("queue=\"{}\"", topology.queue(oi))
                )
            ),
            0.0
        );
        for source in ["ledger", "feeds", "outbox", "broker"] {
            assert_eq!(
                get(
                    &m,
                    &q(
                        "connector_scrape_error",
                        &format!("service=\"{oi}\",source=\"{source}\"")
                    )
                ),
                0.0
            );
        }

        let (_, f) = scrape(feeds_port).await;
        let feed = |result: &str| {
            get(
                &f,
                &q(
                    "connector_feed_messages_24h",
                    &format!(
                        "action=\"{FEEDS_SERVICE}\",shop=\"{SHOP_CODE}\",feed_type=\"POST_ORDER_FULFILLMENT_DATA\",result=\"{result}\""
                    ),
                ),
            )
        };
        assert_eq!(
            (feed("success"), feed("error"), feed("pending")),
            (2.0, 1.0, 1.0)
        );
        assert_eq!(
            get(
                &f,
                &q(
                    "connector_runs_24h",
                    &format!(
                        "action=\"{FEEDS_SERVICE}\",shop=\"{SHOP_CODE}\",status=\"succeeded\""
                    )
                )
            ),
            1.0
        );
        // Per action: order-ingest's runs are not reported by the other service.
        assert!(!f.keys().any(|k| k.contains(&format!("action=\"{oi}\""))));
        assert_eq!(
            get(
                &f,
                &q(
                    "connector_dead_letter_messages",
                    &format!("queue=\"{}\"", topology.dlq(FEEDS_SERVICE))
                )
            ),
            0.0
        );
    };
    let result = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(outcome)).await;

    cancel.cancel();
    for (name, task) in [("order-ingest", ingest), ("feeds", feeds)] {
        match tokio::time::timeout(Duration::from_secs(20), task).await {
            Ok(Ok(Ok(()))) => {}
            other => eprintln!("{name} ended with {other:?}"),
        }
    }
    cleanup(
        &topology,
        &[order_ingest::ACTION, FEEDS_SERVICE, "events-tap"],
    )
    .await;
    let _ = bus::close(&amqp).await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

//! The happy path of the whole system, checked by the invariant checker, and the checker's own
//! test: it finds a missing order, a double confirmation, a stuck outbox row, an unexpected
//! dead letter and a reservation drift when they are planted.

use std::time::Duration;

use domain::window::ImportMode;
use spapi_sim::{ItemSpec, MarketplaceMix, OrderSpec, OrderStatus};
use sqlx::PgPool;
use system_tests::invariants::{self, Expect};
use system_tests::{Svc, System, harness::sku};

#[sqlx::test(migrations = "../../migrations")]
async fn all_five_services_end_to_end_invariants_hold(pool: PgPool) {
    let mut sys = System::new(pool).await;
    let a = sys.a().clone();
    sys.sim.sim().generate_orders_for(
        spapi_sim::DEFAULT_SELLER_ID,
        30,
        7,
        MarketplaceMix {
            jp: 1,
            au: 0,
            sg: 0,
            pending_ratio: 0.3,
        },
    );
    sys.start_all();
    let run = sys.ingest(a.id, ImportMode::Hours { hours: 168 }).await;
    assert_eq!(run.status.as_str(), "succeeded", "{run:?}");
    // Pending orders get paid, then status sync picks them up.
    for o in sys.sim.sim().orders() {
        if o.status == OrderStatus::Pending {
            sys.sim
                .sim()
                .set_order_status(&o.order_id, spapi_sim::StatusChange::Unshipped)
                .unwrap();
        }
    }
    let run = sys.status_sync(a.id).await;
    assert_eq!(run.status.as_str(), "succeeded", "{run:?}");
    let shipped = sys.ship_awaiting(&a, 20, None).await;
    assert!(shipped > 0);
    let run = sys.feedback(a.id).await;
    assert_eq!(run.status.as_str(), "succeeded", "{run:?}");
    let run = sys.inventory(a.id, true).await;
    assert!(matches!(run.status.as_str(), "succeeded"), "{run:?}");
    sys.drain(Duration::from_secs(60)).await;

    let report = invariants::check(&sys, &Expect::default()).await;
    report.assert_ok();
    assert!(report.orders_expected >= 30, "{report:?}");
    assert_eq!(report.confirmed_on_amazon, shipped, "{report:?}");
    sys.shutdown().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_checker_finds_planted_violations(pool: PgPool) {
    let sys = System::new(pool).await;
    let a = sys.a().clone();
    // An order at Amazon nobody imported.
    let missing = sys
        .sim
        .sim()
        .create_order(OrderSpec {
            status: Some(OrderStatus::Unshipped),
            items: vec![ItemSpec {
                seller_sku: Some(sku(1)),
                quantity: Some(1),
                ..Default::default()
            }],
            ..Default::default()
        })
        .unwrap();
    // A stuck outbox row, a reservation without a line, a message in a DLQ.
    sqlx::query("INSERT INTO outbox (id, exchange, routing_key, payload) VALUES (gen_random_uuid(), 'x', 'y', '{}')")
        .execute(&sys.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE stock SET reserved = 3 WHERE product_id = (SELECT id FROM products WHERE shop_id = $1 AND code = 'P-0002')")
        .bind(a.id)
        .execute(&sys.pool)
        .await
        .unwrap();
    {
        use bus::lapin::options::BasicPublishOptions;
        let ch = sys.amqp.create_channel().await.unwrap();
        ch.basic_publish(
            "".into(),
            sys.topology.dlq(Svc::StatusSync.name()).as_str().into(),
            BasicPublishOptions::default(),
            b"{}",
            Default::default(),
        )
        .await
        .unwrap();
        let _ = ch.close(200, "OK".into()).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = invariants::check(&sys, &Expect::default()).await;
    let all = report.violations.join("\n");
    assert!(
        all.contains(&format!("order {} missing", missing.order_id)),
        "{all}"
    );
    assert!(all.contains("1 outbox row(s) unsent"), "{all}");
    assert!(all.contains("product P-0002: stock.reserved 3"), "{all}");
    assert!(all.contains("DLQ of status-sync holds 1"), "{all}");
    assert_eq!(report.violations.len(), 4, "{all}");
    sys.cleanup_bus().await;
}

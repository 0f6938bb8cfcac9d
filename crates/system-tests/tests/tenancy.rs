//! Tenancy: two shops (two sellers, each on its own simulator) with the same SKUs and the same
//! Amazon order ids. Every action of shop A runs; shop B's rows (hashed, table by table) and
//! shop B's Amazon (call counters, orders) are unchanged.

use std::collections::BTreeMap;
use std::time::Duration;

use domain::messages::CommandParams;
use domain::window::ImportMode;
use spapi_sim::{MarketplaceMix, SimConfig};
use sqlx::PgPool;
use system_tests::System;
use system_tests::invariants::{self, Expect};
use uuid::Uuid;

const SELLER_B: &str = "A2SIMSELLERB0002";

/// md5 of every row of shop B, per table (rows sorted).
async fn snapshot(sys: &System, shop: Uuid) -> BTreeMap<String, (i64, String)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'shop_id' ORDER BY 1",
    )
    .fetch_all(&sys.pool)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for t in tables {
        let row: (i64, Option<String>) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*), md5(string_agg(x::text, '|' ORDER BY x::text)) FROM \"{t}\" x WHERE shop_id = $1"
        )))
        .bind(shop)
        .fetch_one(&sys.pool)
        .await
        .unwrap();
        out.insert(t, (row.0, row.1.unwrap_or_default()));
    }
    let fm: (i64, Option<String>) = sqlx::query_as(
        "SELECT count(*), md5(string_agg(m::text, '|' ORDER BY m::text)) FROM feed_messages m JOIN feed_submissions f ON f.id = m.feed_submission_id WHERE f.shop_id = $1",
    )
    .bind(shop)
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    out.insert("feed_messages".into(), (fm.0, fm.1.unwrap_or_default()));
    let shop_row: String = sqlx::query_scalar("SELECT md5(x::text) FROM shops x WHERE id = $1")
        .bind(shop)
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    out.insert("shops".into(), (1, shop_row));
    out
}

#[sqlx::test(migrations = "../../migrations")]
async fn actions_of_shop_a_leave_shop_b_untouched(pool: PgPool) {
    let mut sys = System::new(pool).await;
    let a = sys.a().clone();
    let sim_b = spapi_sim::spawn(SimConfig {
        unlimited: true,
        feed_processing: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut o = sim_b.sim().options();
    o.feed_processing_ms = 300;
    sim_b.sim().set_options(o).unwrap();
    sim_b.sim().register_seller(
        "amzn1.application-oa2-client.b",
        "secret",
        "Atzr|b",
        SELLER_B,
    );
    let b = sys
        .add_shop_on(
            "shop-b",
            SELLER_B,
            Some(("amzn1.application-oa2-client.b", "Atzr|b")),
            &sim_b.base_url(),
        )
        .await;
    let mix = MarketplaceMix {
        jp: 1,
        au: 0,
        sg: 0,
        pending_ratio: 0.3,
    };
    // Same seed: the same order ids, SKUs and quantities at both sellers.
    let oa = sys
        .sim
        .sim()
        .generate_orders_for(spapi_sim::DEFAULT_SELLER_ID, 15, 99, mix);
    let ob = sim_b.sim().generate_orders_for(SELLER_B, 15, 99, mix);
    let ids_a: Vec<&str> = oa.iter().map(|o| o.order_id.as_str()).collect();
    let ids_b: Vec<&str> = ob.iter().map(|o| o.order_id.as_str()).collect();
    assert_eq!(ids_a, ids_b, "overlapping Amazon order ids");

    sys.start_all();
    // Shop B gets a life of its own first: imported, some shipped and confirmed.
    let week = ImportMode::Hours { hours: 168 };
    assert_eq!(sys.ingest(b.id, week).await.status.as_str(), "succeeded");
    assert!(sys.ship_awaiting(&b, 3, None).await > 0);
    assert_eq!(sys.feedback(b.id).await.status.as_str(), "succeeded");
    assert_eq!(sys.inventory(b.id, true).await.status.as_str(), "succeeded");
    sys.drain(Duration::from_secs(60)).await;
    let before = snapshot(&sys, b.id).await;
    let b_calls = sim_b.sim().call_counts();
    let b_orders = sim_b.sim().orders();
    assert!(before["shipping_instructions"].0 >= 10);

    // Every action of shop A.
    for o in sys.sim.sim().orders() {
        if o.status == spapi_sim::OrderStatus::Pending {
            sys.sim
                .sim()
                .set_order_status(&o.order_id, spapi_sim::StatusChange::Unshipped)
                .unwrap();
        }
    }
    assert_eq!(sys.ingest(a.id, week).await.status.as_str(), "succeeded");
    assert_eq!(sys.status_sync(a.id).await.status.as_str(), "succeeded");
    let reconcile = sys
        .trigger(
            a.id,
            CommandParams::StatusSync {
                mode: domain::messages::StatusSyncMode::Reconcile,
            },
        )
        .await;
    assert_eq!(
        sys.wait_run(reconcile, Duration::from_secs(60))
            .await
            .status
            .as_str(),
        "succeeded"
    );
    assert!(sys.ship_awaiting(&a, 8, None).await > 0);
    assert_eq!(sys.feedback(a.id).await.status.as_str(), "succeeded");
    assert_eq!(sys.inventory(a.id, true).await.status.as_str(), "succeeded");
    // The feed poller records no run; its work shows in the feeds.
    sys.trigger(
        a.id,
        CommandParams::FeedPoll {
            feed_submission_id: None,
        },
    )
    .await;
    sys.drain(Duration::from_secs(60)).await;

    let after = snapshot(&sys, b.id).await;
    assert_eq!(before, after, "shop B's rows changed");
    assert_eq!(
        b_calls,
        sim_b.sim().call_counts(),
        "shop B's Amazon was called"
    );
    assert_eq!(
        b_orders,
        sim_b.sim().orders(),
        "shop B's Amazon orders changed"
    );
    // Shop A got its own copies of the same order ids.
    let both: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT amazon_order_id FROM shipping_instructions GROUP BY amazon_order_id HAVING count(DISTINCT shop_id) = 2) t",
    )
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    assert!(both >= 10, "{both} order ids present in both shops");
    invariants::check(
        &sys,
        &Expect {
            shops: Some(vec![a.id]),
            ..Default::default()
        },
    )
    .await
    .assert_ok();
    sys.shutdown().await;
}

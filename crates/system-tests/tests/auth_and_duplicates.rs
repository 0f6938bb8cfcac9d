//! A seller that revoked the authorization (invalid_grant) is marked and paused without a retry
//! storm while the other tenant works; duplicate and concurrent triggers confirm once.

use std::time::Duration;

use domain::messages::{Action, Command, CommandParams};
use domain::window::ImportMode;
use spapi_sim::MarketplaceMix;
use sqlx::PgPool;
use system_tests::invariants::{self, Expect};
use system_tests::{Svc, System};

const WEEK: ImportMode = ImportMode::Hours { hours: 168 };

fn jp() -> MarketplaceMix {
    MarketplaceMix {
        jp: 1,
        au: 0,
        sg: 0,
        pending_ratio: 0.0,
    }
}

fn lwa_calls(sys: &System) -> u64 {
    sys.sim
        .sim()
        .call_counts()
        .get("lwaToken")
        .map(|c| c.calls)
        .unwrap_or(0)
}

#[sqlx::test(migrations = "../../migrations")]
async fn revoked_authorization_marks_the_shop_and_spares_the_other_tenant(pool: PgPool) {
    let mut sys = System::new(pool).await;
    let a = sys.a().clone();
    // Seller B's app registration knows another refresh token: B's stored one is revoked.
    sys.sim.sim().register_seller(
        "amzn1.application-oa2-client.b",
        "secret",
        "Atzr|current",
        "A2SIMSELLERB0002",
    );
    let b = sys
        .add_shop_on(
            "shop-b",
            "A2SIMSELLERB0002",
            Some(("amzn1.application-oa2-client.b", "Atzr|revoked")),
            &sys.sim.base_url(),
        )
        .await;
    sys.sim
        .sim()
        .generate_orders_for(spapi_sim::DEFAULT_SELLER_ID, 20, 61, jp());
    sys.sim
        .sim()
        .generate_orders_for("A2SIMSELLERB0002", 20, 62, jp());
    sys.start_all();
    assert_eq!(sys.ingest(a.id, WEEK).await.status.as_str(), "succeeded");
    let before = lwa_calls(&sys);
    let first = sys.ingest(b.id, WEEK).await;
    let second = sys.ingest(b.id, WEEK).await;
    let inv = sys.inventory(b.id, true).await;
    sys.drain(Duration::from_secs(60)).await;
    let lwa = lwa_calls(&sys) - before;
    eprintln!(
        "revoked: runs {} / {} / {}, LWA calls {lwa}",
        first.status.as_str(),
        second.status.as_str(),
        inv.status.as_str()
    );
    let (status, error): (String, Option<String>) =
        sqlx::query_as("SELECT auth_status, auth_error FROM shops WHERE id = $1")
            .bind(b.id)
            .fetch_one(&sys.pool)
            .await
            .unwrap();
    assert_eq!(status, "needs_reauthorization");
    assert!(error.is_some_and(|e| !e.is_empty()));
    assert_ne!(first.status.as_str(), "succeeded");
    assert!(lwa <= 6, "no retry storm: {lwa} LWA calls for 3 triggers");
    assert_eq!(
        sys.count(&format!(
            "SELECT count(*) FROM shipping_instructions WHERE shop_id = '{}'",
            b.id
        ))
        .await,
        0
    );
    let logged = sys
        .count(&format!(
            "SELECT count(*) FROM api_log WHERE shop_id = '{}' AND level IN ('error', 'attention')",
            b.id
        ))
        .await;
    assert!(logged >= 1, "the operator sees why");
    // Shop A is unaffected: still ok, its work goes on.
    let a_status: String = sqlx::query_scalar("SELECT auth_status FROM shops WHERE id = $1")
        .bind(a.id)
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(a_status, "ok");
    assert!(sys.ship_awaiting(&a, 5, None).await > 0);
    assert_eq!(sys.feedback(a.id).await.status.as_str(), "succeeded");
    sys.drain(Duration::from_secs(60)).await;
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

#[sqlx::test(migrations = "../../migrations")]
async fn duplicate_and_concurrent_triggers_confirm_once(pool: PgPool) {
    let mut sys = System::new(pool).await;
    let a = sys.a().clone();
    sys.sim
        .sim()
        .generate_orders_for(spapi_sim::DEFAULT_SELLER_ID, 30, 71, jp());
    sys.start_all();
    assert_eq!(sys.ingest(a.id, WEEK).await.status.as_str(), "succeeded");
    let shipped = sys.ship_awaiting(&a, 30, None).await;
    // The same trigger five times (same message id), and two different ones at once (a
    // scheduler double fire), and two importer triggers for the same window at once.
    let cmd = Command::new(
        a.id,
        Action::ShipmentFeedback,
        CommandParams::ShipmentFeedback {},
        "cron:feedback",
        chrono::Utc::now(),
    );
    let body = serde_json::to_vec(&cmd).unwrap();
    let id = cmd.message_id.to_string();
    for _ in 0..5 {
        sys.publish_raw(Svc::ShipmentFeedback, &body, Some(&id))
            .await;
    }
    sys.trigger(a.id, CommandParams::ShipmentFeedback {}).await;
    sys.trigger(a.id, CommandParams::ShipmentFeedback {}).await;
    sys.trigger(a.id, CommandParams::OrderIngest { mode: WEEK })
        .await;
    sys.trigger(a.id, CommandParams::OrderIngest { mode: WEEK })
        .await;
    sys.drain(Duration::from_secs(90)).await;
    let runs: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT command_id::text, status, error FROM action_runs WHERE action = 'shipment-feedback' ORDER BY started_at",
    )
    .fetch_all(&sys.pool)
    .await
    .unwrap();
    eprintln!(
        "feedback runs: {runs:?}; feeds at Amazon: {}",
        sys.sim.sim().feeds().len()
    );
    assert_eq!(
        sys.count(&format!(
            "SELECT count(*) FROM action_runs WHERE command_id = '{id}' AND status = 'succeeded'"
        ))
        .await,
        1,
        "exactly one effective run for the five copies"
    );
    // No run fails: the importer, status-sync, feedback and the poller lock the instructions
    // they change in one order (Amazon order id), so they cannot deadlock one another (they
    // did, once in five runs, before: ingest's FOR UPDATE against feedback's feed messages).
    for (_, status, error) in &runs {
        assert_ne!(status, "failed", "unexpected failure: {error:?}");
    }
    assert_eq!(
        sys.sim.sim().feeds().len(),
        1,
        "one feed for all the triggers"
    );
    let report = invariants::check(&sys, &Expect::default()).await;
    report.assert_ok();
    assert_eq!(report.confirmed_on_amazon, shipped);
    sys.shutdown().await;
}

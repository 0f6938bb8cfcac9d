//! shipment-feedback against the simulator and real PostgreSQL: crash between Amazon accepting
//! the feed and our commit, reconciliation, and the confirm-shipment strategy.

mod common;

use std::sync::atomic::Ordering;

use common::{Fixture, fast_feedback, fixture, tracking12};
use domain::shop::ShipmentStrategy;
use sqlx::PgPool;

/// Amazon accepts the feed, the process "dies" before recording it; a fresh run finds the feed
/// with getFeeds, records it, and sends nothing twice.
#[sqlx::test(migrations = "../../migrations")]
async fn crash_after_create_feed_is_reconciled_not_resent(pool: PgPool) {
    let fx = fixture(pool, ShipmentStrategy::Feed).await;
    let yamato = fx.delivery_method("yamato", "宅急便", Some("yamato")).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let order = fx.sim_order();
        let t = tracking12(i);
        ids.push((
            fx.shipped_instruction(&order, yamato, &[&t], fx.today())
                .await,
            order.order_id,
            t,
        ));
    }

    let crashing = fx.service(shipment_feedback::Settings {
        lease_ttl: chrono::Duration::milliseconds(300),
        ..fast_feedback()
    });
    crashing
        .fail_points()
        .crash_after_create_feed
        .store(true, Ordering::SeqCst);
    let err = crashing.run(fx.shop.id, None, "test").await.unwrap_err();
    assert!(
        matches!(err, shipment_feedback::RunError::FailPoint(_)),
        "{err}"
    );
    assert_eq!(fx.sim.sim().feeds().len(), 1, "Amazon accepted the feed");
    assert_eq!(
        fx.count("SELECT count(*) FROM feed_submissions WHERE state = 'in_flight'")
            .await,
        1
    );
    for (id, ..) in &ids {
        assert_eq!(fx.api_status(*id).await.0, "awaiting_print");
    }
    tokio::time::sleep(std::time::Duration::from_millis(400)).await; // the dead run's lease expires

    // A fresh process.
    let fresh = fx.service(fast_feedback());
    let report = fresh.run(fx.shop.id, None, "test").await.unwrap();
    assert_eq!(report.reconciled, 1, "{report:?}");
    assert_eq!(report.sent, 0, "{report:?}");
    assert_eq!(fx.sim.sim().feeds().len(), 1, "nothing sent twice");
    let feed_id = fx.sim.sim().feeds()[0].feed_id.clone();
    let recorded: String = sqlx::query_scalar("SELECT amazon_feed_id FROM feed_submissions")
        .fetch_one(&fx.pool)
        .await
        .unwrap();
    assert_eq!(recorded, feed_id);
    for (id, ..) in &ids {
        assert_eq!(fx.api_status(*id).await.0, "printed");
    }
    assert_eq!(
        fx.count("SELECT count(*) FROM api_log WHERE code = 'feed_reconciled'")
            .await,
        1
    );
    assert_eq!(
        fx.count("SELECT count(*) FROM outbox WHERE routing_key = 'feed.submitted'")
            .await,
        1
    );

    // Running again sends nothing either; Amazon shipped each order exactly once.
    let again = fresh.run(fx.shop.id, None, "test").await.unwrap();
    assert_eq!((again.targets, again.sent), (0, 0));
    fx.wait_sim_feeds_done().await;
    assert_eq!(fx.sim.sim().feeds().len(), 1);
    for (_, order_id, t) in &ids {
        let o = fx.sim.sim().order(order_id).unwrap();
        assert_eq!(o.packages.len(), 1, "{order_id}");
        assert_eq!(&o.packages[0].tracking_number, t);
    }
}

/// createFeed fails with an unknown outcome and Amazon has no such feed: the next run checks
/// getFeeds first, finds nothing, and only then sends the shipments again (once).
#[sqlx::test(migrations = "../../migrations")]
async fn unknown_outcome_without_feed_is_sent_again_once(pool: PgPool) {
    let fx = fixture(pool, ShipmentStrategy::Feed).await;
    let id = shipped_with_create_feed_status(&fx, 500).await;
    let service = fx.service(fast_feedback());
    let first = service.run(fx.shop.id, None, "test").await.unwrap();
    assert!(first.continuation, "{first:?}");
    assert_eq!(fx.sim.sim().feeds().len(), 0);
    assert_eq!(fx.api_status(id).await.0, "awaiting_print");
    assert_eq!(
        fx.count("SELECT count(*) FROM feed_submissions WHERE state = 'in_flight'")
            .await,
        1
    );
    // The continuation is scheduled through the outbox, not by holding the message.
    assert_eq!(
        fx.count("SELECT count(*) FROM outbox WHERE routing_key = 'shipment-feedback' AND not_before > now()").await,
        1
    );

    let second = service.run(fx.shop.id, None, "test").await.unwrap();
    assert_eq!((second.released, second.sent), (1, 1), "{second:?}");
    assert_eq!(fx.sim.sim().feeds().len(), 1);
    assert_eq!(fx.api_status(id).await.0, "printed");
}

/// Invalid data is refused before sending: the instruction stays awaiting print with an API-log
/// entry; when no target is valid nothing is sent at all.
#[sqlx::test(migrations = "../../migrations")]
async fn invalid_tracking_numbers_are_refused_before_sending(pool: PgPool) {
    let fx = fixture(pool, ShipmentStrategy::Feed).await;
    let yamato = fx.delivery_method("yamato", "宅急便", Some("yamato")).await;
    let long = "1".repeat(51);
    let bad = [&long[..], "1234-ABCD-9999", "12345"];
    let mut ids = Vec::new();
    for t in bad {
        let order = fx.sim_order();
        ids.push(
            fx.shipped_instruction(&order, yamato, &[t], fx.today())
                .await,
        );
    }
    let report = fx
        .service(fast_feedback())
        .run(fx.shop.id, None, "test")
        .await
        .unwrap();
    assert_eq!((report.targets, report.refused, report.sent), (3, 3, 0));
    assert!(fx.sim.sim().feeds().is_empty());
    for id in ids {
        let (status, error) = fx.api_status(id).await;
        assert_eq!(status, "awaiting_print");
        assert!(error.unwrap().contains("tracking number"));
    }
    assert_eq!(
        fx.count("SELECT count(*) FROM api_log WHERE code = 'invalid_tracking_number' AND level = 'error'").await,
        3
    );
    assert_eq!(fx.count("SELECT count(*) FROM feed_submissions").await, 0);
}

/// Strategy confirm-shipment: one confirmShipment per order, result immediate.
#[sqlx::test(migrations = "../../migrations")]
async fn confirm_shipment_strategy(pool: PgPool) {
    let fx = fixture(pool, ShipmentStrategy::ConfirmShipment).await;
    let yamato = fx.delivery_method("yamato", "宅急便", Some("yamato")).await;
    let post = fx
        .delivery_method("yupack", "ゆうパック", Some("japan_post"))
        .await;
    let a = fx.sim_order();
    let b = fx.sim_order();
    let cancelled = fx.sim_order();
    let ia = fx
        .shipped_instruction(&a, yamato, &[&tracking12(1), &tracking12(2)], fx.today())
        .await;
    let ib = fx
        .shipped_instruction(&b, post, &["12345678901"], fx.today())
        .await;
    let ic = fx
        .shipped_instruction(&cancelled, yamato, &[&tracking12(3)], fx.today())
        .await;
    fx.sim
        .sim()
        .set_order_status(
            &cancelled.order_id,
            spapi_sim::StatusChange::Cancelled {
                cancelled_by: Some("BUYER".into()),
                reason: None,
            },
        )
        .unwrap();

    let report = fx
        .service(fast_feedback())
        .run(fx.shop.id, None, "test")
        .await
        .unwrap();
    assert_eq!((report.sent, report.failed), (2, 1), "{report:?}");
    assert!(
        fx.sim.sim().feeds().is_empty(),
        "no feed with confirm-shipment"
    );
    assert_eq!(fx.api_status(ia).await.0, "shipped");
    assert_eq!(fx.api_status(ib).await.0, "shipped");
    let (status, error) = fx.api_status(ic).await;
    assert_eq!(status, "failed");
    assert!(!error.unwrap().is_empty());

    let pa = fx.sim.sim().order(&a.order_id).unwrap().packages;
    assert_eq!(pa.len(), 1);
    assert_eq!(pa[0].carrier_code, "YamatoTransport");
    assert_eq!(
        pa[0].tracking_number,
        tracking12(1),
        "only the first tracking number"
    );
    let pb = fx.sim.sim().order(&b.order_id).unwrap().packages;
    assert_eq!(
        (pb[0].carrier_code.as_str(), pb[0].carrier_name.as_deref()),
        ("Other", Some("Japan Post"))
    );
    assert_eq!(
        fx.count("SELECT count(*) FROM api_log WHERE code = 'shipment_confirmed'")
            .await,
        2
    );
}

/// confirm-shipment: a crash after Amazon confirmed but before our commit; the next run sends
/// the same package reference again, which edits the shipment instead of adding one.
#[sqlx::test(migrations = "../../migrations")]
async fn confirm_shipment_crash_does_not_add_a_second_package(pool: PgPool) {
    let fx = fixture(pool, ShipmentStrategy::ConfirmShipment).await;
    let yamato = fx.delivery_method("yamato", "宅急便", Some("yamato")).await;
    let o = fx.sim_order();
    let id = fx
        .shipped_instruction(&o, yamato, &[&tracking12(4)], fx.today())
        .await;
    let crashing = fx.service(shipment_feedback::Settings {
        lease_ttl: chrono::Duration::milliseconds(300),
        ..fast_feedback()
    });
    crashing
        .fail_points()
        .crash_after_confirm
        .store(true, Ordering::SeqCst);
    assert!(crashing.run(fx.shop.id, None, "test").await.is_err());
    assert_eq!(fx.api_status(id).await.0, "awaiting_print");
    assert_eq!(fx.sim.sim().order(&o.order_id).unwrap().packages.len(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;

    let report = fx
        .service(fast_feedback())
        .run(fx.shop.id, None, "test")
        .await
        .unwrap();
    assert_eq!((report.sent, report.failed), (1, 0), "{report:?}");
    assert_eq!(fx.api_status(id).await.0, "shipped");
    let packages = fx.sim.sim().order(&o.order_id).unwrap().packages;
    assert_eq!(packages.len(), 1, "one package, confirmed once");
    assert_eq!(packages[0].tracking_number, tracking12(4));
}

/// The same trigger handled twice (a redelivery, or a copy published twice): the second time is
/// a duplicate and leaves no run; a different trigger runs (and finds nothing left to send).
#[sqlx::test(migrations = "../../migrations")]
async fn a_trigger_handled_twice_runs_once(pool: PgPool) {
    let fx = fixture(pool, ShipmentStrategy::Feed).await;
    let yamato = fx.delivery_method("yamato", "宅急便", Some("yamato")).await;
    let order = fx.sim_order();
    fx.shipped_instruction(&order, yamato, &[&tracking12(1)], fx.today())
        .await;
    let service = fx.service(fast_feedback());
    let trigger = uuid::Uuid::now_v7();
    let first = service
        .run(fx.shop.id, Some(trigger), "test")
        .await
        .unwrap();
    assert_eq!((first.sent, first.duplicate), (1, false), "{first:?}");
    let again = service
        .run(fx.shop.id, Some(trigger), "test")
        .await
        .unwrap();
    assert!(again.duplicate && again.run_id.is_none(), "{again:?}");
    let other = service
        .run(fx.shop.id, Some(uuid::Uuid::now_v7()), "test")
        .await
        .unwrap();
    assert_eq!((other.duplicate, other.sent), (false, 0), "{other:?}");
    assert_eq!(fx.count("SELECT count(*) FROM action_runs").await, 2);
    assert_eq!(fx.sim.sim().feeds().len(), 1);
}

/// Amazon refusing `createFeed` for good (400) fails the run (the runner's error policy: the
/// ledger says `failed`, the API log says what to do), queues no retry, and the shipment stays
/// awaiting print for the next trigger. (Before the runner, this run ended `succeeded`.)
#[sqlx::test(migrations = "../../migrations")]
async fn refused_feed_fails_the_run_and_says_what_to_do(pool: PgPool) {
    let fx = fixture(pool, ShipmentStrategy::Feed).await;
    let id = shipped_with_create_feed_status(&fx, 400).await;
    let service = fx.service(fast_feedback());
    let report = service.run(fx.shop.id, None, "test").await.unwrap();
    assert!(!report.continuation, "{report:?}");
    assert!(
        report
            .error
            .as_deref()
            .is_some_and(|e| e.contains("createFeed")),
        "{report:?}"
    );
    assert_eq!(
        fx.count("SELECT count(*) FROM action_runs WHERE status = 'failed'")
            .await,
        1
    );
    assert_eq!(
        fx.count("SELECT count(*) FROM api_log WHERE code = 'api_error' AND level = 'error' AND message LIKE '%trigger the action again%'").await,
        1
    );
    assert_eq!(
        fx.count("SELECT count(*) FROM outbox WHERE routing_key = 'shipment-feedback'")
            .await,
        0
    );
    assert_eq!(fx.api_status(id).await.0, "awaiting_print");
    let again = service.run(fx.shop.id, None, "test").await.unwrap();
    assert_eq!(again.sent, 1, "{again:?}");
}

/// One shipped sagawa instruction, awaiting print, whose next `createFeed` Amazon answers with
/// HTTP `status` (once).
async fn shipped_with_create_feed_status(fx: &Fixture, status: u16) -> uuid::Uuid {
    let sagawa = fx
        .delivery_method("sagawa", "飛脚宅配便", Some("sagawa"))
        .await;
    let order = fx.sim_order();
    let id = fx
        .shipped_instruction(&order, sagawa, &[&tracking12(1)], fx.today())
        .await;
    fx.sim
        .sim()
        .inject_fault(
            "createFeed",
            spapi_sim::Fault::Status { status },
            spapi_sim::FaultTrigger::Count(1),
        )
        .unwrap();
    id
}

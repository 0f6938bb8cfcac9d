//! Faults: simulator fault storms (429, 5xx, garbage JSON, truncated gzip, connection reset),
//! a TCP fault proxy on the SP-API link and on the broker link (latency, reset, blackhole),
//! and crashes between an Amazon call and the commit. The invariant checker runs after each.

use std::sync::atomic::Ordering;
use std::time::Duration;

use domain::window::ImportMode;
use spapi_sim::{Fault, FaultTrigger, MarketplaceMix};
use sqlx::PgPool;
use system_tests::invariants::{self, Expect};
use system_tests::proxy::{FaultProxy, Mode};
use system_tests::slow_import::{SlowImport, wait_instructions};
use system_tests::{Svc, System};

fn jp(pending: f64) -> MarketplaceMix {
    MarketplaceMix {
        jp: 1,
        au: 0,
        sg: 0,
        pending_ratio: pending,
    }
}

const WEEK: ImportMode = ImportMode::Hours { hours: 168 };

fn faulted(sys: &System) -> u64 {
    sys.sim
        .sim()
        .call_counts()
        .values()
        .map(|c| c.faulted)
        .sum()
}

#[sqlx::test(migrations = "../../migrations")]
async fn simulator_fault_storms_lose_and_duplicate_nothing(pool: PgPool) {
    let mut sys = System::new(pool).await;
    let a = sys.a().clone();
    sys.sim
        .sim()
        .generate_orders_for(spapi_sim::DEFAULT_SELLER_ID, 60, 3, jp(0.0));
    let sim = sys.sim.sim().clone();
    let f = |op: &str, fault: Fault, t: FaultTrigger| sim.inject_fault(op, fault, t).unwrap();
    // Import under a 429 storm, 5xx, garbage JSON and a reset.
    f(
        "searchOrders",
        Fault::Status { status: 429 },
        FaultTrigger::Probability(0.3),
    );
    f(
        "searchOrders",
        Fault::Status { status: 503 },
        FaultTrigger::Count(2),
    );
    f(
        "searchOrders",
        Fault::Status { status: 500 },
        FaultTrigger::Count(1),
    );
    f("searchOrders", Fault::MalformedJson, FaultTrigger::Count(1));
    f(
        "searchOrders",
        Fault::ConnectionReset,
        FaultTrigger::Count(1),
    );
    f(
        "lwaToken",
        Fault::Status { status: 503 },
        FaultTrigger::Count(1),
    );
    sys.start_all();
    let id = sys
        .trigger(
            a.id,
            domain::messages::CommandParams::OrderIngest { mode: WEEK },
        )
        .await;
    let run = sys.wait_run(id, Duration::from_secs(90)).await;
    assert_eq!(run.status.as_str(), "succeeded", "{run:?}");
    sys.sim.sim().clear_faults();

    // Shipment feedback and the feed poller under 5xx, 429, resets and truncated gzip.
    assert!(sys.ship_awaiting(&a, 30, None).await >= 20);
    f(
        "createFeedDocument",
        Fault::Status { status: 500 },
        FaultTrigger::Count(1),
    );
    f(
        "createFeed",
        Fault::Status { status: 503 },
        FaultTrigger::Count(2),
    );
    f(
        "getFeed",
        Fault::Status { status: 429 },
        FaultTrigger::Probability(0.3),
    );
    f(
        "getFeedDocument",
        Fault::MalformedJson,
        FaultTrigger::Count(1),
    );
    f(
        "downloadDocument",
        Fault::TruncatedGzip,
        FaultTrigger::Count(2),
    );
    let id = sys
        .trigger(a.id, domain::messages::CommandParams::ShipmentFeedback {})
        .await;
    let run = sys.wait_run(id, Duration::from_secs(90)).await;
    assert_eq!(run.status.as_str(), "succeeded", "{run:?}");
    sys.drain(Duration::from_secs(90)).await;
    sys.sim.sim().clear_faults();
    assert!(
        faulted(&sys) >= 8,
        "faults fired: {:?}",
        sys.sim.sim().call_counts()
    );

    let report = invariants::check(&sys, &Expect::default()).await;
    report.assert_ok();
    assert_eq!(report.orders_expected, 60);
    assert!(report.confirmed_on_amazon >= 20, "{report:?}");
    assert_eq!(
        sys.count("SELECT count(*) FROM feed_submissions WHERE state = 'done'")
            .await,
        sys.sim.sim().feeds().len() as i64,
        "every accepted feed finished here, none marked done on a partial read"
    );
    sys.shutdown().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn fault_proxy_on_the_spapi_link_latency_reset_blackhole(pool: PgPool) {
    let mut sys = System::new(pool).await;
    let a = sys.a().clone();
    sys.sim
        .sim()
        .generate_orders_for(spapi_sim::DEFAULT_SELLER_ID, 80, 5, jp(0.0));
    let proxy = FaultProxy::start(sys.sim.addr()).await.unwrap();
    sys.set_endpoint(a.id, &proxy.http_url()).await;
    sys.start_all();

    // Latency: slow, but complete.
    proxy.set(Mode::Latency(40));
    assert_eq!(sys.ingest(a.id, WEEK).await.status.as_str(), "succeeded");

    // Reset: connections refused during the run, then the link comes back.
    assert!(sys.ship_awaiting(&a, 40, None).await >= 30);
    proxy.set(Mode::Reset);
    let id = sys
        .trigger(a.id, domain::messages::CommandParams::ShipmentFeedback {})
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.set(Mode::Pass);
    let run = sys.wait_run(id, Duration::from_secs(60)).await;
    assert_eq!(run.status.as_str(), "succeeded", "{run:?}");
    sys.drain(Duration::from_secs(60)).await;

    // Blackhole: calls hang until the client's timeout; the link comes back.
    proxy.set(Mode::Blackhole);
    let id = sys
        .trigger(
            a.id,
            domain::messages::CommandParams::InventorySync { full: true },
        )
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.set(Mode::Pass);
    let run = sys.wait_run(id, Duration::from_secs(90)).await;
    assert_eq!(run.status.as_str(), "succeeded", "{run:?}");
    sys.drain(Duration::from_secs(60)).await;
    let st = proxy.stats();
    assert!(st.refused > 0 || st.blackholed > 0, "{st:?}");
    invariants::check(&sys, &Expect::default())
        .await
        .assert_ok();
    sys.shutdown().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn fault_proxy_on_the_broker_link_cut_mid_run(pool: PgPool) {
    let mut sys = System::new(pool).await;
    let a = sys.a().clone();
    sys.sim
        .sim()
        .generate_orders_for(spapi_sim::DEFAULT_SELLER_ID, 60, 8, jp(0.0));
    let broker: std::net::SocketAddr = "127.0.0.1:5672".parse().unwrap();
    let proxy = FaultProxy::start(broker).await.unwrap();
    sys.service_amqp_url = format!("amqp://guest:guest@{}/%2f", proxy.addr());
    sys.start_all();
    let id = sys
        .trigger(
            a.id,
            domain::messages::CommandParams::OrderIngest { mode: WEEK },
        )
        .await;
    // Cut every service's broker connection while the run is going, twice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(700)).await;
    proxy.set(Mode::Reset);
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.set(Mode::Pass);
    let run = sys.wait_run(id, Duration::from_secs(90)).await;
    assert_eq!(run.status.as_str(), "succeeded", "{run:?}");
    assert!(sys.ship_awaiting(&a, 20, None).await > 0);
    proxy.cut();
    let id = sys
        .trigger(a.id, domain::messages::CommandParams::ShipmentFeedback {})
        .await;
    let run = sys.wait_run(id, Duration::from_secs(90)).await;
    assert_eq!(run.status.as_str(), "succeeded", "{run:?}");
    sys.drain(Duration::from_secs(90)).await;
    for svc in Svc::ALL {
        assert!(
            sys.is_running(svc),
            "{} survived the broker cuts",
            svc.name()
        );
    }
    invariants::check(&sys, &Expect::default())
        .await
        .assert_ok();
    sys.shutdown().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn crash_after_amazon_accepted_the_feed_before_the_commit(pool: PgPool) {
    let mut sys = System::new(pool).await;
    let a = sys.a().clone();
    sys.sim
        .sim()
        .generate_orders_for(spapi_sim::DEFAULT_SELLER_ID, 10, 9, jp(0.0));
    sys.start_all();
    assert_eq!(sys.ingest(a.id, WEEK).await.status.as_str(), "succeeded");
    let shipped = sys.ship_awaiting(&a, 10, None).await;
    let fp = sys
        .feedback_fail_points
        .lock()
        .unwrap()
        .clone()
        .expect("fail points");
    fp.crash_after_create_feed.store(true, Ordering::SeqCst);
    sys.trigger(a.id, domain::messages::CommandParams::ShipmentFeedback {})
        .await;
    for _ in 0..100 {
        if !sys.sim.sim().feeds().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The process dies right there: Amazon has the feed, we have an in-flight intent.
    sys.abort(Svc::ShipmentFeedback).await;
    fp.crash_after_create_feed.store(false, Ordering::SeqCst);
    assert_eq!(sys.sim.sim().feeds().len(), 1);
    assert_eq!(
        sys.count("SELECT count(*) FROM feed_submissions WHERE state = 'in_flight'")
            .await,
        1
    );
    sys.expire_leases().await;
    sys.start(Svc::ShipmentFeedback);
    // The trigger comes again (redelivery or the next scheduled run).
    sys.feedback(a.id).await;
    sys.drain(Duration::from_secs(60)).await;
    assert_eq!(sys.sim.sim().feeds().len(), 1, "nothing sent twice");
    let report = invariants::check(&sys, &Expect::default()).await;
    report.assert_ok();
    assert_eq!(report.confirmed_on_amazon, shipped);
    sys.shutdown().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn importer_aborted_mid_run_and_restarted_imports_everything_once(pool: PgPool) {
    let SlowImport {
        mut sys,
        a,
        proxy,
        ingest: id,
    } = SlowImport::start(pool, 120, 4, jp(0.2), 150).await;
    // Abort once some pages are committed, before the run ends.
    wait_instructions(&sys, 20).await;
    sys.abort(Svc::OrderIngest).await;
    let partial = sys
        .count("SELECT count(*) FROM shipping_instructions")
        .await;
    proxy.set(Mode::Pass);
    sys.expire_leases().await;
    sys.start(Svc::OrderIngest);
    // The unacknowledged trigger is redelivered and its run resumed; a later trigger finds
    // nothing new.
    let run = sys.wait_run(id, Duration::from_secs(90)).await;
    eprintln!(
        "aborted after {partial} instructions; resumed run {:?} {}",
        run.status.as_str(),
        run.counts
    );
    assert_eq!(sys.ingest(a.id, WEEK).await.status.as_str(), "succeeded");
    sys.drain(Duration::from_secs(60)).await;
    let report = invariants::check(&sys, &Expect::default()).await;
    report.assert_ok();
    assert_eq!(report.orders_expected, 120);
    sys.shutdown().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn expired_presigned_urls_on_upload_and_download_are_retried(pool: PgPool) {
    let mut sys = System::new(pool).await;
    let a = sys.a().clone();
    sys.sim
        .sim()
        .generate_orders_for(spapi_sim::DEFAULT_SELLER_ID, 10, 13, jp(0.0));
    sys.start_all();
    assert_eq!(sys.ingest(a.id, WEEK).await.status.as_str(), "succeeded");
    let shipped = sys.ship_awaiting(&a, 10, None).await;
    // S3 answers 403 "Request has expired" once on the upload and once on the download.
    let sim = sys.sim.sim();
    sim.inject_fault(
        "uploadFeedDocument",
        Fault::Status { status: 403 },
        FaultTrigger::Count(1),
    )
    .unwrap();
    sim.inject_fault(
        "downloadDocument",
        Fault::Status { status: 403 },
        FaultTrigger::Count(1),
    )
    .unwrap();
    let id = sys
        .trigger(a.id, domain::messages::CommandParams::ShipmentFeedback {})
        .await;
    sys.wait_run(id, Duration::from_secs(60)).await;
    // The scheduler's next trigger (a continuation may already have done it).
    sys.feedback(a.id).await;
    sys.drain(Duration::from_secs(60)).await;
    let auth: String = sqlx::query_scalar("SELECT auth_status FROM shops WHERE id = $1")
        .bind(a.id)
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(
        auth, "ok",
        "an expired S3 URL is not an authorization problem"
    );
    let report = invariants::check(&sys, &Expect::default()).await;
    report.assert_ok();
    assert_eq!(report.confirmed_on_amazon, shipped);
    sys.shutdown().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn amazon_clock_ten_minutes_ahead_misses_no_order(pool: PgPool) {
    let mut sys = System::new(pool).await;
    let a = sys.a().clone();
    sys.sim
        .sim()
        .generate_orders_for(spapi_sim::DEFAULT_SELLER_ID, 20, 17, jp(0.0));
    sys.start_all();
    let first = sys.ingest(a.id, ImportMode::Differential).await;
    assert_eq!(first.status.as_str(), "succeeded", "{first:?}");
    // Amazon's clock runs 10 minutes ahead of ours from now on; orders keep coming, stamped
    // with Amazon's time (in our future).
    sys.sim.sim().advance_clock(Duration::from_secs(600));
    let mut ahead = vec![];
    for _ in 0..3 {
        ahead.push(
            sys.sim
                .sim()
                .create_order(spapi_sim::OrderSpec {
                    status: Some(spapi_sim::OrderStatus::Unshipped),
                    ..Default::default()
                })
                .unwrap(),
        );
        let run = sys.ingest(a.id, ImportMode::Differential).await;
        assert_eq!(run.status.as_str(), "succeeded", "{run:?}");
    }
    sys.drain(Duration::from_secs(60)).await;
    // Orders stamped in our future are not due yet; the cursor must not have jumped past them
    // (a later differential run picks them up), and nothing older is missing.
    let watermark: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "SELECT watermark FROM action_runs WHERE action = 'order-ingest' AND status = 'succeeded' AND watermark IS NOT NULL ORDER BY started_at DESC LIMIT 1",
    )
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    let mut not_yet = vec![];
    for o in &ahead {
        let here = sys
            .count(&format!(
                "SELECT count(*) FROM shipping_instructions WHERE amazon_order_id = '{}'",
                o.order_id
            ))
            .await;
        if here == 0 {
            assert!(
                o.created_time >= watermark,
                "order {} ({}) is behind the cursor {watermark}: it would never be imported",
                o.order_id,
                o.created_time
            );
            not_yet.push(o.order_id.clone());
        }
    }
    eprintln!(
        "Amazon 10 min ahead: {} of 3 new orders not due yet (cursor {watermark})",
        not_yet.len()
    );
    let report = invariants::check(
        &sys,
        &Expect {
            not_imported: not_yet,
            ..Default::default()
        },
    )
    .await;
    report.assert_ok();
    assert!(report.orders_expected >= 20);
    sys.shutdown().await;
}

/// Found by the load run: an order-ingest process killed while it executes a *continuation*
/// (the run waited for Amazon's quota; here the continuation's call to Amazon hangs in a
/// blackhole when the process is killed) used to leave the run `running` for good. Now the redelivered continuation retries at the dead
/// holder's lease expiry and then takes the run over from its cursor
/// (`store::runs::claim_continuation`).
#[sqlx::test(migrations = "../../migrations")]
async fn importer_killed_during_a_continuation_resumes_the_run(pool: PgPool) {
    let SlowImport {
        mut sys,
        a: _,
        proxy,
        ingest: id,
    } = SlowImport::start(pool, 200, 6, jp(0.0), 100).await;
    wait_instructions(&sys, 20).await;
    // Amazon's quota is spent: the next page waits longer than the limiter may sleep, so the
    // run stores its cursor and schedules a continuation.
    let rate: f64 = sqlx::query_scalar(
        "UPDATE rate_buckets SET tokens = 0, updated_at = clock_timestamp() WHERE operation = 'searchOrders' RETURNING rate",
    )
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    eprintln!(
        "searchOrders bucket rate {rate}/s: the next page waits {:.1} s",
        1.0 / rate
    );
    let status = |sys: &System| {
        let pool = sys.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT status FROM action_runs WHERE command_id = $1 ORDER BY started_at LIMIT 1",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap_or_default()
        }
    };
    let mut waited = false;
    for _ in 0..6000 {
        if status(&sys).await == "waiting" {
            waited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(waited, "the run waited for the quota");
    // The continuation comes when the quota allows the next page; its call to Amazon then
    // hangs (blackhole), so the importer is killed while it executes the continuation.
    let calls_before = sys
        .sim
        .sim()
        .call_counts()
        .get("searchOrders")
        .map_or(0, |c| c.calls);
    proxy.set(Mode::Blackhole);
    tokio::time::sleep(Duration::from_secs_f64(1.0 / rate + 2.0)).await;
    let s = status(&sys).await;
    assert!(
        s == "waiting" || s == "running",
        "the continuation's page is in flight, not finished: {s}"
    );
    assert_eq!(
        sys.sim
            .sim()
            .call_counts()
            .get("searchOrders")
            .map_or(0, |c| c.calls),
        calls_before,
        "no page got through the blackhole"
    );
    sys.abort(Svc::OrderIngest).await;
    proxy.set(Mode::Pass);
    sys.expire_leases().await;
    sys.start(Svc::OrderIngest);
    let restarted = std::time::Instant::now();
    // The remaining pages are quota-bound (one every 1/rate s): about 27 s on a quiet machine.
    let run = sys.wait_run(id, Duration::from_secs(90)).await;
    eprintln!("run finished {:?} after the restart", restarted.elapsed());
    assert_eq!(run.status.as_str(), "succeeded", "{run:?}");
    sys.drain(Duration::from_secs(60)).await;
    invariants::check(&sys, &Expect::default())
        .await
        .assert_ok();
    sys.shutdown().await;
}

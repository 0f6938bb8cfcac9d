//! The five services as real processes, SIGKILLed by process id in the middle of their work and
//! restarted; a fail point aborts shipment-feedback right after Amazon accepted the feed.
//! The invariant checker finds nothing missing and nothing twice.

use std::time::Duration;

use domain::messages::CommandParams;
use domain::window::ImportMode;
use spapi_sim::MarketplaceMix;
use sqlx::PgPool;
use system_tests::invariants::{self, Expect};
use system_tests::processes::{self, Proc};
use system_tests::{Svc, System};

#[sqlx::test(migrations = "../../migrations")]
async fn services_sigkilled_mid_work_and_restarted_lose_and_duplicate_nothing(pool: PgPool) {
    let sys = System::new(pool).await;
    let a = sys.a().clone();
    sys.sim.sim().generate_orders_for(
        spapi_sim::DEFAULT_SELLER_ID,
        300,
        21,
        MarketplaceMix {
            jp: 1,
            au: 0,
            sg: 0,
            pending_ratio: 0.2,
        },
    );
    let mut procs: Vec<Proc> = Svc::ALL
        .iter()
        .filter(|s| **s != Svc::ShipmentFeedback)
        .map(|s| processes::spawn(&sys, *s, &[]))
        .collect();
    let result = async {
        // 1. Kill the importer while it pages through 300 orders; restart it.
        let ingest = sys
            .trigger(
                a.id,
                CommandParams::OrderIngest {
                    mode: ImportMode::Hours { hours: 168 },
                },
            )
            .await;
        for _ in 0..200 {
            if sys
                .count("SELECT count(*) FROM shipping_instructions")
                .await
                > 0
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let i = procs
            .iter()
            .position(|p| p.svc == Svc::OrderIngest)
            .unwrap();
        let killed = procs.remove(i);
        let pid = killed.pid();
        killed.kill().await;
        let partial = sys
            .count("SELECT count(*) FROM shipping_instructions")
            .await;
        eprintln!("order-ingest (pid {pid:?}) SIGKILLed after {partial} of 300 instructions");
        sys.expire_leases().await;
        procs.push(processes::spawn(&sys, Svc::OrderIngest, &[]));
        let run = sys.wait_run(ingest, Duration::from_secs(60)).await;
        assert_eq!(run.status.as_str(), "succeeded", "{run:?}");

        // 2. Payments arrive; status-sync is killed right after its trigger, restarted.
        for o in sys.sim.sim().orders() {
            if o.status == spapi_sim::OrderStatus::Pending {
                sys.sim
                    .sim()
                    .set_order_status(&o.order_id, spapi_sim::StatusChange::Unshipped)
                    .unwrap();
            }
        }
        let sync = sys
            .trigger(
                a.id,
                CommandParams::StatusSync {
                    mode: Default::default(),
                },
            )
            .await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        let i = procs.iter().position(|p| p.svc == Svc::StatusSync).unwrap();
        procs.remove(i).kill().await;
        sys.expire_leases().await;
        procs.push(processes::spawn(&sys, Svc::StatusSync, &[]));
        let run = sys.wait_run(sync, Duration::from_secs(60)).await;
        assert_eq!(run.status.as_str(), "succeeded", "{run:?}");

        // 3. Shipment feedback aborts right after Amazon accepted the feed (fail point),
        //    restarted without it: reconciled, nothing sent twice.
        let shipped = sys.ship_awaiting(&a, 100, None).await;
        let mut crashing = processes::spawn(
            &sys,
            Svc::ShipmentFeedback,
            &[(shipment_feedback::FAIL_POINT_ENV, "crash_after_create_feed")],
        );
        sys.trigger(a.id, CommandParams::ShipmentFeedback {}).await;
        let status = tokio::time::timeout(Duration::from_secs(30), crashing.child.wait())
            .await
            .expect("the service dies at the fail point")
            .unwrap();
        assert!(!status.success());
        assert_eq!(sys.sim.sim().feeds().len(), 1, "Amazon accepted the feed");
        sys.expire_leases().await;
        procs.push(processes::spawn(&sys, Svc::ShipmentFeedback, &[]));
        sys.drain(Duration::from_secs(120)).await;
        assert_eq!(sys.sim.sim().feeds().len(), 1, "nothing sent twice");
        let report = invariants::check(&sys, &Expect::default()).await;
        report.assert_ok();
        assert_eq!(report.orders_expected, 300);
        assert_eq!(report.confirmed_on_amazon, shipped);
    }
    .await;
    for p in procs {
        p.kill().await;
    }
    sys.cleanup_bus().await;
    result
}

//! The load run of issue 11: 20,000 orders imported and 5,000 shipments confirmed while one
//! service process is SIGKILLed every 30 seconds (round robin, restarted at once) and RabbitMQ
//! is restarted once; then the invariant checker. Ignored (minutes long, restarts the broker):
//!
//! ```sh
//! cargo build -p order-ingest -p status-sync -p shipment-feedback -p feed-poller -p inventory-sync
//! cargo nextest run -p system-tests --run-ignored only -E 'test(load_run)' --no-capture
//! LOAD_RATE_SCALE=100 cargo nextest run …   # a longer run: more kills during the import
//! ```

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use domain::messages::CommandParams;
use domain::window::ImportMode;
use spapi_sim::MarketplaceMix;
use sqlx::PgPool;
use system_tests::invariants::{self, Expect};
use system_tests::processes::{self, Proc, ProcEnv};
use system_tests::{Svc, System};

const ORDERS: usize = 20_000;
const SHIPMENTS: i64 = 5_000;
const KILL_EVERY: Duration = Duration::from_secs(30);

fn rabbitmqctl(args: &[&str]) -> bool {
    Command::new("rabbitmqctl")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

async fn imported(sys: &System) -> i64 {
    sys.count("SELECT count(*) FROM shipping_instructions")
        .await
}

fn confirmed(sys: &System) -> usize {
    sys.sim
        .sim()
        .orders()
        .iter()
        .filter(|o| !o.packages.is_empty())
        .count()
}

#[sqlx::test(migrations = "../../migrations")]
#[ignore = "load run: several minutes, kills services and restarts RabbitMQ (runs alone: load_run override in .config/nextest.toml)"]
async fn load_run_20k_orders_5k_shipments_kill_every_30s_one_broker_stop(pool: PgPool) {
    let sys = System::new(pool).await;
    let a = sys.a().clone();
    let t0 = Instant::now();
    sys.sim.sim().generate_orders_for(
        spapi_sim::DEFAULT_SELLER_ID,
        ORDERS,
        2026,
        MarketplaceMix {
            jp: 1,
            au: 0,
            sg: 0,
            pending_ratio: 0.0,
        },
    );
    // Amazon's quota scaled ×1000 by default (the simulator does not limit): 20,000 orders in
    // about a minute. LOAD_RATE_SCALE=100 makes the import take minutes, so that many more
    // kills land in it.
    let rate_scale: f64 = std::env::var("LOAD_RATE_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|s: &f64| s.is_finite() && *s > 0.0)
        .unwrap_or(1000.0);
    eprintln!("LOAD rate scale ×{rate_scale}");
    let pe = ProcEnv {
        rate_scale,
        ..ProcEnv::of(&sys)
    };
    let procs: Arc<tokio::sync::Mutex<Vec<Proc>>> = Arc::new(tokio::sync::Mutex::new(
        Svc::ALL
            .iter()
            .map(|s| processes::spawn_with(&pe, *s, &[]))
            .collect(),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicU32::new(0));
    let killer = {
        let (procs, stop, kills, pe, pool) = (
            procs.clone(),
            stop.clone(),
            kills.clone(),
            pe.clone(),
            sys.pool.clone(),
        );
        tokio::spawn(async move {
            let mut next = 0usize;
            let mut broker_restarted = false;
            let started = Instant::now();
            loop {
                tokio::time::sleep(KILL_EVERY).await;
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let svc = Svc::ALL[next % Svc::ALL.len()];
                next += 1;
                let mut ps = procs.lock().await;
                if let Some(i) = ps.iter().position(|p| p.svc == svc) {
                    let p = ps.remove(i);
                    let pid = p.pid();
                    p.kill().await;
                    kills.fetch_add(1, Ordering::SeqCst);
                    // The lease of the run it was executing would expire after its TTL;
                    // expire it now. (A waiting run keeps its lease between continuations.)
                    if let Some(pid) = pid {
                        let _ = sqlx::query("DELETE FROM action_leases l WHERE holder = $1 AND EXISTS (SELECT 1 FROM action_runs r WHERE r.id = l.run_id AND r.status = 'running')")
                            .bind(format!("{}@{pid}", svc.name()))
                            .execute(&pool)
                            .await;
                    }
                    eprintln!(
                        "[{:>4}s] SIGKILL {} (pid {pid:?}), restarted",
                        started.elapsed().as_secs(),
                        svc.name()
                    );
                    ps.push(processes::spawn_with(&pe, svc, &[]));
                }
                drop(ps);
                if !broker_restarted && started.elapsed() > Duration::from_secs(25) {
                    broker_restarted = true;
                    eprintln!("[{:>4}s] rabbitmqctl stop_app", started.elapsed().as_secs());
                    assert!(rabbitmqctl(&["stop_app"]));
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    assert!(rabbitmqctl(&["start_app"]) && rabbitmqctl(&["await_startup"]));
                    eprintln!("[{:>4}s] broker back", started.elapsed().as_secs());
                }
            }
        })
    };

    let result = async {
        // The scheduler (CronJob) fires the import every 60 s until the window is in, as in
        // production; a run stranded by a kill is picked up by the next trigger.
        let hours = CommandParams::OrderIngest { mode: ImportMode::Hours { hours: 168 } };
        let mut triggers = 0;
        let deadline = Instant::now() + Duration::from_secs(1800);
        loop {
            sys.trigger(a.id, hours.clone()).await;
            triggers += 1;
            let until = Instant::now() + Duration::from_secs(60);
            while Instant::now() < until && imported(&sys).await < ORDERS as i64 {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            if imported(&sys).await >= ORDERS as i64 {
                break;
            }
            assert!(Instant::now() < deadline, "import not complete after 30 minutes");
        }
        let t_import = t0.elapsed();
        eprintln!("import: {} instructions after {triggers} trigger(s) in {t_import:?}", imported(&sys).await);
        let shipped = sys.ship_awaiting(&a, SHIPMENTS, None).await;
        let t_ship = t0.elapsed();
        let mut fb_triggers = 0;
        loop {
            sys.trigger(a.id, CommandParams::ShipmentFeedback {}).await;
            fb_triggers += 1;
            let until = Instant::now() + Duration::from_secs(60);
            while Instant::now() < until && confirmed(&sys) < shipped {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            if confirmed(&sys) >= shipped {
                break;
            }
            assert!(Instant::now() < deadline, "confirmations not complete after 30 minutes");
        }
        let t_confirm = t0.elapsed();
        eprintln!("confirmed {} after {fb_triggers} feedback trigger(s) at {t_confirm:?}", confirmed(&sys));
        stop.store(true, Ordering::SeqCst);
        sys.drain(Duration::from_secs(1200)).await;
        let report = invariants::check(&sys, &Expect::default()).await;
        let stranded = sys
            .count("SELECT count(*) FROM action_runs r WHERE status = 'running' AND NOT EXISTS (SELECT 1 FROM action_leases l WHERE l.run_id = r.id)")
            .await;
        eprintln!(
            "LOAD FIGURES: orders expected {} / instructions {} / shipped {shipped} / confirmed on Amazon {} / feeds {} / kills {} / import triggers {triggers} / feedback triggers {fb_triggers} / runs stranded 'running' {stranded} / import done at {:?} / shipped at {:?} / confirmed at {:?} / total {:?} / violations {}",
            report.orders_expected,
            report.instructions,
            report.confirmed_on_amazon,
            sys.sim.sim().feeds().len(),
            kills.load(Ordering::SeqCst),
            t_import,
            t_ship,
            t_confirm,
            t0.elapsed(),
            report.violations.len()
        );
        eprintln!("calls: {:?}", sys.sim.sim().call_counts());
        report.assert_ok();
        assert_eq!(report.orders_expected, ORDERS);
        assert_eq!(report.confirmed_on_amazon, shipped);
    }
    .await;
    stop.store(true, Ordering::SeqCst);
    killer.abort();
    for p in procs.lock().await.drain(..) {
        p.kill().await;
    }
    sys.cleanup_bus().await;
    result
}

//! Real RabbitMQ and PostgreSQL restarts under the running system (serial nextest groups
//! `broker-restart` and `db-restart`, see `.config/nextest.toml`), and killed database sessions.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use domain::messages::CommandParams;
use domain::window::ImportMode;
use spapi_sim::MarketplaceMix;
use sqlx::PgPool;
use system_tests::Svc;
use system_tests::invariants::{self, Expect};
use system_tests::proxy::Mode;
use system_tests::slow_import::{SlowImport, wait_instructions};

const WEEK: ImportMode = ImportMode::Hours { hours: 168 };

fn jp() -> MarketplaceMix {
    MarketplaceMix {
        jp: 1,
        au: 0,
        sg: 0,
        pending_ratio: 0.0,
    }
}

fn run(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Stops the RabbitMQ app; `Drop` and a safety process (90 s) start it again.
struct StoppedBroker {
    safety: Option<Child>,
}

impl StoppedBroker {
    fn stop() -> StoppedBroker {
        let safety = Command::new("sh")
            .arg("-c")
            .arg("sleep 90; rabbitmqctl start_app >/dev/null 2>&1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        assert!(run("rabbitmqctl", &["stop_app"]), "rabbitmqctl stop_app");
        StoppedBroker { safety }
    }

    fn start(&mut self) -> bool {
        let ok = run("rabbitmqctl", &["start_app"]) && run("rabbitmqctl", &["await_startup"]);
        if let Some(mut s) = self.safety.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        ok
    }
}

impl Drop for StoppedBroker {
    fn drop(&mut self) {
        if self.safety.is_some() {
            let _ = self.start();
        }
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn broker_restart_mid_import_with_triggers_while_down(pool: PgPool) {
    let SlowImport {
        sys,
        a,
        proxy,
        ingest,
    } = SlowImport::start(pool, 300, 31, jp(), 100).await;
    wait_instructions(&sys, 20).await;
    let mut broker = StoppedBroker::stop();
    // The WMS keeps sending triggers: they wait in the outbox.
    let during = [
        sys.trigger(a.id, CommandParams::InventorySync { full: true })
            .await,
        sys.trigger(
            a.id,
            CommandParams::StatusSync {
                mode: Default::default(),
            },
        )
        .await,
    ];
    tokio::time::sleep(Duration::from_secs(4)).await;
    let backlog = sys
        .count("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        .await;
    assert!(
        backlog >= 2,
        "outbox holds the triggers while the broker is down ({backlog})"
    );
    assert!(broker.start(), "rabbitmqctl start_app");
    proxy.set(Mode::Pass);
    let run = sys.wait_run(ingest, Duration::from_secs(120)).await;
    assert_eq!(run.status.as_str(), "succeeded", "{run:?}");
    for id in during {
        for _ in 0..600 {
            if sys
                .count(&format!(
                    "SELECT count(*) FROM action_runs WHERE command_id = '{id}' AND status NOT IN ('running', 'waiting')"
                ))
                .await
                > 0
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut queues = vec![];
        for svc in Svc::ALL {
            queues.push((
                svc.name(),
                sys.queue_len(&sys.topology.queue(svc.name())).await,
                sys.is_running(svc),
            ));
        }
        let sent: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT routing_key, sent_at::text FROM outbox WHERE id = $1")
                .bind(id)
                .fetch_all(&sys.pool)
                .await
                .unwrap_or_default();
        eprintln!(
            "after the restart, trigger {id}: outbox {sent:?}, queues (ready, task alive) {queues:?}"
        );
        let r = sys.wait_run(id, Duration::from_secs(5)).await;
        assert_eq!(r.status.as_str(), "succeeded", "{r:?}");
    }
    sys.drain(Duration::from_secs(120)).await;
    for svc in Svc::ALL {
        assert!(
            sys.is_running(svc),
            "{} survived the broker restart",
            svc.name()
        );
    }
    let report = invariants::check(&sys, &Expect::default()).await;
    report.assert_ok();
    assert_eq!(report.orders_expected, 300);
    sys.shutdown().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn db_restart_immediate_mid_import(pool: PgPool) {
    let SlowImport {
        sys,
        a,
        proxy,
        ingest,
    } = SlowImport::start(pool, 300, 41, jp(), 100).await;
    wait_instructions(&sys, 20).await;
    assert!(
        run(
            "pg_ctlcluster",
            &["15", "main", "restart", "-m", "immediate"]
        ),
        "pg_ctlcluster restart"
    );
    sys.wait_db(Duration::from_secs(60)).await;
    proxy.set(Mode::Pass);
    let run = sys.wait_run(ingest, Duration::from_secs(120)).await;
    eprintln!(
        "after the restart: run {} {:?}",
        run.status.as_str(),
        run.error
    );
    // Whatever the first run's fate, a repeat of the trigger completes the window.
    if run.status.as_str() != "succeeded" {
        let again = sys.ingest(a.id, WEEK).await;
        assert_eq!(again.status.as_str(), "succeeded", "{again:?}");
    }
    sys.drain(Duration::from_secs(120)).await;
    let report = invariants::check(&sys, &Expect::default()).await;
    report.assert_ok();
    assert_eq!(report.orders_expected, 300);
    sys.shutdown().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn database_sessions_terminated_mid_transaction(pool: PgPool) {
    let SlowImport {
        sys,
        a,
        proxy,
        ingest,
    } = SlowImport::start(pool, 200, 51, jp(), 60).await;
    // Kill every other session of this database, three times during the import.
    let mut killed = 0i64;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()) t",
        )
        .fetch_one(&sys.pool)
        .await
        .unwrap_or(0);
        killed += n;
    }
    eprintln!("terminated {killed} sessions");
    assert!(killed > 0);
    proxy.set(Mode::Pass);
    sys.wait_db(Duration::from_secs(30)).await;
    let run = sys.wait_run(ingest, Duration::from_secs(120)).await;
    eprintln!("run {} {:?}", run.status.as_str(), run.error);
    if run.status.as_str() != "succeeded" {
        assert_eq!(sys.ingest(a.id, WEEK).await.status.as_str(), "succeeded");
    }
    sys.drain(Duration::from_secs(120)).await;
    let report = invariants::check(&sys, &Expect::default()).await;
    report.assert_ok();
    assert_eq!(report.orders_expected, 200);
    sys.shutdown().await;
}

//! Must show: SIGTERM to a service binary in the middle of a run hands the run over. The real
//! `order-ingest` binary runs as a child process against an embedded simulator slowed down by
//! injected latency; it gets SIGTERM when a run has committed some of its pages, stops after the
//! page in hand (the run `waiting`, a continuation in the outbox), exits 0 within the grace
//! period, and after a restart the run goes on from its cursor and nothing is lost: every
//! simulator order is imported exactly once, the run succeeded once, no message is left in the
//! queue or the dead-letter queue and no outbox row is left unsent. The same with SIGKILL (a
//! crash) shows the other path: the trigger is redelivered and the run resumed from its cursor.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bus::Topology;
use common::*;
use spapi_sim::{Fault, FaultTrigger, SimConfig};
use sqlx::PgPool;

const ORDERS: usize = 40;
const PAGE_SIZE: &str = "5";
const LATENCY_MS: u64 = 400;
/// Shorter than the Deployment's terminationGracePeriodSeconds (120 s).
const GRACE: Duration = Duration::from_secs(20);
const RATE_SCALE: &str = "1000";

/// The `order-ingest` binary of this workspace's target directory. `scripts/test`
/// (`cargo nextest run --workspace`) has built every binary before any test runs; it is built
/// here only when missing (this crate's tests run alone), because a `cargo build -p` resolves
/// features for one package and would rebuild shared dependencies a second time.
fn service_binary() -> PathBuf {
    // This test runs from <target>/<profile>/deps/; the binary goes to <target>/<profile>/.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join(format!("order-ingest{}", std::env::consts::EXE_SUFFIX));
    if bin.exists() {
        return bin;
    }
    // `cargo` from PATH (rustup's proxy, honouring rust-toolchain.toml): `$CARGO` may be another
    // toolchain's cargo, whose builds would invalidate the shared target directory. The
    // variables cargo set for this test are not passed on.
    let mut build = Command::new("cargo");
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k == "CARGO" || k.starts_with("CARGO_PKG_") || k.starts_with("CARGO_MANIFEST_") {
            build.env_remove(&*k);
        }
    }
    let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
    build.args([
        "build",
        "--quiet",
        "-p",
        "order-ingest",
        "--bin",
        "order-ingest",
    ]);
    match profile {
        "debug" => {}
        "release" => {
            build.arg("--release");
        }
        other => {
            build.args(["--profile", other]);
        }
    }
    let status = build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo build runs");
    assert!(status.success(), "cargo build -p order-ingest failed");
    assert!(bin.exists(), "{} not found", bin.display());
    bin
}

struct Service {
    child: Child,
    log: PathBuf,
}

impl Service {
    fn start(bin: &PathBuf, pool: &PgPool, prefix: &str, log: PathBuf) -> Service {
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new(bin)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url(pool))
            .env("AMQP_URL", amqp_url())
            .env("BUS_PREFIX", prefix)
            .env("CONNECTOR_ENCRYPTION_KEYS", TEST_KEYS_ENV)
            .env("SPAPI_RATE_SCALE", RATE_SCALE)
            .env("SPAPI_MAX_LIMITER_WAIT_MS", "2000")
            .env("INGEST_PAGE_SIZE", PAGE_SIZE)
            .env("ADMIN_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("service starts");
        Service { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` and waits for the exit; returns the exit code (`None`: killed by a
    /// signal) and how long it took.
    async fn terminate(&mut self, signal: Signal) -> (Option<i32>, Duration) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([signal.flag(), &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -TERM {pid}");
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), started.elapsed());
            }
            if started.elapsed() > GRACE {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "service did not exit within {GRACE:?} of {signal:?}; log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn scalar(pool: &PgPool, sql: &'static str, shop_id: uuid::Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(shop_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// Graceful shutdown (Kubernetes: rollout, scale-down, drain).
    Term,
    /// A crash (OOM kill, node loss): nothing runs after it.
    Kill,
}

impl Signal {
    fn flag(self) -> &'static str {
        match self {
            Signal::Term => "-TERM",
            Signal::Kill => "-KILL",
        }
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn sigterm_mid_run_hands_the_run_over_and_loses_nothing(pool: PgPool) {
    scenario(pool, Signal::Term).await;
}

/// The same run killed with SIGKILL instead: the unacknowledged trigger is redelivered to the
/// next instance, which resumes the run from its stored cursor; still nothing lost or doubled.
#[sqlx::test(migrations = "../../migrations")]
async fn sigkill_mid_run_is_redelivered_and_resumed_and_loses_nothing(pool: PgPool) {
    scenario(pool, Signal::Kill).await;
}

async fn scenario(pool: PgPool, signal: Signal) {
    let built = Instant::now();
    let bin = service_binary();
    eprintln!("service binary ready in {:?}", built.elapsed());
    let started = Instant::now();
    let sim = spapi_sim::spawn(SimConfig {
        rate_scale: 1000.0,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let orders = sim.sim().generate_orders(ORDERS, 21, JP_ONLY);
    assert_eq!(orders.len(), ORDERS);
    // Every page takes LATENCY_MS: the run (8 pages) is in flight for a few seconds.
    sim.sim()
        .inject_fault(
            "searchOrders",
            Fault::Latency { ms: LATENCY_MS },
            FaultTrigger::Probability(1.0),
        )
        .unwrap();
    let shop_id = insert_shop(&pool, &sim.base_url()).await;

    let prefix = unique_prefix(if signal == Signal::Term {
        "sigterm"
    } else {
        "sigkill"
    });
    let topology = Topology::new(prefix.clone(), bus::DEFAULT_DELIVERY_LIMIT);
    let amqp = bus::connect(&amqp_url(), "obs sigterm test").await.unwrap();
    {
        let ch = amqp.create_channel().await.unwrap();
        topology.declare_exchanges(&ch).await.unwrap();
        topology
            .declare_service(&ch, order_ingest::ACTION, &[])
            .await
            .unwrap();
        // The events must be routable: a tap stands in for the services consuming them.
        topology
            .declare_service(&ch, "events-tap", &["order.#"])
            .await
            .unwrap();
    }
    let logs = std::env::temp_dir().join(prefix.trim_end_matches('.'));
    std::fs::create_dir_all(&logs).unwrap();

    let outcome = async {
        let mut first = Service::start(&bin, &pool, &prefix, logs.join("first.log"));
        let cmd = ingest_trigger(shop_id);
        enqueue(&pool, &topology, &cmd).await;

        // Mid-run: the run is running and has committed at least one page, not all.
        let pages = eventually("run in flight", Duration::from_secs(20), || async {
            let row: Option<(String, i64)> = sqlx::query_as(
                "SELECT status, coalesce((counts->>'pages')::bigint, 0) FROM action_runs WHERE command_id = $1",
            )
            .bind(cmd.message_id)
            .fetch_optional(&pool)
            .await
            .unwrap();
            match row {
                Some((status, pages)) if status == "running" && pages >= 1 => Some(pages),
                _ => None,
            }
        })
        .await;
        let total_pages = ORDERS.div_ceil(PAGE_SIZE.parse().unwrap()) as i64;
        assert!(pages < total_pages, "{signal:?} must arrive mid-run");
        let (code, took) = first.terminate(signal).await;
        let first_log = first.log();
        eprintln!(
            "first service exited ({code:?}) {took:?} after {signal:?} (run was at page {pages}/{total_pages})"
        );
        if signal == Signal::Term {
            assert_eq!(code, Some(0), "exit code after SIGTERM; log:\n{first_log}");
            assert!(
                first_log.contains("shutdown requested"),
                "graceful shutdown logged:\n{first_log}"
            );
        } else {
            assert_eq!(code, None, "killed by the signal");
        }

        let (status, imported): (String, i64) = sqlx::query_as(
            "SELECT status, coalesce((counts->>'new')::bigint, 0) FROM action_runs WHERE command_id = $1",
        )
        .bind(cmd.message_id)
        .fetch_one(&pool)
        .await
        .unwrap();
        let unsent: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
        // Settled: a closed consumer's unacknowledged message is back in the queue.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let queued = queue_depth(&amqp, &topology.queue(order_ingest::ACTION)).await;
        eprintln!(
            "after the first shutdown: run {status} ({imported} new), {queued} message(s) queued, {unsent} outbox row(s) unsent"
        );
        // SIGTERM: the run stops after the page in hand and hands itself over — `waiting`, its
        // trigger acknowledged, a continuation in the outbox for the next instance
        // (`runtime::job::request_shutdown`).
        // The process's own relay may already have published the continuation before it
        // stopped (then it waits in the queue, not in the outbox): either way exactly one, and
        // nothing else in the queue (the trigger was acknowledged).
        if signal == Signal::Term {
            let (waiting, relayed): (i64, i64) = sqlx::query_as(
                "SELECT count(*) FILTER (WHERE o.sent_at IS NULL), count(*) FILTER (WHERE o.sent_at IS NOT NULL)
                   FROM outbox o JOIN action_runs r
                     ON o.payload->'params'->>'kind' = 'continue' AND o.payload->'params'->>'run_id' = r.id::text
                  WHERE r.command_id = $1",
            )
            .bind(cmd.message_id)
            .fetch_one(&pool)
            .await
            .unwrap();
            assert_eq!(
                (status.as_str(), waiting + relayed, queued),
                ("waiting", 1, relayed as u32),
                "a run stopped by SIGTERM is handed over (one continuation, in the outbox or relayed); log:\n{first_log}"
            );
            assert!(unsent >= waiting, "the continuation waits in the outbox");
            assert!(
                first_log.contains("the run goes on in the next process"),
                "hand-over logged:\n{first_log}"
            );
        }
        if signal == Signal::Kill {
            assert_eq!(
                (status.as_str(), queued),
                ("running", 1),
                "a killed run is handed back"
            );
        }

        // Started again, the service finishes what is left (redelivery, outbox rows).
        let mut second = Service::start(&bin, &pool, &prefix, logs.join("second.log"));
        // Outbox rows the killed process's relay had claimed but not marked sent are taken over
        // once their claim expires (`RelayConfig::claim_ttl`), so allow for that.
        let settle = bus::RelayConfig::default().claim_ttl + Duration::from_secs(20);
        eventually("everything settled", settle, || async {
            let done: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM action_runs WHERE command_id = $1 AND status = 'succeeded'",
            )
            .bind(cmd.message_id)
            .fetch_one(&pool)
            .await
            .unwrap();
            let unsent: i64 =
                sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            (done == 1 && unsent == 0).then_some(())
        })
        .await;
        let (code, _) = second.terminate(Signal::Term).await;
        assert_eq!(code, Some(0), "second exit; log:\n{}", second.log());

        // Invariants.
        let instructions = scalar(
            &pool,
            "SELECT count(*) FROM shipping_instructions WHERE shop_id = $1",
            shop_id,
        )
        .await;
        let distinct = scalar(
            &pool,
            "SELECT count(DISTINCT amazon_order_id) FROM shipping_instructions WHERE shop_id = $1",
            shop_id,
        )
        .await;
        assert_eq!(
            (instructions, distinct),
            (ORDERS as i64, ORDERS as i64),
            "every order imported exactly once"
        );
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT amazon_order_id FROM shipping_instructions WHERE shop_id = $1 ORDER BY 1",
        )
        .bind(shop_id)
        .fetch_all(&pool)
        .await
        .unwrap();
        let mut expected: Vec<String> = orders.iter().map(|o| o.order_id.clone()).collect();
        expected.sort();
        assert_eq!(ids, expected, "the simulator's orders");
        let runs = scalar(
            &pool,
            "SELECT count(*) FROM action_runs WHERE shop_id = $1 AND status <> 'succeeded'",
            shop_id,
        )
        .await;
        assert_eq!(runs, 0, "no run left running, waiting or failed");
        let (run_new, run_status): (i64, String) = sqlx::query_as(
            "SELECT (counts->>'new')::bigint, status FROM action_runs WHERE command_id = $1",
        )
        .bind(cmd.message_id)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!((run_new, run_status.as_str()), (ORDERS as i64, "succeeded"));
        let leases = scalar(
            &pool,
            "SELECT count(*) FROM action_leases WHERE shop_id = $1",
            shop_id,
        )
        .await;
        assert_eq!(leases, 0, "lease released");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            queue_depth(&amqp, &topology.queue(order_ingest::ACTION)).await,
            0,
            "no message left"
        );
        assert_eq!(
            queue_depth(&amqp, &topology.dlq(order_ingest::ACTION)).await,
            0,
            "nothing dead-lettered"
        );
        assert!(
            queue_depth(&amqp, &topology.queue("events-tap")).await as usize >= ORDERS,
            "an order.imported event per order reached the bus"
        );
    };
    let result = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(outcome)).await;
    eprintln!("scenario took {:?}", started.elapsed());
    cleanup(&topology, &[order_ingest::ACTION, "events-tap"]).await;
    let _ = bus::close(&amqp).await;
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&logs);
    }
    if let Err(panic) = result {
        eprintln!("service logs kept in {}", logs.display());
        std::panic::resume_unwind(panic);
    }
}

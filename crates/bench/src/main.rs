//! Benchmarks (not tests): the real services, started as child processes of this binary with
//! the same code as their own binaries, against the SP-API simulator on the local PostgreSQL
//! (a scratch database per run, dropped at the end) and RabbitMQ (a unique prefix, deleted at
//! the end). Prints one JSON object per scenario on stdout. See `docs/benchmarks.md`.
//!
//! ```text
//! cargo run --release -p bench -- ingest --orders 10000
//! cargo run --release -p bench -- baseline --orders 1000
//! cargo run --release -p bench -- quota --orders 10000 --rate-scale 250
//! cargo run --release -p bench -- inventory --skus 100000
//! cargo run --release -p bench -- latency --runs 200
//! cargo run --release -p bench -- scale-out --orders 10000 --rate-scale 250
//! ```

mod baseline;
mod day;
mod env;
mod machine;
mod scenarios;

use anyhow::bail;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(about = "Benchmarks of the connector against spapi-sim (one JSON line per scenario)")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Orders generated in the simulator (ingest, baseline, quota, scale-out, shipment, status).
    #[arg(long)]
    orders: Option<usize>,
    /// Mapped SKUs (inventory).
    #[arg(long)]
    skus: Option<usize>,
    /// SKUs whose stock changes after the first push (inventory), orders changed on Amazon
    /// (status).
    #[arg(long)]
    changed: Option<usize>,
    /// Simulated-time factor of the quota scenarios: the simulator and the client both run
    /// Amazon's default quotas this many times faster.
    #[arg(long, default_value_t = 250.0)]
    rate_scale: f64,
    /// order-ingest replicas (ingest, quota).
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// `SPAPI_MAX_LIMITER_WAIT_MS` of the services: a longer limiter wait becomes a
    /// continuation through the outbox (production default 1000).
    #[arg(long, default_value_t = 1000)]
    max_wait_ms: u64,
    /// Small runs (latency).
    #[arg(long, default_value_t = 200)]
    runs: usize,
    /// Baseline: fixed sleep after a 429, in Amazon (modelled) milliseconds.
    #[arg(long, default_value_t = 1000)]
    retry_sleep_ms: u64,
    /// Baseline: compare under quotas (`--rate-scale`) instead of the unlimited simulator.
    #[arg(long)]
    quota: bool,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// N orders (default 10,000) trigger → committed instructions, unlimited simulator.
    Ingest(Common),
    /// The naive v0 import (getOrders + getOrderItems per order) against the connector.
    Baseline(Common),
    /// The import under Amazon's default quotas in simulated time (default 10,000 orders).
    Quota(Common),
    /// quota with 2 and 4 order-ingest replicas sharing one seller.
    ScaleOut(Common),
    /// 100,000 mapped SKUs pushed, then 10,000 changed pushed (inventory-sync).
    Inventory(Common),
    /// 10,000 shipments today: shipment-feedback feed + feed-poller results.
    Shipment(Common),
    /// 50,000 open instructions, 5,000 changed on Amazon (status-sync).
    Status(Common),
    /// p50/p99 from trigger to effect committed over many one-order runs.
    Latency(Common),
    /// Resident memory of each service process idle after start-up.
    IdleMemory(Common),
    /// Every scenario at small sizes (a smoke run).
    Smoke(Common),
    /// A JP seller's day in simulated time (a model; no services, no database): polling only
    /// and with notifications, one JSON line each.
    Day {
        /// Orders placed during the day.
        #[arg(long, default_value_t = 20_000)]
        orders: usize,
        /// Seed of the day's orders.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Largest orders per day tried when searching the sustainable figure.
        #[arg(long, default_value_t = 200_000)]
        ceiling: usize,
        /// Amazon sends ORDER_CHANGE for new orders too (not reliably so in reality).
        #[arg(long)]
        notify_new_orders: bool,
    },
    /// Deletes the queues and exchanges an interrupted run left (`--prefix bench.<id>.`).
    Cleanup {
        #[arg(long)]
        prefix: String,
    },
    /// Internal: runs one service (what `bench` starts as child processes).
    #[command(hide = true)]
    Serve { service: String },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Scenario::Serve { service } = &cli.scenario {
        return serve(service);
    }
    if let Scenario::Day {
        orders,
        seed,
        ceiling,
        notify_new_orders,
    } = cli.scenario
    {
        for mode in [day::Mode::Polling, day::Mode::Notifications] {
            let w = day::Workload {
                notify_new_orders,
                ..day::Workload::jp(orders, seed)
            };
            let result = day::simulate(w, mode, true);
            let two_polls = day::simulate(w, mode, false).search_orders_calls();
            let sustainable = day::sustainable(w, mode, ceiling);
            println!("{}", day::line(&result, two_polls, sustainable));
        }
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.scenario {
            Scenario::Ingest(c) => scenarios::ingest_cmd(&c).await,
            Scenario::Baseline(c) => scenarios::baseline_cmd(&c).await,
            Scenario::Quota(c) => scenarios::quota_cmd(&c).await,
            Scenario::ScaleOut(c) => scenarios::scale_out_cmd(&c).await,
            Scenario::Inventory(c) => scenarios::inventory_cmd(&c).await,
            Scenario::Shipment(c) => scenarios::shipment_cmd(&c).await,
            Scenario::Status(c) => scenarios::status_cmd(&c).await,
            Scenario::Latency(c) => scenarios::latency_cmd(&c).await,
            Scenario::IdleMemory(c) => scenarios::idle_memory_cmd(&c).await,
            Scenario::Smoke(c) => scenarios::smoke_cmd(&c).await,
            Scenario::Cleanup { prefix } => env::delete_prefix(&prefix).await,
            Scenario::Serve { .. } | Scenario::Day { .. } => unreachable!(),
        }
    })
}

/// One service, wired exactly as its binary (`crates/<service>/src/main.rs`) wires it.
fn serve(service: &str) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match service {
            "order-ingest" => {
                runtime::run(order_ingest::ACTION, &[], move |ctx| {
                    let api = ctx.spapi_client().expect("the SP-API client can be built");
                    order_ingest::OrderIngest::new(
                        ctx.pool,
                        ctx.keys,
                        api,
                        ctx.topology,
                        order_ingest::IngestConfig::default(),
                    )
                })
                .await
            }
            "status-sync" => {
                runtime::run(status_sync::ACTION, &[], move |ctx| {
                    let api = ctx.spapi_client().expect("the SP-API client can be built");
                    status_sync::StatusSync::new(
                        ctx.pool,
                        ctx.keys,
                        api,
                        ctx.topology,
                        status_sync::SyncConfig::default(),
                    )
                })
                .await
            }
            "shipment-feedback" => {
                runtime::run(shipment_feedback::SERVICE, &[], |ctx| {
                    shipment_feedback::Service::from_ctx(ctx).expect("SP-API client configuration")
                })
                .await
            }
            "feed-poller" => {
                runtime::run(feed_poller::SERVICE, &["feed.submitted"], |ctx| {
                    feed_poller::Poller::from_ctx(ctx).expect("SP-API client configuration")
                })
                .await
            }
            "inventory-sync" => {
                runtime::run(inventory_sync::SERVICE, &[], |ctx| {
                    inventory_sync::Service::from_ctx(ctx).expect("SP-API client configuration")
                })
                .await
            }
            other => bail!("unknown service {other}"),
        }
    })
}

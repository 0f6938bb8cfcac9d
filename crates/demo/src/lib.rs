//! `cargo run --release -p connector -- demo` (the README's first command; `cargo run --release -p
//! demo` runs the same): the whole mission on one machine.
//!
//! Starts the SP-API simulator and the five services (in this process, exactly as their
//! binaries run them), creates a demo shop for Amazon.co.jp with products, stock, SKU mappings,
//! a delivery method and a rule, lets simulated buyers place orders, then walks through the five
//! actions and prints what happened at each step. Uses its own database (`<DATABASE_URL's
//! database>_demo`, recreated every run) and its own queue prefix, so it can run twice and never
//! touches a real installation.

mod preflight;
mod sim_control;

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, bail};
use chrono::Utc;
use clap::Parser;
use domain::{
    delivery_rules::RuleConditions,
    messages::{Action, Command, CommandParams, StatusSyncMode},
    shop::ShopCode,
    window::ImportMode,
};
use serde_json::{Value, json};
use spapi_sim::{MarketplaceMix, SimConfig, StatusChange};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "demo",
    about = "Run the five actions end to end against the SP-API simulator"
)]
struct Args {
    /// Print the summary as one JSON object instead of tables.
    #[arg(long)]
    json: bool,
    /// Orders the simulated buyers place.
    #[arg(long, default_value_t = 40)]
    orders: usize,
    /// Seed of the simulated orders.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Keep everything running afterwards and serve the operator console (Ctrl-C stops).
    #[arg(long)]
    serve: bool,
    /// Where the console listens with --serve.
    #[arg(long, default_value = "127.0.0.1:8080")]
    console_addr: std::net::SocketAddr,
    /// Drive services that already run (containers, a compose stack) instead of starting the
    /// simulator and the five services in this process: DATABASE_URL is used as it is (migrated
    /// already, not recreated), BUS_PREFIX and CONNECTOR_ENCRYPTION_KEYS are the services' own,
    /// and the simulator is the one at --sim-url.
    #[arg(long, requires = "sim_url", conflicts_with = "serve")]
    external_services: bool,
    /// The running simulator (with --external-services), e.g. http://127.0.0.1:8700.
    #[arg(long, requires = "external_services")]
    sim_url: Option<String>,
}

/// The simulator and the services when the demo runs them itself.
struct InProcess {
    sim: spapi_sim::RunningSim,
    services: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    cancel: CancellationToken,
}

/// Console sign-in created by the demo.
const DEMO_USER: &str = "demo";
const DEMO_PASSWORD: &str = "demo-password";

const PRODUCTS: usize = 40;
const ON_HAND: i32 = 50;
/// The simulator runs Amazon's quotas this many times faster (the client knows, so no 429s).
const RATE_SCALE: f64 = 30.0;

struct Step {
    name: &'static str,
    seconds: f64,
    label_ja: &'static str,
    facts: Vec<(String, String)>,
}

/// Errors end the demo with one line that says what to do (no backtrace: they are the user's
/// to fix, not a bug).
/// The `demo` program. The `demo` binary and the image's multi-call `connector` binary both run
/// this.
pub async fn main() -> std::process::ExitCode {
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
    // Logs go to stderr: stdout is the result (the tables, or one JSON line with --json).
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    anyhow::ensure!(
        (1..=2000).contains(&args.orders),
        "--orders must be from 1 to 2000"
    );
    let started = std::time::Instant::now();
    let mut steps: Vec<Step> = Vec::new();
    let mut lap = std::time::Instant::now();
    let mut split = move || {
        let s = lap.elapsed().as_secs_f64();
        lap = std::time::Instant::now();
        (s * 10.0).round() / 10.0
    };
    let say = |json: bool, s: &str| {
        if !json {
            eprintln!("» {s}");
        }
    };

    // Database and broker of this run.
    let base_url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| store::DEFAULT_DATABASE_URL.into());
    let amqp_url = std::env::var("AMQP_URL").unwrap_or_else(|_| bus::DEFAULT_AMQP_URL.into());
    preflight::check(&preflight::POSTGRES, &base_url).await?;
    preflight::check(&preflight::RABBITMQ, &amqp_url).await?;
    let database_url = if args.external_services {
        base_url.clone()
    } else {
        let url = demo_database_url(&base_url)?;
        say(
            args.json,
            &format!("preparing database {}", database_name(&url)),
        );
        recreate_database(&url).await?;
        url
    };
    let pool = store::connect(&database_url, 8)
        .await
        .context("cannot connect to PostgreSQL: is it running on 127.0.0.1:5432?")?;
    let prefix = if args.external_services {
        std::env::var("BUS_PREFIX").unwrap_or_default()
    } else {
        store::MIGRATOR
            .run(&pool)
            .await
            .context("migrations failed")?;
        format!("demo.{}.", &Uuid::now_v7().simple().to_string()[24..])
    };
    let topology = bus::Topology::new(prefix.clone(), bus::DEFAULT_DELIVERY_LIMIT);
    let amqp = bus::connect(&amqp_url, "demo")
        .await
        .context("cannot connect to RabbitMQ: is it running on 127.0.0.1:5672?")?;

    // Amazon, simulated: in this process, or the one at --sim-url.
    let (keys, in_process, sim_url) = match &args.sim_url {
        Some(url) => (
            crypto::Keyring::from_env()
                .context("--external-services needs the services' CONNECTOR_ENCRYPTION_KEYS")?,
            None,
            url.clone(),
        ),
        None => {
            let sim = spapi_sim::spawn(SimConfig {
                seed: args.seed,
                rate_scale: RATE_SCALE,
                feed_processing: Duration::from_secs(2),
                ..SimConfig::default()
            })
            .await
            .context("cannot start the simulator")?;
            let url = sim.base_url();
            (crypto::Keyring::for_testing(), Some(sim), url)
        }
    };
    let sim = sim_control::SimControl::new(&sim_url)?;
    sim.wait_ready(Duration::from_secs(30)).await?;
    say(args.json, &format!("SP-API simulator at {sim_url}"));

    // The shop and its WMS data.
    let shop_id = setup_shop(&pool, &keys, &sim_url).await?;

    // The five services, unless they run already.
    let in_process = match in_process {
        None => None,
        Some(sim) => {
            let cancel = CancellationToken::new();
            let config = runtime::Config {
                database_url: database_url.clone(),
                amqp_url: amqp_url.clone(),
                bus_prefix: prefix.clone(),
                admin_addr: "127.0.0.1:0".parse()?,
                prefetch: 2,
                pool_size: 4,
                spapi_rate_scale: RATE_SCALE,
            };
            // Declare every service's queue first (idempotent, as the services do), so the
            // first trigger is routable however fast the services start.
            let ch = amqp.create_channel().await?;
            for a in Action::ALL {
                let events: &[&str] = if a == Action::FeedPoller {
                    &["feed.submitted"]
                } else {
                    &[]
                };
                topology.declare_service(&ch, a.as_str(), events).await?;
            }
            let services = start_services(&config, &keys, &cancel);
            Some(InProcess {
                sim,
                services,
                cancel,
            })
        }
    };

    // Simulated buyers.
    let orders = sim
        .generate_orders(
            args.orders,
            args.seed,
            MarketplaceMix {
                jp: 1,
                au: 0,
                sg: 0,
                pending_ratio: 0.5,
            },
        )
        .await?;
    let pending: Vec<String> = orders
        .iter()
        .filter(|o| o.status == spapi_sim::OrderStatus::Pending)
        .map(|o| o.order_id.clone())
        .collect();
    let unshipped = orders.len() - pending.len();
    steps.push(Step {
        name: "orders placed on Amazon",
        seconds: split(),
        label_ja: "注文",
        facts: vec![
            ("orders".into(), orders.len().to_string()),
            ("pending (unpaid)".into(), pending.len().to_string()),
            ("unshipped (paid)".into(), unshipped.to_string()),
        ],
    });

    // 1. Import.
    say(args.json, "1/5 order-ingest (出荷指示取得), differential");
    trigger(
        &pool,
        &topology,
        shop_id,
        CommandParams::OrderIngest {
            mode: ImportMode::Differential,
        },
    )
    .await?;
    let run = wait_runs(&pool, shop_id, Action::OrderIngest).await?;
    let imported = count(&pool, shop_id, "true").await?;
    steps.push(Step {
        name: "order-ingest",
        seconds: split(),
        label_ja: Action::OrderIngest.label_ja(),
        facts: vec![
            ("run".into(), run.status.clone()),
            ("instructions".into(), imported.to_string()),
            (
                "with placeholders (Amazon 仮登録)".into(),
                count(&pool, shop_id, "payment_status <> 'paid'")
                    .await?
                    .to_string(),
            ),
            (
                "paid".into(),
                count(&pool, shop_id, "payment_status = 'paid'")
                    .await?
                    .to_string(),
            ),
            ("Amazon calls".into(), run.amazon_calls.to_string()),
        ],
    });

    // 2. Payments and cancellations on Amazon, then status sync.
    let (to_cancel, to_pay) = pending.split_at(pending.len().min(3));
    for id in to_pay {
        sim.set_order_status(id, StatusChange::Unshipped).await?;
    }
    for id in to_cancel {
        sim.set_order_status(
            id,
            StatusChange::Cancelled {
                cancelled_by: Some("BUYER".into()),
                reason: None,
            },
        )
        .await?;
    }
    say(args.json, "2/5 status-sync (ステータス同期)");
    trigger(
        &pool,
        &topology,
        shop_id,
        CommandParams::StatusSync {
            mode: StatusSyncMode::Changes,
        },
    )
    .await?;
    let run = wait_runs(&pool, shop_id, Action::StatusSync).await?;
    steps.push(Step {
        name: "status-sync",
        seconds: split(),
        label_ja: Action::StatusSync.label_ja(),
        facts: vec![
            (
                "paid on Amazon / canceled on Amazon".into(),
                format!("{} / {}", to_pay.len(), to_cancel.len()),
            ),
            ("run".into(), run.status.clone()),
            (
                "instructions paid".into(),
                count(&pool, shop_id, "payment_status = 'paid'")
                    .await?
                    .to_string(),
            ),
            (
                "instructions canceled".into(),
                count(&pool, shop_id, "status = 'canceled'")
                    .await?
                    .to_string(),
            ),
            ("Amazon calls".into(), run.amazon_calls.to_string()),
        ],
    });

    // 3. The warehouse allocates and ships the paid orders (one parcel with two tracking numbers).
    let today = domain::eligibility::today_in(chrono_tz::Asia::Tokyo, Utc::now());
    let ready: Vec<String> = sqlx::query_scalar!(
        "SELECT amazon_order_id AS \"id!\" FROM shipping_instructions WHERE shop_id = $1 AND status = 'awaiting_shipment' ORDER BY amazon_order_id",
        shop_id
    )
    .fetch_all(&pool)
    .await?;
    let mut expected_tracking: BTreeMap<String, String> = BTreeMap::new();
    {
        let mut tx = pool.begin().await?;
        for (i, order_id) in ready.iter().enumerate() {
            store::wms::allocate(&mut tx, shop_id, order_id).await?;
            let first = format!("{:012}", 400_000_000_000_u64 + i as u64 * 7);
            let mut tracking = vec![first.clone()];
            if i == 0 {
                tracking.push(format!("{:012}", 999_000_000_000u64));
            }
            store::wms::ship(&mut tx, shop_id, order_id, &tracking, today).await?;
            expected_tracking.insert(order_id.clone(), first);
        }
        tx.commit().await?;
    }

    // 4. Shipment feedback, then the feed result.
    say(args.json, "3/5 shipment-feedback (出荷実績戻し)");
    trigger(
        &pool,
        &topology,
        shop_id,
        CommandParams::ShipmentFeedback {},
    )
    .await?;
    let run = wait_runs(&pool, shop_id, Action::ShipmentFeedback).await?;
    say(args.json, "4/5 feed-poller (フィード送信結果取得)");
    let confirmed = wait_until(&pool, Duration::from_secs(90), || async {
        let open = count(
            &pool,
            shop_id,
            "status = 'shipped' AND api_status IN ('awaiting_print', 'printed')",
        )
        .await?;
        Ok((open == 0).then_some(()))
    })
    .await;
    let shipped_ok = count(&pool, shop_id, "api_status = 'shipped'").await?;
    let mut sim_matches = 0;
    for (order_id, tracking) in &expected_tracking {
        if let Some(o) = sim.order(order_id).await?
            && o.packages.iter().any(|p| &p.tracking_number == tracking)
            && o.packages.len() == 1
        {
            sim_matches += 1;
        }
    }
    steps.push(Step {
        name: "shipment-feedback + feed-poller",
        seconds: split(),
        label_ja: "出荷実績戻し / フィード送信結果取得",
        facts: vec![
            (
                "shipped in the warehouse today".into(),
                expected_tracking.len().to_string(),
            ),
            ("feed run".into(), run.status.clone()),
            (
                "confirmed by Amazon (API status 出荷済み)".into(),
                shipped_ok.to_string(),
            ),
            (
                "simulator shows the first tracking number".into(),
                format!("{sim_matches}/{}", expected_tracking.len()),
            ),
            (
                "results arrived".into(),
                if confirmed.is_ok() {
                    "yes".into()
                } else {
                    "not within 90 s".into()
                },
            ),
        ],
    });

    // 5. Inventory sync: every mapped SKU whose free stock changed (all of them on a first run).
    say(args.json, "5/5 inventory-sync (在庫連携)");
    trigger(
        &pool,
        &topology,
        shop_id,
        CommandParams::InventorySync { full: false },
    )
    .await?;
    let run = wait_runs(&pool, shop_id, Action::InventorySync).await?;
    let _ = wait_until(&pool, Duration::from_secs(90), || async {
        let sent: i64 = sqlx::query_scalar!("SELECT count(*) AS \"n!\" FROM external_products WHERE shop_id = $1 AND push_state = 'sent'", shop_id)
            .fetch_one(&pool)
            .await?;
        Ok((sent == 0).then_some(()))
    })
    .await;
    let pushed: Vec<(String, i32)> = sqlx::query!(
        r#"SELECT e.sku, GREATEST(s.free, 0) AS "free!" FROM external_products e JOIN stock s ON s.product_id = e.product_id
           WHERE e.shop_id = $1 AND e.push_state = 'confirmed'"#,
        shop_id
    )
    .fetch_all(&pool)
    .await?
    .into_iter()
    .map(|r| (r.sku, r.free))
    .collect();
    let mut listings_match = 0;
    for (sku, free) in &pushed {
        if sim.listing(sku).await?.and_then(|l| l.quantity) == Some(*free as u32) {
            listings_match += 1;
        }
    }
    steps.push(Step {
        name: "inventory-sync + feed-poller",
        seconds: split(),
        label_ja: Action::InventorySync.label_ja(),
        facts: vec![
            ("run".into(), run.status.clone()),
            ("SKUs confirmed by Amazon".into(), pushed.len().to_string()),
            (
                "simulator quantity = our free stock".into(),
                format!("{listings_match}/{}", pushed.len()),
            ),
        ],
    });

    // Calls, by operation, as Amazon (the simulator) counted them.
    let calls = sim.call_counts().await?;
    let throttled: u64 = calls.values().map(|c| c.throttled).sum();
    let by_op: BTreeMap<String, u64> = calls
        .iter()
        .filter(|(_, c)| c.calls > 0)
        .map(|(k, c)| (k.clone(), c.calls))
        .collect();
    let attention: i64 = sqlx::query_scalar!(
        "SELECT count(*) AS \"n!\" FROM api_log WHERE shop_id = $1 AND level = 'attention'",
        shop_id
    )
    .fetch_one(&pool)
    .await?;
    let elapsed = started.elapsed().as_secs_f64();

    let summary = json!({
        "orders_created": orders.len(),
        "imported": imported,
        "paid": count(&pool, shop_id, "payment_status = 'paid'").await?,
        "canceled": count(&pool, shop_id, "status = 'canceled'").await?,
        "shipped": expected_tracking.len(),
        "shipments_confirmed_by_amazon": shipped_ok,
        "shipments_matching_simulator": sim_matches,
        "skus_pushed": pushed.len(),
        "skus_matching_simulator": listings_match,
        "attention_entries": attention,
        "amazon_calls": by_op,
        "throttled_429": throttled,
        "elapsed_seconds": (elapsed * 10.0).round() / 10.0,
        "database": database_name(&database_url),
        "console": format!("http://{}", args.console_addr),
    });
    if args.json {
        println!("{summary}");
    } else {
        print_tables(&steps, &summary);
    }

    if args.serve {
        console::auth::upsert_user(
            &pool,
            DEMO_USER,
            Some("Demo operator"),
            DEMO_PASSWORD,
            &["demo-jp".to_owned()],
        )
        .await?;
        let listener = tokio::net::TcpListener::bind(args.console_addr)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (choose another with --console-addr)",
                    args.console_addr
                )
            })?;
        println!(
            "console: http://{} (user {DEMO_USER}, password {DEMO_PASSWORD}); services and simulator keep running; Ctrl-C stops",
            args.console_addr
        );
        let state = console::AppState::new(pool.clone(), prefix.clone(), keys.clone());
        console::serve(listener, state, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    } else if !args.json {
        println!(
            "to look around in the operator console: cargo run --release -p connector -- demo --serve, then open http://{} (user {DEMO_USER}, password {DEMO_PASSWORD})",
            args.console_addr
        );
    }

    // Shut down what the demo started: services, queues, simulator. The demo database stays for
    // inspection; running services keep theirs.
    if let Some(InProcess {
        sim,
        services,
        cancel,
    }) = in_process
    {
        cancel.cancel();
        for s in services {
            let _ = s.await;
        }
        if let Ok(ch) = amqp.create_channel().await {
            for a in Action::ALL {
                let _ = topology.delete_service(&ch, a.as_str()).await;
            }
            let _ = topology.delete_exchanges(&ch).await;
        }
        sim.shutdown().await;
    }
    let _ = bus::close(&amqp).await;

    let ok = summary["imported"] == json!(orders.len())
        && sim_matches == expected_tracking.len()
        && listings_match == pushed.len()
        && throttled == 0;
    if !ok {
        bail!(
            "the demo finished, but some results do not match what the simulator holds (see above)"
        );
    }
    Ok(())
}

fn print_tables(steps: &[Step], summary: &Value) {
    println!();
    println!("Amazon connector demo — shop demo-jp on Amazon.co.jp (simulated)");
    println!("{}", "=".repeat(72));
    for s in steps {
        println!("{} ({}) — {} s", s.name, s.label_ja, s.seconds);
        for (k, v) in &s.facts {
            println!("  {k:<48} {v}");
        }
    }
    println!("{}", "-".repeat(72));
    println!("Amazon calls by operation:");
    if let Some(map) = summary["amazon_calls"].as_object() {
        for (op, n) in map {
            println!("  {op:<48} {n}");
        }
    }
    println!("  {:<48} {}", "429 (throttled)", summary["throttled_429"]);
    println!(
        "  {:<48} {}",
        "API log entries needing attention", summary["attention_entries"]
    );
    let db = summary["database"].as_str().unwrap_or_default();
    println!(
        "elapsed: {} s; data kept in database {db}",
        summary["elapsed_seconds"]
    );
    println!(
        "look around: DATABASE_URL=postgres://postgres@127.0.0.1:5432/{db} cargo run -p ctl -- shop list"
    );
}

fn database_name(url: &str) -> String {
    url.rsplit('/')
        .next()
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn demo_database_url(base: &str) -> anyhow::Result<String> {
    let (head, tail) = base
        .rsplit_once('/')
        .context("DATABASE_URL must look like postgres://user@host:port/database")?;
    let name = tail.split('?').next().unwrap_or_default();
    let name = if name.is_empty() { "connector" } else { name };
    Ok(format!("{head}/{name}_demo"))
}

async fn recreate_database(url: &str) -> anyhow::Result<()> {
    use sqlx::{Connection, PgConnection, postgres::PgConnectOptions};
    let opts: PgConnectOptions = url.parse()?;
    let name = database_name(url);
    anyhow::ensure!(
        name.ends_with("_demo"),
        "refusing to recreate {name}: not a demo database"
    );
    let mut admin = PgConnection::connect_with(&opts.clone().database("postgres"))
        .await
        .context("cannot connect to PostgreSQL: is it running on 127.0.0.1:5432?")?;
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
        .execute(&mut admin)
        .await?;
    Ok(())
}

async fn setup_shop(pool: &PgPool, keys: &crypto::Keyring, sim_url: &str) -> anyhow::Result<Uuid> {
    let mut tx = pool.begin().await?;
    let shop = store::shops::insert(
        &mut tx,
        keys,
        &store::shops::NewShop::japan_at(
            "demo-jp".parse::<ShopCode>()?,
            "Demo Shop Japan",
            spapi_sim::DEFAULT_SELLER_ID,
            sim_url,
        ),
    )
    .await?;
    let shop_id = shop.shop.id;
    for n in 1..=PRODUCTS {
        let p = store::catalog::insert_product(
            &mut tx,
            shop_id,
            &format!("P-{n:04}"),
            &format!("Demo product {n}"),
        )
        .await?;
        store::inventory::set_on_hand(&mut tx, shop_id, p.id, ON_HAND, Some("demo: initial count"))
            .await?;
        let days = (n % 4 == 0)
            .then(|| domain::inventory::HandlingDays::new(2))
            .transpose()?;
        store::inventory::map_sku(&mut tx, shop_id, &format!("SKU-{n:04}"), p.id, days).await?;
    }
    let yamato = store::catalog::upsert_delivery_method(
        &mut tx,
        shop_id,
        "yamato",
        "ヤマト宅急便",
        Some("yamato"),
    )
    .await?;
    store::catalog::add_rule(
        &mut tx,
        shop_id,
        10,
        "everything by Yamato",
        &RuleConditions::default(),
        yamato.id,
    )
    .await?;
    tx.commit().await?;
    Ok(shop_id)
}

/// Longest sleep of one SP-API call in the shared limiter, for every service of the demo.
const MAX_LIMITER_WAIT: Duration = Duration::from_millis(1500);

fn start_services(
    config: &runtime::Config,
    keys: &crypto::Keyring,
    cancel: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let max_wait = MAX_LIMITER_WAIT;
    let mut tasks = Vec::new();
    macro_rules! spawn_service {
        ($name:expr, $keys_events:expr, $make:expr) => {{
            let (config, keys, cancel) = (config.clone(), keys.clone(), cancel.clone());
            tasks.push(tokio::spawn(async move {
                runtime::serve($name, $keys_events, config, keys, cancel, $make).await
            }));
        }};
    }
    spawn_service!(order_ingest::ACTION, &[], move |ctx: runtime::Ctx| {
        let api = runtime::spapi_client(&ctx.pool, ctx.config.spapi_rate_scale, max_wait)
            .expect("SP-API client");
        order_ingest::OrderIngest::new(
            ctx.pool,
            ctx.keys,
            api,
            ctx.topology,
            order_ingest::IngestConfig::default(),
        )
    });
    spawn_service!(status_sync::ACTION, &[], move |ctx: runtime::Ctx| {
        let api = runtime::spapi_client(&ctx.pool, ctx.config.spapi_rate_scale, max_wait)
            .expect("SP-API client");
        status_sync::StatusSync::new(
            ctx.pool,
            ctx.keys,
            api,
            ctx.topology,
            status_sync::SyncConfig::default(),
        )
    });
    // The simulator finishes feeds in seconds: first result poll after 2 s, not Amazon's minute.
    spawn_service!(shipment_feedback::SERVICE, &[], |ctx: runtime::Ctx| {
        let settings = shipment_feedback::Settings {
            first_poll_delay: chrono::Duration::seconds(2),
            ..Default::default()
        };
        {
            let api = client(&ctx);
            shipment_feedback::Service::new(ctx.pool, ctx.keys, api, ctx.topology, settings)
        }
    });
    spawn_service!(
        feed_poller::SERVICE,
        &["feed.submitted"],
        |ctx: runtime::Ctx| {
            // The simulator finishes feeds in seconds: poll every second or two, not Amazon's minutes.
            let settings = feed_poller::Settings {
                first_delay: Duration::from_secs(1),
                max_delay: Duration::from_secs(2),
                ..Default::default()
            };
            {
                let api = client(&ctx);
                feed_poller::Poller::new(ctx.pool, ctx.keys, api, ctx.topology, settings)
            }
        }
    );
    spawn_service!(inventory_sync::SERVICE, &[], |ctx: runtime::Ctx| {
        let settings = inventory_sync::Settings {
            first_poll_delay: chrono::Duration::seconds(2),
            ..Default::default()
        };
        {
            let api = client(&ctx);
            inventory_sync::Service::new(ctx.pool, ctx.keys, api, ctx.topology, settings)
        }
    });
    tasks
}

/// The feed-side services' client: the one every service uses, with the demo's limiter wait.
fn client(ctx: &runtime::Ctx) -> spapi::SpApi {
    runtime::spapi_client(&ctx.pool, ctx.config.spapi_rate_scale, MAX_LIMITER_WAIT)
        .expect("SP-API client configuration is static")
}

async fn trigger(
    pool: &PgPool,
    topology: &bus::Topology,
    shop_id: Uuid,
    params: CommandParams,
) -> anyhow::Result<Uuid> {
    let action = params.action().context("a concrete action")?;
    let cmd = Command::new(shop_id, action, params, "demo", Utc::now());
    cmd.validate(Utc::now())?;
    let msg = bus::OutboxMessage::command(topology, &cmd);
    let mut tx = pool.begin().await?;
    bus::outbox::enqueue(&mut tx, msg).await?;
    tx.commit().await?;
    Ok(cmd.message_id)
}

struct RunSummary {
    status: String,
    amazon_calls: i64,
}

/// Waits until the shop has at least one finished run of `action` started in this demo and
/// none running or waiting (continuations included); sums the calls.
async fn wait_runs(pool: &PgPool, shop_id: Uuid, action: Action) -> anyhow::Result<RunSummary> {
    wait_until(pool, Duration::from_secs(120), || async {
        let r = sqlx::query!(
            r#"SELECT count(*) FILTER (WHERE status IN ('running', 'waiting')) AS "open!",
                      count(*) FILTER (WHERE finished_at IS NOT NULL) AS "done!",
                      COALESCE(sum(amazon_calls), 0)::bigint AS "calls!",
                      (array_agg(status ORDER BY started_at DESC) FILTER (WHERE finished_at IS NOT NULL))[1] AS last_status
               FROM action_runs WHERE shop_id = $1 AND action = $2"#,
            shop_id,
            action.as_str()
        )
        .fetch_one(pool)
        .await?;
        Ok((r.open == 0 && r.done > 0).then(|| RunSummary { status: r.last_status.unwrap_or_default(), amazon_calls: r.calls }))
    })
    .await
    .with_context(|| format!("{action} did not finish within 120 s"))
}

async fn wait_until<T, F, Fut>(_pool: &PgPool, timeout: Duration, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await? {
            return Ok(v);
        }
        if std::time::Instant::now() > deadline {
            bail!("timed out after {} s", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Instructions of the shop matching a fixed SQL condition written in this file.
async fn count(pool: &PgPool, shop_id: Uuid, condition: &'static str) -> anyhow::Result<i64> {
    let sql =
        format!("SELECT count(*) FROM shipping_instructions WHERE shop_id = $1 AND ({condition})");
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(shop_id)
        .fetch_one(pool)
        .await?)
}

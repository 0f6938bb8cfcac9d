//! Benchmark (not a test): one inventory-sync run that builds and submits the feeds for N
//! changed SKUs (default 100,000) against the embedded, unlimited simulator, on real
//! PostgreSQL (a scratch database, dropped at the end). Prints the run time and the peak
//! resident memory of the process during the run (VmHWM, reset before the run).
//!
//! ```text
//! cargo run --release -p inventory-sync --example bench -- [--skus 100000]
//! ```
//!
//! `DATABASE_URL` names the server (its database is replaced by a scratch one).

use std::time::{Duration, Instant};

use anyhow::Context;
use inventory_sync::{Service, Settings};
use sqlx::{Connection, PgConnection};
use store::shops::NewShop;

fn status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "n/a".to_owned(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let skus: i32 = args
        .iter()
        .position(|a| a == "--skus")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse())
        .transpose()
        .context("--skus must be a number")?
        .unwrap_or(100_000);

    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let base = base.split('?').next().unwrap_or_default().to_owned();
    let (server, _) = base
        .rsplit_once('/')
        .context("DATABASE_URL has no database")?;
    let db = format!("inventory_bench_{}", std::process::id());
    let url = format!("{server}/{db}");
    store::ensure_database(&url).await?;
    let result = bench(&url, skus).await;
    let mut admin = PgConnection::connect(&format!("{server}/postgres")).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await?;
    result
}

async fn bench(url: &str, skus: i32) -> anyhow::Result<()> {
    let pool = store::connect(url, 8).await?;
    store::MIGRATOR.run(&pool).await?;
    // Feeds stay queued during the run: the simulator's processing is timed separately.
    let sim = spapi_sim::spawn(spapi_sim::SimConfig {
        unlimited: true,
        feed_processing: Duration::from_secs(3600),
        ..Default::default()
    })
    .await?;
    let keys = crypto::Keyring::for_testing();
    let base = sim.base_url();
    let shop = {
        let mut conn = pool.acquire().await?;
        store::shops::insert(
            &mut conn,
            &keys,
            &NewShop::japan_at(
                "bench".parse()?,
                "Bench",
                spapi_sim::DEFAULT_SELLER_ID,
                &base,
            ),
        )
        .await?
        .shop
    };

    let t = Instant::now();
    for q in [
        "INSERT INTO products (id, shop_id, code, name) SELECT gen_random_uuid(), $1, 'P' || lpad(i::text, 6, '0'), 'Product ' || i FROM generate_series(1, $2) i",
        "INSERT INTO stock (product_id, shop_id, on_hand) SELECT id, shop_id, 5 + substr(code, 2)::int % 40 FROM products WHERE shop_id = $1 AND $2 > 0",
        "INSERT INTO external_products (id, shop_id, sku, product_id, handling_days) SELECT gen_random_uuid(), shop_id, 'SKU-' || substr(code, 2), id, CASE WHEN substr(code, 2)::int % 7 = 0 THEN 3 END FROM products WHERE shop_id = $1 AND $2 > 0",
    ] {
        sqlx::query(q)
            .bind(shop.id)
            .bind(skus)
            .execute(&pool)
            .await?;
    }
    for i in 1..=skus {
        sim.sim().put_listing(&format!("SKU-{i:06}"), 0, None);
    }
    println!(
        "seeded {skus} mapped SKUs (database + simulator listings) in {:.1?}",
        t.elapsed()
    );

    // Default client configuration: Amazon's documented quotas (5 JSON_LISTINGS_FEED per 5 min).
    let api = spapi::SpApi::new(pool.clone(), spapi::ClientConfig::default())?;
    let service = Service::new(
        pool.clone(),
        keys.clone(),
        api,
        bus::Topology::new("bench.", 5),
        Settings::default(),
    );

    let rss_before = status_kib("VmRSS:");
    // Reset the peak (VmHWM) to the current RSS (Linux: clear_refs 5).
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let t = Instant::now();
    let report = service.run(shop.id, false, None, "bench").await?;
    let elapsed = t.elapsed();
    let peak = status_kib("VmHWM:");
    println!(
        "run: {} targets, {} messages in {} feed(s), {} not sent, {} SP-API calls",
        report.targets,
        report.sent,
        report.feed_submission_ids.len(),
        report.not_sent,
        report.amazon_calls
    );
    if report.not_sent > 0 {
        let problems: Vec<(String, String)> = sqlx::query_as(
            "SELECT level, message FROM api_log WHERE run_id = $1 AND level <> 'info' ORDER BY id LIMIT 5",
        )
        .bind(report.run_id)
        .fetch_all(&pool)
        .await?;
        for (level, message) in problems {
            println!("  {level}: {message}");
        }
    }
    println!(
        "build + record + submit {} SKUs: {:.2?} ({:.0} SKUs/s)",
        report.targets,
        elapsed,
        report.targets as f64 / elapsed.as_secs_f64()
    );
    println!(
        "process RSS before the run: {}; peak RSS during the run: {}{}",
        mib(rss_before),
        mib(peak),
        if reset {
            ""
        } else {
            " (peak not reset: includes seeding)"
        }
    );

    // Amazon's side and the results (feed-poller's part), timed separately.
    let t = Instant::now();
    sim.sim().complete_feeds();
    println!("simulator processed the feeds in {:.2?}", t.elapsed());
    let poller = feed_poller::Poller::new(
        pool.clone(),
        keys.clone(),
        spapi::SpApi::new(pool.clone(), spapi::ClientConfig::default())?,
        bus::Topology::new("bench", 5),
        feed_poller::Settings::default(),
    );
    let t = Instant::now();
    let mut confirmed = 0;
    for id in &report.feed_submission_ids {
        sqlx::query("UPDATE feed_submissions SET next_poll_at = now() WHERE id = $1")
            .bind(id)
            .execute(&pool)
            .await?;
        confirmed += poller.poll(shop.id, Some(*id)).await?.inventory.confirmed;
    }
    println!(
        "results applied ({confirmed} SKUs confirmed) in {:.2?}",
        t.elapsed()
    );

    // Nothing changed since: no feed, no call.
    let t = Instant::now();
    let again = service.run(shop.id, false, None, "bench").await?;
    println!(
        "second run with no change: {} targets, {} feeds, {:.2?}",
        again.targets,
        again.feed_submission_ids.len(),
        t.elapsed()
    );
    sim.shutdown().await;
    pool.close().await;
    Ok(())
}

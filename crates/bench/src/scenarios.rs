//! The scenarios. Each prints one JSON object per figure on stdout (progress goes to stderr).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use domain::{
    messages::{CommandParams, StatusSyncMode},
    window::ImportMode,
};
use serde_json::{Map, Value, json};
use spapi_sim::{MarketplaceMix, Op, OrderSpec, OrderStatus, SimConfig, StatusChange};

use crate::Common;
use crate::env::{Env, ServiceOptions, calls_of};
use crate::machine;

const INGEST: &str = "order-ingest";

fn jp_only(pending_ratio: f64) -> MarketplaceMix {
    MarketplaceMix {
        jp: 1,
        au: 0,
        sg: 0,
        pending_ratio,
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

fn note(msg: impl AsRef<str>) {
    eprintln!("[bench] {}", msg.as_ref());
}

/// Prints one result line: `scenario`, the figures, the machine.
fn emit(scenario: &str, figures: Value) -> Value {
    let mut out = Map::new();
    out.insert("scenario".into(), json!(scenario));
    if let Value::Object(m) = figures {
        out.extend(m);
    }
    out.insert("machine".into(), machine::describe());
    out.insert("at".into(), json!(Utc::now().to_rfc3339()));
    let v = Value::Object(out);
    println!("{v}");
    v
}

/// Runs `f` on a fresh environment and always cleans it up.
async fn with_env<T>(
    sim: SimConfig,
    options: ServiceOptions,
    f: impl AsyncFnOnce(&mut Env) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut env = Env::create(sim, options).await?;
    // Interrupted (Ctrl-C, SIGTERM): still stop the services and drop what was created.
    let out = tokio::select! {
        r = f(&mut env) => r,
        () = bus::shutdown_signal() => Err(anyhow::anyhow!("interrupted")),
    };
    env.cleanup().await;
    out
}

fn total(calls: &BTreeMap<String, u64>) -> u64 {
    calls.values().sum()
}

/// Token-bucket minimum for the calls made: per operation (accepted calls − burst) / rate, the
/// slowest operation bounding the whole (buckets refill in parallel). Amazon's documented
/// plans. Calls answered 429 took no token and are not counted.
fn token_bucket_minimum(
    calls: &BTreeMap<String, u64>,
    throttled: &BTreeMap<String, u64>,
) -> (f64, Option<String>) {
    let mut worst = (0.0, None);
    for (name, n) in calls {
        if let Some((rate, burst)) = Op::from_name(name).and_then(Op::usage_plan) {
            let accepted = n - throttled.get(name).copied().unwrap_or(0);
            let secs = ((accepted as f64) - burst).max(0.0) / rate;
            if secs > worst.0 {
                worst = (secs, Some(name.clone()));
            }
        }
    }
    worst
}

/// The figures of one import by the connector.
#[derive(Debug, Clone)]
pub struct Import {
    pub orders: usize,
    pub seconds: f64,
    pub run_seconds: f64,
    pub calls: BTreeMap<String, u64>,
    pub throttled: u64,
    pub throttled_by_op: BTreeMap<String, u64>,
    pub peak_rss_mb: f64,
    pub run: Value,
}

/// N orders in the simulator, `replicas` order-ingest processes, one differential trigger,
/// waited for until the run (and its continuations) finished.
async fn import(env: &mut Env, orders: usize, replicas: usize) -> anyhow::Result<Import> {
    let t = Instant::now();
    let generated = env.sim.sim().generate_orders(orders, 42, jp_only(0.4));
    note(format!(
        "{} orders generated in the simulator in {:.1?}",
        generated.len(),
        t.elapsed()
    ));
    env.start(INGEST, replicas).await?;
    env.reset_peak(INGEST);
    let before = env.amazon_calls().0;
    let (cmd, at) = env
        .trigger(CommandParams::OrderIngest {
            mode: ImportMode::Differential,
        })
        .await?;
    let run = env
        .wait_run(cmd, Duration::from_secs(600 + orders as u64 / 10))
        .await?;
    run.ensure_succeeded()?;
    let (peak, _) = env.service_memory(INGEST);
    // The ledger must not change after the run reported its end (a late progress write
    // would show a second worker on the same run).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status_later, calls_later): (String, i32) =
        sqlx::query_as("SELECT status, amazon_calls FROM action_runs WHERE id = $1")
            .bind(run.id)
            .fetch_one(&env.pool)
            .await?;
    if status_later != run.status || i64::from(calls_later) != run.amazon_calls {
        note(format!(
            "WARNING: run {} changed after it finished: {} / {} calls, then {status_later} / {calls_later} calls",
            run.id, run.status, run.amazon_calls
        ));
    }
    let (after, throttled) = env.amazon_calls();
    let calls: BTreeMap<String, u64> = after
        .into_iter()
        .map(|(k, v)| {
            let b = before.get(&k).copied().unwrap_or(0);
            (k, v - b)
        })
        .filter(|(_, v)| *v > 0)
        .collect();
    let stored = env
        .count("SELECT count(*) FROM shipping_instructions WHERE shop_id = $1")
        .await?;
    if stored != orders as i64 {
        bail!("{stored} instructions stored for {orders} orders");
    }
    Ok(Import {
        orders,
        seconds: run.seconds_since(at),
        run_seconds: run.run_seconds(),
        calls,
        throttled,
        throttled_by_op: crate::env::throttled_of(&env.sim),
        peak_rss_mb: round(peak, 1),
        run: run.summary(),
    })
}

async fn ingest_figures(orders: usize, replicas: usize) -> anyhow::Result<(Import, Value)> {
    let im = with_env(
        SimConfig {
            unlimited: true,
            ..SimConfig::default()
        },
        ServiceOptions::unlimited(),
        async |env| import(env, orders, replicas).await,
    )
    .await?;
    let calls_total = total(&im.calls);
    let v = json!({
        "orders": im.orders,
        "replicas": replicas,
        "seconds": round(im.seconds, 3),
        "per_second": round(im.orders as f64 / im.seconds, 1),
        "run_seconds": round(im.run_seconds, 3),
        "amazon_calls": im.calls,
        "amazon_calls_total": calls_total,
        "calls_per_1000_orders": round(calls_total as f64 * 1000.0 / im.orders as f64, 2),
        "throttled_429": im.throttled,
        "peak_rss_mb": im.peak_rss_mb,
        "peak_rss_of": "order-ingest process",
        "bench_process_peak_rss_mb": round(machine::own_peak_mib(), 1),
        "run": im.run,
    });
    Ok((im, v))
}

pub async fn ingest_cmd(c: &Common) -> anyhow::Result<()> {
    let orders = c.orders.unwrap_or(10_000);
    let (_, v) = ingest_figures(orders, c.replicas).await?;
    emit("ingest", v);
    Ok(())
}

/// The import under Amazon's default quotas, `scale` times faster on both sides.
async fn quota_figures(
    orders: usize,
    scale: f64,
    replicas: usize,
    max_wait_ms: u64,
) -> anyhow::Result<Value> {
    let im = with_env(
        SimConfig {
            rate_scale: scale,
            ..SimConfig::default()
        },
        ServiceOptions {
            rate_scale: scale,
            max_wait_ms,
        },
        async |env| import(env, orders, replicas).await,
    )
    .await?;
    let calls_total = total(&im.calls);
    let modelled = im.seconds * scale;
    // The connector's 429s are reported separately (target zero); the minimum counts
    // accepted calls only.
    let (minimum, bound_by) = token_bucket_minimum(&im.calls, &im.throttled_by_op);
    Ok(json!({
        "orders": im.orders,
        "replicas": replicas,
        "rate_scale": scale,
        "max_limiter_wait_ms": max_wait_ms,
        "seconds": round(im.seconds, 3),
        "per_second": round(im.orders as f64 / im.seconds, 1),
        "modelled_seconds": round(modelled, 1),
        "modelled_per_hour": round(im.orders as f64 / modelled * 3600.0, 0),
        "minimum_seconds": round(minimum, 1),
        "minimum_bound_by": bound_by,
        "ratio": if minimum > 0.0 { json!(round(modelled / minimum, 4)) } else { Value::Null },
        "run_modelled_seconds": round(im.run_seconds * scale, 1),
        "amazon_calls": im.calls,
        "amazon_calls_total": calls_total,
        "calls_per_1000_orders": round(calls_total as f64 * 1000.0 / im.orders as f64, 2),
        "throttled_429": im.throttled,
        "peak_rss_mb": im.peak_rss_mb,
        "peak_rss_of": "largest order-ingest process",
        "run": im.run,
    }))
}

pub async fn quota_cmd(c: &Common) -> anyhow::Result<()> {
    let orders = c.orders.unwrap_or(10_000);
    let v = quota_figures(orders, c.rate_scale, c.replicas, c.max_wait_ms).await?;
    emit("quota", v);
    Ok(())
}

pub async fn scale_out_cmd(c: &Common) -> anyhow::Result<()> {
    let orders = c.orders.unwrap_or(10_000);
    for replicas in [2, 4] {
        let v = quota_figures(orders, c.rate_scale, replicas, c.max_wait_ms).await?;
        emit("scale-out", v);
    }
    Ok(())
}

/// The naive import on a fresh simulator with the same orders.
async fn baseline_figures(
    orders: usize,
    scale: Option<f64>,
    retry_sleep: Duration,
) -> anyhow::Result<Value> {
    let sim = spapi_sim::spawn(match scale {
        Some(s) => SimConfig {
            rate_scale: s,
            ..SimConfig::default()
        },
        None => SimConfig {
            unlimited: true,
            ..SimConfig::default()
        },
    })
    .await?;
    sim.sim().generate_orders(orders, 42, jp_only(0.4));
    let sleep = retry_sleep.div_f64(scale.unwrap_or(1.0));
    let out = crate::baseline::import(&sim.base_url(), sleep).await;
    let (calls, throttled) = calls_of(&sim);
    let throttled_by_op = crate::env::throttled_of(&sim);
    sim.shutdown().await;
    let out = out?;
    if out.orders != orders {
        bail!("baseline imported {} of {orders} orders", out.orders);
    }
    let calls_total = total(&calls);
    let mut v = json!({
        "orders": out.orders,
        "order_items": out.items,
        "seconds": round(out.seconds, 3),
        "per_second": round(out.orders as f64 / out.seconds, 1),
        "amazon_calls": calls,
        "amazon_calls_total": calls_total,
        "calls_per_1000_orders": round(calls_total as f64 * 1000.0 / orders as f64, 2),
        "throttled_429": throttled,
        "retries_after_429": out.retries_after_429,
        "retry_sleep_ms_modelled": retry_sleep.as_millis() as u64,
        "peak_rss_mb": round(machine::own_peak_mib(), 1),
        "peak_rss_of": "bench process (baseline client + simulator)",
        "database_writes": false,
    });
    if let Some(s) = scale {
        let (minimum, bound_by) = token_bucket_minimum(&calls, &throttled_by_op);
        v["rate_scale"] = json!(s);
        v["modelled_seconds"] = json!(round(out.seconds * s, 1));
        v["minimum_seconds"] = json!(round(minimum, 1));
        v["minimum_bound_by"] = json!(bound_by);
        v["ratio"] = json!(round(out.seconds * s / minimum.max(f64::MIN_POSITIVE), 4));
    }
    Ok(v)
}

pub async fn baseline_cmd(c: &Common) -> anyhow::Result<()> {
    let orders = c.orders.unwrap_or(1_000);
    let retry = Duration::from_millis(c.retry_sleep_ms);
    let (connector, baseline) = if c.quota {
        let conn = quota_figures(orders, c.rate_scale, 1, c.max_wait_ms).await?;
        emit("quota", conn.clone());
        (
            conn,
            baseline_figures(orders, Some(c.rate_scale), retry).await?,
        )
    } else {
        let (_, conn) = ingest_figures(orders, 1).await?;
        emit("ingest", conn.clone());
        (conn, baseline_figures(orders, None, retry).await?)
    };
    let mut v = baseline;
    let time_key = if c.quota {
        "modelled_seconds"
    } else {
        "seconds"
    };
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    v["versus_connector"] = json!({
        "connector_amazon_calls_total": connector["amazon_calls_total"],
        "connector_calls_per_1000_orders": connector["calls_per_1000_orders"],
        "connector_throttled_429": connector["throttled_429"],
        format!("connector_{time_key}"): connector[time_key],
        "calls_ratio_baseline_over_connector": round(f(&v, "amazon_calls_total") / f(&connector, "amazon_calls_total"), 1),
        "time_ratio_baseline_over_connector": round(f(&v, time_key) / f(&connector, time_key), 2),
        "compared_on": time_key,
    });
    emit(
        if c.quota {
            "baseline-quota"
        } else {
            "baseline"
        },
        v,
    );
    Ok(())
}

/// SKUs `SKU-000001` … mapped to products `P000001` … with stock, and the listings on Amazon.
async fn seed_skus(env: &Env, skus: usize) -> anyhow::Result<()> {
    let t = Instant::now();
    for q in [
        "INSERT INTO products (id, shop_id, code, name) SELECT gen_random_uuid(), $1, 'P' || lpad(i::text, 6, '0'), 'Product ' || i FROM generate_series(1, $2) i",
        "INSERT INTO stock (product_id, shop_id, on_hand) SELECT id, shop_id, 5 + substr(code, 2)::int % 40 FROM products WHERE shop_id = $1 AND code ~ '^P[0-9]+$' AND $2 > 0",
        "INSERT INTO external_products (id, shop_id, sku, product_id, handling_days) SELECT gen_random_uuid(), shop_id, 'SKU-' || substr(code, 2), id, CASE WHEN substr(code, 2)::int % 7 = 0 THEN 3 END FROM products WHERE shop_id = $1 AND code ~ '^P[0-9]+$' AND $2 > 0",
    ] {
        sqlx::query(q)
            .bind(env.shop_id)
            .bind(skus as i32)
            .execute(&env.pool)
            .await?;
    }
    for i in 1..=skus {
        env.sim.sim().put_listing(&format!("SKU-{i:06}"), 0, None);
    }
    note(format!("seeded {skus} mapped SKUs in {:.1?}", t.elapsed()));
    Ok(())
}

fn feed_bytes(env: &Env, since: usize) -> (usize, u64) {
    let feeds = env.sim.sim().feeds();
    let new = &feeds[since.min(feeds.len())..];
    (
        new.len(),
        new.iter()
            .map(|f| f.input.as_ref().map_or(0, |s| s.len() as u64))
            .sum(),
    )
}

pub async fn inventory_cmd(c: &Common) -> anyhow::Result<()> {
    let skus = c.skus.unwrap_or(100_000);
    let changed = c.changed.unwrap_or(10_000).min(skus);
    let v = with_env(
        SimConfig {
            unlimited: true,
            // Feeds stay queued: Amazon's processing is not our time.
            feed_processing: Duration::from_secs(3600),
            ..SimConfig::default()
        },
        ServiceOptions::unlimited(),
        async |env| {
            seed_skus(env, skus).await?;
            // Only the seeded SKUs: the shop's 40 catalog SKUs are unmapped for this scenario.
            sqlx::query("DELETE FROM external_products WHERE shop_id = $1 AND sku ~ '^SKU-[0-9]{4}$'")
                .bind(env.shop_id)
                .execute(&env.pool)
                .await?;
            env.start(inventory_sync::SERVICE, 1).await?;
            env.reset_peak(inventory_sync::SERVICE);
            // 1. Every mapped SKU (never pushed).
            let (cmd, at) = env
                .trigger(CommandParams::InventorySync { full: false })
                .await?;
            let first = env.wait_run(cmd, Duration::from_secs(600)).await?;
            first.ensure_succeeded()?;
            let all_seconds = first.seconds_since(at);
            let (all_feeds, all_bytes) = feed_bytes(env, 0);
            let (peak_all, _) = env.service_memory(inventory_sync::SERVICE);
            let (calls_all, _) = env.amazon_calls();
            // 2. `changed` SKUs' stock changes; a fresh quota window (as if five minutes
            // passed: JSON_LISTINGS_FEED allows 5 feeds per 5 minutes).
            sqlx::query("DELETE FROM rate_buckets").execute(&env.pool).await?;
            sqlx::query(
                "UPDATE stock SET on_hand = on_hand + 1 WHERE product_id IN \
                 (SELECT id FROM products WHERE shop_id = $1 AND code ~ '^P[0-9]+$' ORDER BY code LIMIT $2)",
            )
            .bind(env.shop_id)
            .bind(changed as i64)
            .execute(&env.pool)
            .await?;
            env.reset_peak(inventory_sync::SERVICE);
            let feeds_before = env.sim.sim().feeds().len();
            let (cmd, at) = env
                .trigger(CommandParams::InventorySync { full: false })
                .await?;
            let second = env.wait_run(cmd, Duration::from_secs(600)).await?;
            second.ensure_succeeded()?;
            let changed_seconds = second.seconds_since(at);
            let (ch_feeds, ch_bytes) = feed_bytes(env, feeds_before);
            let (peak_changed, idle) = env.service_memory(inventory_sync::SERVICE);
            let (calls, throttled) = env.amazon_calls();
            let calls_changed: BTreeMap<String, u64> = calls
                .iter()
                .map(|(k, v)| (k.clone(), v - calls_all.get(k).copied().unwrap_or(0)))
                .filter(|(_, v)| *v > 0)
                .collect();
            let targets = first.counts["targets"].clone();
            Ok(json!({
                "skus": skus,
                "changed": changed,
                "seconds": round(changed_seconds, 3),
                "run_seconds": round(second.run_seconds(), 3),
                "per_second": round(changed as f64 / changed_seconds, 1),
                "feeds": ch_feeds,
                "feed_bytes": ch_bytes,
                "amazon_calls": calls_changed,
                "throttled_429": throttled,
                "peak_rss_mb": round(peak_changed, 1),
                "full_push": {
                    "targets": targets,
                    "seconds": round(all_seconds, 3),
                    "run_seconds": round(first.run_seconds(), 3),
                    "per_second": round(skus as f64 / all_seconds, 1),
                    "feeds": all_feeds,
                    "feed_bytes": all_bytes,
                    "amazon_calls": calls_all,
                    "peak_rss_mb": round(peak_all, 1),
                    "run": first.summary(),
                },
                "rss_after_mb": round(idle, 1),
                "peak_rss_of": "inventory-sync process",
                "run": second.summary(),
                "note": "seconds = trigger committed to run finished (feeds built, uploaded, created, recorded); Amazon's processing excluded",
            }))
        },
    )
    .await?;
    emit("inventory", v);
    Ok(())
}

pub async fn shipment_cmd(c: &Common) -> anyhow::Result<()> {
    let orders = c.orders.unwrap_or(10_000);
    let v = with_env(
        SimConfig {
            unlimited: true,
            feed_processing: Duration::from_millis(500),
            ..SimConfig::default()
        },
        ServiceOptions::unlimited(),
        async |env| {
            // Orders imported (all paid), then allocated and shipped today in the warehouse.
            env.sim.sim().generate_orders(orders, 7, jp_only(0.0));
            env.start(INGEST, 1).await?;
            let (cmd, _) = env
                .trigger(CommandParams::OrderIngest {
                    mode: ImportMode::Differential,
                })
                .await?;
            env.wait_run(cmd, Duration::from_secs(600)).await?.ensure_succeeded()?;
            let t = Instant::now();
            let today = domain::eligibility::today_in(chrono_tz::Asia::Tokyo, Utc::now());
            let ids: Vec<String> = sqlx::query_scalar(
                "SELECT amazon_order_id FROM shipping_instructions WHERE shop_id = $1 AND status = 'awaiting_shipment' ORDER BY amazon_order_id",
            )
            .bind(env.shop_id)
            .fetch_all(&env.pool)
            .await?;
            for (chunk_no, chunk) in ids.chunks(1000).enumerate() {
                let mut tx = env.pool.begin().await?;
                for (i, id) in chunk.iter().enumerate() {
                    store::wms::allocate(&mut tx, env.shop_id, id).await?;
                    let n = (chunk_no * 1000 + i) as u64;
                    let tracking = vec![format!("{:012}", 400_000_000_000u64 + n * 7)];
                    store::wms::ship(&mut tx, env.shop_id, id, &tracking, today).await?;
                }
                tx.commit().await?;
            }
            note(format!("{} instructions shipped in the warehouse in {:.1?}", ids.len(), t.elapsed()));
            env.start(shipment_feedback::SERVICE, 1).await?;
            env.start(feed_poller::SERVICE, 1).await?;
            env.reset_peak(shipment_feedback::SERVICE);
            env.reset_peak(feed_poller::SERVICE);
            let before = env.amazon_calls().0;
            let (cmd, at) = env.trigger(CommandParams::ShipmentFeedback {}).await?;
            let run = env.wait_run(cmd, Duration::from_secs(600)).await?;
            run.ensure_succeeded()?;
            let submit_seconds = run.seconds_since(at);
            let t0 = Instant::now();
            env.wait_zero(
                "SELECT count(*) FROM shipping_instructions WHERE shop_id = $1 AND status = 'shipped' AND api_status IN ('awaiting_print', 'printed')",
                Duration::from_secs(900),
            )
            .await?;
            let confirmed_seconds = submit_seconds + t0.elapsed().as_secs_f64();
            let confirmed = env
                .count("SELECT count(*) FROM shipping_instructions WHERE shop_id = $1 AND api_status = 'shipped'")
                .await?;
            let (calls, throttled) = env.amazon_calls();
            let calls: BTreeMap<String, u64> = calls
                .into_iter()
                .map(|(k, v)| {
                    let b = before.get(&k).copied().unwrap_or(0);
                    (k, v - b)
                })
                .filter(|(_, v)| *v > 0)
                .collect();
            let (feeds, bytes) = feed_bytes(env, 0);
            let (peak_sf, _) = env.service_memory(shipment_feedback::SERVICE);
            let (peak_fp, _) = env.service_memory(feed_poller::SERVICE);
            Ok(json!({
                "orders": orders,
                "shipments": ids.len(),
                "confirmed_by_amazon": confirmed,
                "seconds": round(submit_seconds, 3),
                "run_seconds": round(run.run_seconds(), 3),
                "per_second": round(ids.len() as f64 / submit_seconds, 1),
                "seconds_to_results_applied": round(confirmed_seconds, 3),
                "simulated_feed_processing_ms": 500,
                "feeds": feeds,
                "feed_bytes": bytes,
                "amazon_calls": calls,
                "calls_per_1000_orders": round(total(&calls) as f64 * 1000.0 / ids.len().max(1) as f64, 2),
                "throttled_429": throttled,
                "peak_rss_mb": round(peak_sf.max(peak_fp), 1),
                "peak_rss_by_service_mb": {"shipment-feedback": round(peak_sf, 1), "feed-poller": round(peak_fp, 1)},
                "run": run.summary(),
                "note": "seconds = trigger committed to shipment-feedback run finished (feed built, uploaded, created, recorded); seconds_to_results_applied adds Amazon's processing and feed-poller",
            }))
        },
    )
    .await?;
    emit("shipment", v);
    Ok(())
}

pub async fn status_cmd(c: &Common) -> anyhow::Result<()> {
    let open = c.orders.unwrap_or(50_000);
    let changed = c.changed.unwrap_or(5_000).min(open);
    let v = with_env(
        SimConfig {
            unlimited: true,
            ..SimConfig::default()
        },
        ServiceOptions::unlimited(),
        async |env| {
            // Open instructions: PENDING orders imported (on hold, unpaid).
            let orders = env.sim.sim().generate_orders(open, 11, jp_only(1.0));
            env.start(INGEST, 1).await?;
            let (cmd, _) = env
                .trigger(CommandParams::OrderIngest {
                    mode: ImportMode::Differential,
                })
                .await?;
            env.wait_run(cmd, Duration::from_secs(900)).await?.ensure_succeeded()?;
            env.start(status_sync::ACTION, 1).await?;
            // A first run sets the watermark (it reads every order updated in the last week).
            let t = Instant::now();
            let before_first = env.amazon_calls().0;
            let (cmd, at) = env
                .trigger(CommandParams::StatusSync { mode: StatusSyncMode::Changes })
                .await?;
            let first = env.wait_run(cmd, Duration::from_secs(900)).await?;
            first.ensure_succeeded()?;
            let first_seconds = first.seconds_since(at);
            let first_calls = env.amazon_calls().0;
            let first_calls: BTreeMap<String, u64> = first_calls
                .iter()
                .map(|(k, v)| (k.clone(), v - before_first.get(k).copied().unwrap_or(0)))
                .filter(|(_, v)| *v > 0)
                .collect();
            note(format!("first status-sync run over {open} unchanged orders: {:.1?}", t.elapsed()));
            // `changed` orders change on Amazon: 4 in 5 paid, 1 in 5 cancelled.
            for (i, o) in orders.iter().take(changed).enumerate() {
                let change = if i % 5 == 4 {
                    StatusChange::Cancelled { cancelled_by: Some("BUYER".into()), reason: None }
                } else {
                    StatusChange::Unshipped
                };
                env.sim.sim().set_order_status(&o.order_id, change)?;
            }
            env.reset_peak(status_sync::ACTION);
            let before = env.amazon_calls().0;
            let (cmd, at) = env
                .trigger(CommandParams::StatusSync { mode: StatusSyncMode::Changes })
                .await?;
            let run = env.wait_run(cmd, Duration::from_secs(900)).await?;
            run.ensure_succeeded()?;
            let seconds = run.seconds_since(at);
            let (calls, throttled) = env.amazon_calls();
            let calls: BTreeMap<String, u64> = calls
                .into_iter()
                .map(|(k, v)| {
                    let b = before.get(&k).copied().unwrap_or(0);
                    (k, v - b)
                })
                .filter(|(_, v)| *v > 0)
                .collect();
            let paid = env
                .count("SELECT count(*) FROM shipping_instructions WHERE shop_id = $1 AND payment_status = 'paid'")
                .await?;
            let canceled = env
                .count("SELECT count(*) FROM shipping_instructions WHERE shop_id = $1 AND status = 'canceled'")
                .await?;
            let (peak, _) = env.service_memory(status_sync::ACTION);
            Ok(json!({
                "orders": open,
                "open_instructions": open,
                "changed": changed,
                "paid_after": paid,
                "canceled_after": canceled,
                "seconds": round(seconds, 3),
                "run_seconds": round(run.run_seconds(), 3),
                "per_second": round(changed as f64 / seconds, 1),
                "amazon_calls": calls,
                "calls_per_1000_orders": round(total(&calls) as f64 * 1000.0 / changed.max(1) as f64, 2),
                "calls_per_1000_of": "changed orders",
                "throttled_429": throttled,
                "peak_rss_mb": round(peak, 1),
                "peak_rss_of": "status-sync process",
                "first_run_over_all_open": {
                    "seconds": round(first_seconds, 3),
                    "amazon_calls": first_calls,
                    "run": first.summary(),
                },
                "run": run.summary(),
            }))
        },
    )
    .await?;
    emit("status", v);
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub async fn latency_cmd(c: &Common) -> anyhow::Result<()> {
    let runs = c.runs;
    let v = with_env(
        SimConfig {
            unlimited: true,
            ..SimConfig::default()
        },
        ServiceOptions::unlimited(),
        async |env| {
            env.start(INGEST, 1).await?;
            let base = spapi_sim::model::MARKETPLACE_JP;
            let start = Utc::now() - chrono::Duration::minutes(5);
            let start = start - chrono::Duration::nanoseconds(i64::from(start.timestamp_subsec_nanos()));
            let mut lat = Vec::with_capacity(runs);
            let mut wall_lat = Vec::with_capacity(runs);
            let t = Instant::now();
            for i in 0..runs {
                // One new order per run, alone in the run's window.
                let created = start - chrono::Duration::seconds(2 * i as i64);
                env.sim.sim().create_order(OrderSpec {
                    marketplace_id: Some(base.to_owned()),
                    status: Some(OrderStatus::Unshipped),
                    created_time: Some(created),
                    ..OrderSpec::default()
                })?;
                let sent = Instant::now();
                let (cmd, at) = env
                    .trigger(CommandParams::OrderIngest {
                        mode: ImportMode::Range {
                            from: created,
                            to: created + chrono::Duration::seconds(1),
                        },
                    })
                    .await?;
                let run = env.wait_run(cmd, Duration::from_secs(60)).await?;
                wall_lat.push(sent.elapsed().as_secs_f64() * 1000.0);
                run.ensure_succeeded()?;
                if run.counts["new"].as_u64() != Some(1) {
                    bail!("run {i} imported {} new orders, expected 1", run.counts["new"]);
                }
                lat.push(run.seconds_since(at) * 1000.0);
            }
            let wall = t.elapsed().as_secs_f64();
            let mut sorted = lat.clone();
            sorted.sort_by(f64::total_cmp);
            let (calls, throttled) = env.amazon_calls();
            let (peak, _) = env.service_memory(INGEST);
            let mean = lat.iter().sum::<f64>() / lat.len().max(1) as f64;
            wall_lat.sort_by(f64::total_cmp);
            Ok(json!({
                "runs": runs,
                "orders": runs,
                "seconds": round(wall, 3),
                "per_second": round(runs as f64 / wall, 1),
                "latency_ms": {
                    "p50": round(percentile(&sorted, 50.0), 2),
                    "p90": round(percentile(&sorted, 90.0), 2),
                    "p99": round(percentile(&sorted, 99.0), 2),
                    "max": round(sorted.last().copied().unwrap_or(f64::NAN), 2),
                    "mean": round(mean, 2),
                },
                "wall_latency_ms": {
                    "p50": round(percentile(&wall_lat, 50.0), 2),
                    "p90": round(percentile(&wall_lat, 90.0), 2),
                    "p99": round(percentile(&wall_lat, 99.0), 2),
                    "max": round(wall_lat.last().copied().unwrap_or(f64::NAN), 2),
                },
                "measured": "latency_ms: outbox row's transaction (trigger) → action_runs.finished_at (the finishing transaction's start), database clock; wall_latency_ms: bench clock from before the trigger's transaction to the run seen finished (polled every 2 ms: an upper bound). Each run imports one new order (one searchOrders call)",
                "amazon_calls": calls,
                "calls_per_1000_orders": round(total(&calls) as f64 * 1000.0 / runs.max(1) as f64, 2),
                "throttled_429": throttled,
                "peak_rss_mb": round(peak, 1),
                "peak_rss_of": "order-ingest process",
            }))
        },
    )
    .await?;
    emit("latency", v);
    Ok(())
}

pub async fn idle_memory_cmd(_c: &Common) -> anyhow::Result<()> {
    let v = with_env(
        SimConfig {
            unlimited: true,
            ..SimConfig::default()
        },
        ServiceOptions::unlimited(),
        async |env| {
            let services = [
                INGEST,
                status_sync::ACTION,
                shipment_feedback::SERVICE,
                inventory_sync::SERVICE,
                feed_poller::SERVICE,
            ];
            for s in services {
                env.start(s, 1).await?;
            }
            // Settle: connections open, first relay round done.
            tokio::time::sleep(Duration::from_secs(3)).await;
            let mut rss = Map::new();
            let mut max: f64 = 0.0;
            for s in services {
                let (peak, cur) = env.service_memory(s);
                max = max.max(cur);
                rss.insert(s.into(), json!({"rss_mb": round(cur, 1), "peak_rss_mb": round(peak, 1)}));
            }
            Ok(json!({
                "services": rss,
                "max_idle_rss_mb": round(max, 1),
                "peak_rss_mb": round(max, 1),
                "process": if std::env::var_os("BENCH_SERVICE_BIN_DIR").is_some() {
                    "the services' own release binaries (BENCH_SERVICE_BIN_DIR)"
                } else {
                    "bench serve <service> (the service's wiring in the bench binary, which also links the simulator and the other services)"
                },
            }))
        },
    )
    .await?;
    emit("idle-memory", v);
    Ok(())
}

/// Every scenario at a small size: checks that the bench works end to end.
pub async fn smoke_cmd(c: &Common) -> anyhow::Result<()> {
    let n = c.orders.unwrap_or(300);
    let mut small = c.clone();
    small.orders = Some(n);
    ingest_cmd(&small).await?;
    baseline_cmd(&small).await?;
    small.orders = Some(3_000);
    quota_cmd(&small).await.context("quota")?;
    small.orders = Some(n);
    small.skus = Some(2_000);
    small.changed = Some(200);
    inventory_cmd(&small).await?;
    shipment_cmd(&small).await?;
    small.changed = Some(50);
    status_cmd(&small).await?;
    small.runs = 20;
    latency_cmd(&small).await?;
    idle_memory_cmd(&small).await?;
    Ok(())
}

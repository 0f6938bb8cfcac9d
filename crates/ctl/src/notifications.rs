//! `ctl notifications subscribe|unsubscribe|status SHOP`: a shop's subscriptions to Amazon's
//! ORDER_CHANGE and FEED_PROCESSING_FINISHED notifications (delivered to an SQS queue that the
//! notification-listener reads), and status-sync's cadence that goes with them: while Amazon
//! announces order changes, status-sync's differential poll is only the sweep (hourly by
//! default); without them it is the polling it was before.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use domain::{
    messages::Action,
    schedule::{Cadence, DEFAULT_ENTRY},
};
use serde_json::json;
use spapi::notifications::NotificationType;
use store::{notifications as repo, schedules::Change};
use uuid::Uuid;

use crate::config::Config;

/// status-sync's cadence while the shop is subscribed, unless `--sweep` says otherwise.
pub const DEFAULT_SWEEP: &str = subscriptions::DEFAULT_SWEEP;

#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// Subscribe a shop to ORDER_CHANGE (status changes and buyer cancellation requests on its
    /// marketplaces) and FEED_PROCESSING_FINISHED, delivered to an SQS queue; status-sync then
    /// polls only as the sweep (--sweep). An existing destination or subscription is reused.
    Subscribe(Box<SubscribeArgs>),
    /// Delete the shop's subscriptions at Amazon and restore status-sync's cadence from before
    /// subscribing (or "*/10 * * * *").
    Unsubscribe(UnsubscribeArgs),
    /// The shop's subscriptions, status-sync's cadence in effect, the last notification received
    /// and the counts by outcome over 24 hours.
    Status(StatusArgs),
}

fn sqs_arn(s: &str) -> Result<String, String> {
    subscriptions::check_sqs_arn(s)
        .map(str::to_owned)
        .map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub struct SubscribeArgs {
    /// Shop code (see `ctl shop list`).
    pub shop: String,
    /// ARN of the SQS queue Amazon delivers to (the notification-listener's SQS_QUEUE_URL), e.g.
    /// arn:aws:sqs:us-west-2:123456789012:connector-notifications.
    #[arg(long, value_parser = sqs_arn)]
    pub sqs_arn: String,
    /// status-sync's cadence while subscribed (the sweep that finds changes no notification
    /// announced): a cron expression in the shop's time zone, e.g. '0 * * * *' (hourly) or
    /// '*/30 * * * *'.
    #[arg(long, default_value = DEFAULT_SWEEP)]
    pub sweep: Cadence,
    /// Who is subscribing (recorded on the schedule entry and in the API log).
    #[arg(long, env = "CTL_REQUESTED_BY", default_value = "ctl")]
    pub requested_by: String,
}

#[derive(Debug, Args)]
pub struct UnsubscribeArgs {
    /// Shop code (see `ctl shop list`).
    pub shop: String,
    /// Who is unsubscribing (recorded on the schedule entry and in the API log).
    #[arg(long, env = "CTL_REQUESTED_BY", default_value = "ctl")]
    pub requested_by: String,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Shop code (see `ctl shop list`).
    pub shop: String,
}

pub async fn run(config: &Config, cmd: NotificationsCommand, json_out: bool) -> anyhow::Result<()> {
    let pool = config.pool().await?;
    match cmd {
        NotificationsCommand::Subscribe(a) => subscribe(&pool, *a, json_out).await,
        NotificationsCommand::Unsubscribe(a) => unsubscribe(&pool, a, json_out).await,
        NotificationsCommand::Status(a) => status(&pool, a, json_out).await,
    }
}

async fn shop(pool: &sqlx::PgPool, code: &str) -> anyhow::Result<store::shops::ShopRecord> {
    let mut conn = pool.acquire().await?;
    store::shops::get_by_code(&mut conn, code)
        .await
        .with_context(|| format!("unknown shop {code:?}: see `ctl shop list`"))
}

async fn handle(
    pool: &sqlx::PgPool,
    rec: &store::shops::ShopRecord,
) -> anyhow::Result<spapi::Shop> {
    let keys = crypto::Keyring::from_env()?;
    // An operator can wait a few seconds for the Notifications quota (1/s, burst 5).
    let api = runtime::spapi_client(
        pool,
        crate::config::spapi_rate_scale()?,
        Duration::from_secs(10),
    )?;
    let mut conn = pool.acquire().await?;
    runtime::shop_api(&mut conn, &keys, &api, &rec.shop)
        .await
        .with_context(|| format!("the SP-API handle of shop {:?}", rec.shop.code.as_str()))
}

/// status-sync's default entry: (cron, enabled).
async fn status_sync_cadence(
    conn: &mut sqlx::PgConnection,
    shop_id: Uuid,
) -> anyhow::Result<Option<(String, bool)>> {
    Ok(store::schedules::list(conn, &[shop_id])
        .await?
        .into_iter()
        .find(|s| s.action == Action::StatusSync && s.entry == DEFAULT_ENTRY)
        .map(|s| (s.cron, s.enabled)))
}

async fn subscribe(pool: &sqlx::PgPool, a: SubscribeArgs, json_out: bool) -> anyhow::Result<()> {
    let rec = shop(pool, &a.shop).await?;
    let api = handle(pool, &rec).await?;
    let done =
        subscriptions::subscribe(pool, &api, &rec, &a.sqs_arn, &a.sweep, &a.requested_by).await?;
    let cadence = match &done.change {
        Change::Created => "added".to_owned(),
        Change::Updated { previous } => format!("changed from \"{previous}\""),
        Change::Unchanged => "unchanged".to_owned(),
    };
    let created = |c: bool| if c { "created" } else { "reused" };
    if json_out {
        println!(
            "{}",
            json!({
                "shop": a.shop,
                "destination": {
                    "destination_id": done.destination_id, "sqs_arn": done.sqs_arn,
                    "created": done.destination_created,
                },
                "subscriptions": done.subscriptions.iter().map(|s| json!({
                    "type": s.notification_type.as_str(), "subscription_id": s.subscription_id,
                    "destination_id": s.destination_id, "created": s.created,
                })).collect::<Vec<_>>(),
                "status_sync": {"cron": done.sweep, "change": cadence},
                "order_ingest": {"cron": done.new_orders, "new_orders_only": true},
            })
        );
    } else {
        println!(
            "{}: destination {} ({}, {})",
            a.shop,
            done.destination_id,
            done.sqs_arn,
            created(done.destination_created)
        );
        for s in &done.subscriptions {
            println!(
                "{}: {} subscription {} ({})",
                a.shop,
                s.notification_type,
                s.subscription_id,
                created(s.created)
            );
        }
        println!(
            "{}: status-sync (default) \"{}\" as the sweep, {cadence}",
            a.shop, done.sweep
        );
        match &done.new_orders {
            Some(cron) => println!(
                "{}: order-ingest (default) \"{cron}\", new orders only while subscribed",
                a.shop
            ),
            None => println!(
                "{}: order-ingest keeps the cadence its operator chose; it asks for new orders only while subscribed",
                a.shop
            ),
        }
    }
    Ok(())
}

async fn unsubscribe(
    pool: &sqlx::PgPool,
    a: UnsubscribeArgs,
    json_out: bool,
) -> anyhow::Result<()> {
    let rec = shop(pool, &a.shop).await?;
    let api = handle(pool, &rec).await?;
    let done = subscriptions::unsubscribe(pool, &api, &rec, &a.requested_by).await?;
    if json_out {
        println!(
            "{}",
            json!({
                "shop": a.shop,
                "deleted": done.deleted.iter().map(|d| json!({
                    "type": d.notification_type, "subscription_id": d.subscription_id,
                    "existed": d.existed,
                })).collect::<Vec<_>>(),
                "status_sync": done.restored.as_ref().map(|(cron, _)| json!({"cron": cron})),
                "order_ingest": done.ingest_restored.as_ref().map(|cron| json!({"cron": cron})),
                "changed": done.changed,
            })
        );
    } else if !done.changed {
        println!(
            "{}: no subscriptions (none recorded, none at Amazon); nothing changed",
            a.shop
        );
    } else {
        for d in &done.deleted {
            println!(
                "{}: {} subscription {} {}",
                a.shop,
                d.notification_type,
                d.subscription_id,
                if d.existed {
                    "deleted"
                } else {
                    "was already gone at Amazon"
                }
            );
        }
        if let Some((cron, change)) = &done.restored {
            println!(
                "{}: status-sync (default) \"{cron}\" restored{}",
                a.shop,
                match change {
                    Change::Updated { previous } => format!(" (was \"{previous}\")"),
                    _ => String::new(),
                }
            );
        }
        if let Some(cron) = &done.ingest_restored {
            println!("{}: order-ingest (default) \"{cron}\" restored", a.shop);
        }
    }
    Ok(())
}

fn when(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()
}

async fn status(pool: &sqlx::PgPool, a: StatusArgs, json_out: bool) -> anyhow::Result<()> {
    let rec = shop(pool, &a.shop).await?;
    let shop_id = rec.shop.id;
    let tz = rec.shop.time_zone;
    let mut conn = pool.acquire().await?;
    let subs = repo::subscriptions(&mut conn, shop_id).await?;
    let cadence = status_sync_cadence(&mut conn, shop_id).await?;
    let last = repo::last_received(&mut conn, shop_id).await?;
    let since = Utc::now() - chrono::Duration::hours(24);
    let counts = repo::counts_since(&mut conn, shop_id, since).await?;
    let count = |outcome: &str| {
        counts
            .iter()
            .find(|(o, _)| o == outcome)
            .map_or(0, |(_, n)| *n)
    };
    let outcomes = ["queued", "ignored", "poison"];
    if json_out {
        let mut by_outcome = serde_json::Map::new();
        for o in outcomes {
            by_outcome.insert(o.to_owned(), json!(count(o)));
        }
        for (o, n) in &counts {
            by_outcome.entry(o.clone()).or_insert(json!(n));
        }
        println!(
            "{}",
            json!({
                "shop": a.shop,
                "subscribed": !subs.is_empty(),
                "subscriptions": subs.iter().map(|s| json!({
                    "type": s.notification_type, "subscription_id": s.subscription_id,
                    "destination_id": s.destination_id, "since": s.subscribed_at,
                    "previous_cron": s.previous_cron,
                })).collect::<Vec<_>>(),
                "status_sync": cadence.as_ref().map(|(cron, enabled)| json!({
                    "cron": cron, "enabled": enabled, "time_zone": tz.name(),
                })),
                "last_notification": last.as_ref().map(|(ty, subject, outcome, at)| json!({
                    "type": ty, "subject": subject, "outcome": outcome, "received_at": at,
                })),
                "last_24h": by_outcome,
            })
        );
        return Ok(());
    }
    if subs.is_empty() {
        println!(
            "{}: not subscribed to Amazon's notifications (`ctl notifications subscribe {} --sqs-arn ARN`)",
            a.shop, a.shop
        );
    } else {
        println!(
            "{:<26} {:<38} {:<38} SINCE",
            "TYPE", "SUBSCRIPTION", "DESTINATION"
        );
        for s in &subs {
            println!(
                "{:<26} {:<38} {:<38} {}",
                s.notification_type,
                s.subscription_id,
                s.destination_id,
                when(s.subscribed_at, tz)
            );
        }
    }
    match &cadence {
        Some((cron, enabled)) => println!(
            "status-sync (default): \"{cron}\" in {}{}{}",
            tz.name(),
            if *enabled { "" } else { ", disabled" },
            if subs
                .iter()
                .any(|s| s.notification_type == NotificationType::OrderChange.as_str())
            {
                " (the sweep: order changes are announced)"
            } else {
                " (polling)"
            }
        ),
        None => println!("status-sync (default): no schedule entry"),
    }
    match &last {
        Some((ty, subject, outcome, at)) => println!(
            "last notification: {ty} {} {outcome} at {}",
            subject.as_deref().unwrap_or("-"),
            when(*at, tz)
        ),
        None => println!("last notification: none received"),
    }
    let mut parts: Vec<String> = outcomes
        .iter()
        .map(|o| format!("{o} {}", count(o)))
        .collect();
    for (o, n) in &counts {
        if !outcomes.contains(&o.as_str()) {
            parts.push(format!("{o} {n}"));
        }
    }
    println!("last 24 h: {}", parts.join(", "));
    Ok(())
}

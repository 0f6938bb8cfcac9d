//! `ctl notifications subscribe|unsubscribe|status SHOP`: a shop's subscriptions to Amazon's
//! ORDER_CHANGE and FEED_PROCESSING_FINISHED notifications (delivered to an SQS queue that the
//! notification-listener reads), and status-sync's cadence that goes with them: while Amazon
//! announces order changes, status-sync's differential poll is only the sweep (hourly by
//! default); without them it is the polling it was before.

use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use domain::{
    messages::Action,
    schedule::{Cadence, DEFAULT_ENTRY},
};
use serde_json::json;
use spapi::notifications::{CreateSubscriptionRequest, NotificationType};
use store::{
    api_log::{self, Entry, Level},
    notifications as repo,
    schedules::{self, Change},
};
use uuid::Uuid;

use crate::config::Config;

/// The name given to a destination the connector creates.
pub const DESTINATION_NAME: &str = "warehouse-connector";
/// status-sync's cadence while the shop is subscribed, unless `--sweep` says otherwise.
pub const DEFAULT_SWEEP: &str = domain::notifications::SWEEP_CRON;

/// status-sync's cadence restored on unsubscribe when none was recorded: its default entry's
/// (`domain::schedule::DEFAULTS`).
fn polling_cron() -> &'static str {
    domain::schedule::DEFAULTS
        .iter()
        .find(|d| d.action == Action::StatusSync && d.entry == DEFAULT_ENTRY)
        .expect("status-sync has a default schedule entry")
        .cron
}
/// API-log code of a subscription.
pub const SUBSCRIBED_CODE: &str = "notifications_subscribed";
/// API-log code of an unsubscription.
pub const UNSUBSCRIBED_CODE: &str = "notifications_unsubscribed";

/// The types the connector subscribes to, in the order they are created (ORDER_CHANGE first:
/// it is the one that changes status-sync's cadence).
const TYPES: [NotificationType; 2] = [
    NotificationType::OrderChange,
    NotificationType::FeedProcessingFinished,
];

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
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() == 6
        && parts[..3] == ["arn", "aws", "sqs"]
        && parts[3..].iter().all(|p| !p.trim().is_empty())
    {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not an SQS queue ARN: expected arn:aws:sqs:REGION:ACCOUNT:QUEUE, e.g. \
             arn:aws:sqs:us-west-2:123456789012:connector-notifications"
        ))
    }
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
    Ok(schedules::list(conn, &[shop_id])
        .await?
        .into_iter()
        .find(|s| s.action == Action::StatusSync && s.entry == DEFAULT_ENTRY)
        .map(|s| (s.cron, s.enabled)))
}

fn amazon(what: &str, e: spapi::Error) -> anyhow::Error {
    let hint = match &e {
        spapi::Error::Authorization { .. } => {
            " (LWA refused the shop's credentials: `ctl shop rotate-secret` / `ctl shop reauthorize` replace them)"
        }
        spapi::Error::Throttled { .. } => " (Amazon's quota: try again in a few seconds)",
        _ => "",
    };
    anyhow::anyhow!("Amazon refused {what}: {e}{hint}")
}

/// Subscriptions this run created, deleted again when a later step fails (nothing half-done).
/// Returns what to tell the operator about them.
async fn roll_back(api: &spapi::Shop, created: &[(NotificationType, String)]) -> String {
    let mut notes = Vec::new();
    for (ty, id) in created {
        match api.delete_subscription_by_id(ty, id).await {
            Ok(_) => notes.push(format!(
                "the {ty} subscription {id} created before was deleted again"
            )),
            Err(e) => notes.push(format!(
                "the {ty} subscription {id} created before remains at Amazon (deleting it failed: {e}); \
                 `ctl notifications unsubscribe` removes it"
            )),
        }
    }
    if notes.is_empty() {
        "no subscription was created".to_owned()
    } else {
        notes.join("; ")
    }
}

async fn subscribe(pool: &sqlx::PgPool, a: SubscribeArgs, json_out: bool) -> anyhow::Result<()> {
    let rec = shop(pool, &a.shop).await?;
    let shop_id = rec.shop.id;
    let api = handle(pool, &rec).await?;

    // 1. Amazon: the destination, then both subscriptions; a failure deletes what this run
    //    created, so that nothing is half-done.
    let destination = api
        .ensure_destination(DESTINATION_NAME, &a.sqs_arn)
        .await
        .map_err(|e| {
            amazon(
                &format!("the destination for {}; nothing was changed", a.sqs_arn),
                e,
            )
        })?;
    let destination_id = destination.value.destination_id.clone();
    let marketplaces: Vec<String> = rec
        .shop
        .marketplaces
        .iter()
        .map(|m| m.id().to_owned())
        .collect();
    let mut created: Vec<(NotificationType, String)> = Vec::new();
    let mut subs = Vec::new();
    for ty in TYPES {
        let req = match ty {
            NotificationType::OrderChange => {
                CreateSubscriptionRequest::order_change(&destination_id, marketplaces.clone())
            }
            _ => CreateSubscriptionRequest::feed_processing_finished(&destination_id),
        };
        let sub = match api.ensure_subscription(&ty, &req).await {
            Ok(s) => s,
            Err(e) => {
                let undone = roll_back(&api, &created).await;
                return Err(amazon(
                    &format!(
                        "the {ty} subscription of shop {}; {undone}; nothing was recorded",
                        a.shop
                    ),
                    e,
                ));
            }
        };
        if sub.value.destination_id != destination_id {
            let undone = roll_back(&api, &created).await;
            bail!(
                "shop {} already has a {ty} subscription ({}) delivering to destination {}, not to {} \
                 ({}): run `ctl notifications unsubscribe {}` first to move it; {undone}; nothing was recorded",
                a.shop,
                sub.value.subscription_id,
                sub.value.destination_id,
                destination_id,
                a.sqs_arn,
                a.shop
            );
        }
        if sub.created {
            created.push((ty.clone(), sub.value.subscription_id.clone()));
        }
        subs.push((ty, sub));
    }

    // 2. The records, status-sync's cadence and the API log, in one transaction.
    let recorded = async {
        let mut tx = pool.begin().await?;
        let existing = repo::subscriptions(&mut tx, shop_id).await?;
        // The cadence to restore on unsubscribe: kept from the first subscription.
        let previous_cron = if existing
            .iter()
            .any(|s| s.notification_type == NotificationType::OrderChange.as_str())
        {
            None
        } else {
            status_sync_cadence(&mut tx, shop_id).await?.map(|(c, _)| c)
        };
        for (ty, sub) in &subs {
            repo::save_subscription(
                &mut tx,
                shop_id,
                ty.as_str(),
                &sub.value.subscription_id,
                &destination_id,
                match ty {
                    NotificationType::OrderChange => previous_cron.as_deref(),
                    _ => None,
                },
            )
            .await?;
        }
        let change = schedules::set_cron(
            &mut tx,
            shop_id,
            Action::StatusSync,
            DEFAULT_ENTRY,
            &a.sweep,
            &a.requested_by,
        )
        .await?;
        let list = subs
            .iter()
            .map(|(ty, s)| {
                format!(
                    "{ty} ({}, {})",
                    s.value.subscription_id,
                    if s.created { "created" } else { "reused" }
                )
            })
            .collect::<Vec<_>>()
            .join(" and ");
        let message = format!(
            "operator {} subscribed the shop to {list} at destination {destination_id} ({}); \
             status-sync polls on \"{}\" as the sweep",
            a.requested_by, a.sqs_arn, a.sweep
        );
        api_log::write(
            &mut tx,
            &Entry {
                code: Some(SUBSCRIBED_CODE),
                details: Some(json!({
                    "operator": a.requested_by,
                    "sqs_arn": a.sqs_arn,
                    "destination_id": destination_id,
                    "destination_created": destination.created,
                    "subscriptions": subs.iter().map(|(ty, s)| json!({
                        "type": ty.as_str(), "subscription_id": s.value.subscription_id, "created": s.created,
                    })).collect::<Vec<_>>(),
                    "sweep": a.sweep.as_str(),
                })),
                ..Entry::new(
                    Some(shop_id),
                    Action::StatusSync.as_str(),
                    Level::Info,
                    &message,
                )
            },
        )
        .await?;
        tx.commit().await?;
        anyhow::Ok(change)
    }
    .await;
    let change = match recorded {
        Ok(c) => c,
        Err(e) => {
            let undone = roll_back(&api, &created).await;
            return Err(e.context(format!(
                "the subscriptions could not be recorded; {undone}; nothing was recorded"
            )));
        }
    };

    let cadence = match &change {
        Change::Created => "added".to_owned(),
        Change::Updated { previous } => format!("changed from \"{previous}\""),
        Change::Unchanged => "unchanged".to_owned(),
    };
    if json_out {
        println!(
            "{}",
            json!({
                "shop": a.shop,
                "destination": {"destination_id": destination_id, "sqs_arn": a.sqs_arn, "created": destination.created},
                "subscriptions": subs.iter().map(|(ty, s)| json!({
                    "type": ty.as_str(), "subscription_id": s.value.subscription_id,
                    "destination_id": s.value.destination_id, "created": s.created,
                })).collect::<Vec<_>>(),
                "status_sync": {"cron": a.sweep.as_str(), "change": cadence},
            })
        );
    } else {
        println!(
            "{}: destination {destination_id} ({}, {})",
            a.shop,
            a.sqs_arn,
            if destination.created {
                "created"
            } else {
                "reused"
            }
        );
        for (ty, s) in &subs {
            println!(
                "{}: {ty} subscription {} ({})",
                a.shop,
                s.value.subscription_id,
                if s.created { "created" } else { "reused" }
            );
        }
        println!(
            "{}: status-sync (default) \"{}\" as the sweep, {cadence}",
            a.shop, a.sweep
        );
    }
    Ok(())
}

async fn unsubscribe(
    pool: &sqlx::PgPool,
    a: UnsubscribeArgs,
    json_out: bool,
) -> anyhow::Result<()> {
    let rec = shop(pool, &a.shop).await?;
    let shop_id = rec.shop.id;
    let records = {
        let mut conn = pool.acquire().await?;
        repo::subscriptions(&mut conn, shop_id).await?
    };
    let api = handle(pool, &rec).await?;

    // 1. Amazon: FEED_PROCESSING_FINISHED first, ORDER_CHANGE last (while it exists, the
    //    recorded cadence stays the sweep). Also a subscription Amazon has that was not
    //    recorded (e.g. made elsewhere): the shop is unsubscribed either way.
    let mut done: Vec<(NotificationType, Vec<(String, bool)>)> = Vec::new();
    let mut failure = None;
    'types: for ty in TYPES.into_iter().rev() {
        let mut ids: Vec<String> = records
            .iter()
            .filter(|r| r.notification_type == ty.as_str())
            .map(|r| r.subscription_id.clone())
            .collect();
        match api.get_subscription(&ty, None).await {
            Ok(Some(s)) if !ids.contains(&s.subscription_id) => ids.push(s.subscription_id),
            Ok(_) => {}
            Err(e) => {
                failure = Some(amazon(&format!("looking up the {ty} subscription"), e));
                break 'types;
            }
        }
        let mut deleted = Vec::new();
        for id in ids {
            match api.delete_subscription_by_id(&ty, &id).await {
                Ok(existed) => deleted.push((id, existed)),
                Err(e) => {
                    failure = Some(amazon(&format!("deleting the {ty} subscription {id}"), e));
                    break 'types;
                }
            }
        }
        done.push((ty, deleted));
    }

    // 2. The records of what is gone, status-sync's cadence and the API log.
    let mut tx = pool.begin().await?;
    let mut restored = None;
    let mut removed = Vec::new();
    for (ty, _) in &done {
        if let Some(r) = repo::remove_subscription(&mut tx, shop_id, ty.as_str()).await? {
            if *ty == NotificationType::OrderChange {
                let cron = r
                    .previous_cron
                    .clone()
                    .unwrap_or_else(|| polling_cron().to_owned());
                let cadence: Cadence = cron.parse().unwrap_or_else(|_| {
                    polling_cron()
                        .parse()
                        .expect("the default cadence is valid")
                });
                let change = schedules::set_cron(
                    &mut tx,
                    shop_id,
                    Action::StatusSync,
                    DEFAULT_ENTRY,
                    &cadence,
                    &a.requested_by,
                )
                .await?;
                restored = Some((cadence.as_str().to_owned(), change));
            }
            removed.push(r);
        }
    }
    let deleted_at_amazon: Vec<(String, String, bool)> = done
        .iter()
        .flat_map(|(ty, ids)| {
            ids.iter()
                .map(move |(id, existed)| (ty.as_str().to_owned(), id.clone(), *existed))
        })
        .collect();
    let changed = !removed.is_empty() || deleted_at_amazon.iter().any(|d| d.2);
    if changed {
        let list = deleted_at_amazon
            .iter()
            .map(|(ty, id, existed)| {
                format!(
                    "{ty} ({id}{})",
                    if *existed { "" } else { ", already gone" }
                )
            })
            .collect::<Vec<_>>()
            .join(" and ");
        let message = format!(
            "operator {} unsubscribed the shop from {}{}",
            a.requested_by,
            if list.is_empty() {
                "nothing at Amazon"
            } else {
                &list
            },
            match &restored {
                Some((cron, _)) => format!("; status-sync polls on \"{cron}\" again"),
                None => String::new(),
            }
        );
        api_log::write(
            &mut tx,
            &Entry {
                code: Some(UNSUBSCRIBED_CODE),
                details: Some(json!({
                    "operator": a.requested_by,
                    "deleted": deleted_at_amazon.iter().map(|(ty, id, existed)| json!({
                        "type": ty, "subscription_id": id, "existed": existed,
                    })).collect::<Vec<_>>(),
                    "status_sync_cron": restored.as_ref().map(|r| r.0.clone()),
                    "complete": failure.is_none(),
                })),
                ..Entry::new(
                    Some(shop_id),
                    Action::StatusSync.as_str(),
                    if failure.is_none() {
                        Level::Info
                    } else {
                        Level::Warning
                    },
                    &message,
                )
            },
        )
        .await?;
    }
    tx.commit().await?;

    if let Some(e) = failure {
        let so_far = if deleted_at_amazon.is_empty() {
            "nothing was deleted".to_owned()
        } else {
            format!(
                "deleted so far: {}",
                deleted_at_amazon
                    .iter()
                    .map(|(ty, id, _)| format!("{ty} {id}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Err(e.context(format!(
            "shop {} is not fully unsubscribed ({so_far}); run `ctl notifications unsubscribe {}` again",
            a.shop, a.shop
        )));
    }
    if json_out {
        println!(
            "{}",
            json!({
                "shop": a.shop,
                "deleted": deleted_at_amazon.iter().map(|(ty, id, existed)| json!({
                    "type": ty, "subscription_id": id, "existed": existed,
                })).collect::<Vec<_>>(),
                "status_sync": restored.as_ref().map(|(cron, _)| json!({"cron": cron})),
                "changed": changed,
            })
        );
    } else if !changed {
        println!(
            "{}: no subscriptions (none recorded, none at Amazon); nothing changed",
            a.shop
        );
    } else {
        for (ty, id, existed) in &deleted_at_amazon {
            println!(
                "{}: {ty} subscription {id} {}",
                a.shop,
                if *existed {
                    "deleted"
                } else {
                    "was already gone at Amazon"
                }
            );
        }
        if let Some((cron, change)) = &restored {
            println!(
                "{}: status-sync (default) \"{cron}\" restored{}",
                a.shop,
                match change {
                    Change::Updated { previous } => format!(" (was \"{previous}\")"),
                    _ => String::new(),
                }
            );
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

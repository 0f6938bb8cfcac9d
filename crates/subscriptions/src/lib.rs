//! Subscribing a shop to Amazon's ORDER_CHANGE and FEED_PROCESSING_FINISHED notifications
//! (delivered to an SQS queue that the notification-listener reads) and unsubscribing it, with
//! status-sync's cadence that goes with them: while Amazon announces order changes, status-sync's
//! differential poll is only the sweep (hourly by default), and order-ingest polls for new
//! orders only, every 5 minutes (`domain::notifications::NEW_ORDERS_CRON`, unless the operator
//! chose its cadence); without them both are the polling they were before.
//!
//! What `ctl notifications subscribe|unsubscribe` and the console's shop page share: the calls
//! to Amazon through [`spapi::Shop`], the rollback of what a failed run created, the records
//! (`store::notifications`), status-sync's cadence (`store::schedules::set_cron`) and the API-log
//! entry. Argument parsing and output stay with the callers.

use domain::{
    messages::Action,
    notifications::NEW_ORDERS_CRON,
    schedule::{Cadence, DEFAULT_ENTRY, default_cron},
};
use serde_json::json;
use spapi::notifications::{CreateSubscriptionRequest, NotificationType};
use store::{
    StoreError,
    api_log::{self, Entry, Level},
    notifications as repo,
    schedules::{self, Change},
    shops::ShopRecord,
};
use uuid::Uuid;

/// The name given to a destination the connector creates.
pub const DESTINATION_NAME: &str = "warehouse-connector";
/// status-sync's cadence while the shop is subscribed, unless the operator says otherwise.
pub const DEFAULT_SWEEP: &str = domain::notifications::SWEEP_CRON;
/// API-log code of a subscription.
pub const SUBSCRIBED_CODE: &str = "notifications_subscribed";
/// API-log code of an unsubscription.
pub const UNSUBSCRIBED_CODE: &str = "notifications_unsubscribed";

/// The types the connector subscribes to, in the order they are created (ORDER_CHANGE first:
/// it is the one that changes status-sync's cadence).
pub const TYPES: [NotificationType; 2] = [
    NotificationType::OrderChange,
    NotificationType::FeedProcessingFinished,
];

/// status-sync's cadence restored on unsubscribe when none was recorded: its default entry's
/// (`domain::schedule::DEFAULTS`).
pub fn polling_cron() -> &'static str {
    default_cron(Action::StatusSync)
}

/// An input that is not an SQS queue ARN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not an SQS queue ARN: expected arn:aws:sqs:REGION:ACCOUNT:QUEUE (ACCOUNT: 12 \
     digits), e.g. arn:aws:sqs:us-west-2:123456789012:connector-notifications"
)]
pub struct InvalidArn {
    pub input: String,
}

/// Checks that `s` is an SQS queue ARN, `arn:aws:sqs:<region>:<12 digits>:<queue name>` (the
/// region lower-case letters, digits and `-`; the queue name letters, digits, `-` and `_`, up to
/// 80, with an optional `.fifo`).
pub fn check_sqs_arn(s: &str) -> Result<&str, InvalidArn> {
    let invalid = || InvalidArn {
        input: s.to_owned(),
    };
    let parts: Vec<&str> = s.split(':').collect();
    let [arn, aws, sqs, region, account, queue] = parts.as_slice() else {
        return Err(invalid());
    };
    let region_ok = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let account_ok = account.len() == 12 && account.chars().all(|c| c.is_ascii_digit());
    let name = queue.strip_suffix(".fifo").unwrap_or(queue);
    let queue_ok = !name.is_empty()
        && queue.len() <= 80
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if [*arn, *aws, *sqs] == ["arn", "aws", "sqs"] && region_ok && account_ok && queue_ok {
        Ok(s)
    } else {
        Err(invalid())
    }
}

/// Why subscribing or unsubscribing failed. Each message names the shop, what was undone and
/// what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    InvalidArn(#[from] InvalidArn),
    /// Amazon refused a call; `what` says which and what was undone.
    #[error("Amazon refused {what}: {error}{}", hint(.error))]
    Amazon { what: String, error: spapi::Error },
    /// Amazon already delivers a type to another destination.
    #[error(
        "shop {shop} already has a {notification_type} subscription ({subscription_id}) \
         delivering to destination {found}, not to {destination_id} ({sqs_arn}): unsubscribe the \
         shop first to move it (`ctl notifications unsubscribe {shop}`, or Unsubscribe on its \
         console page); {undone}; nothing was recorded"
    )]
    OtherDestination {
        shop: String,
        notification_type: NotificationType,
        subscription_id: String,
        found: String,
        destination_id: String,
        sqs_arn: String,
        undone: String,
    },
    /// The subscriptions were made at Amazon but the database refused them.
    #[error(
        "the subscriptions of shop {shop} could not be recorded; {undone}; nothing was recorded"
    )]
    NotRecorded {
        shop: String,
        undone: String,
        #[source]
        error: StoreError,
    },
    /// Some subscriptions are deleted at Amazon, not all; what was deleted is recorded.
    #[error(
        "shop {shop} is not fully unsubscribed ({so_far}); unsubscribe it again \
         (`ctl notifications unsubscribe {shop}`, or Unsubscribe on its console page)"
    )]
    Incomplete {
        shop: String,
        so_far: String,
        #[source]
        error: Box<Error>,
    },
    /// The database, before anything was changed at Amazon or while recording an
    /// unsubscription.
    #[error("shop {shop}: the database")]
    Store {
        shop: String,
        #[source]
        error: StoreError,
    },
}

fn hint(e: &spapi::Error) -> &'static str {
    match e {
        spapi::Error::Authorization { .. } => {
            " (LWA refused the shop's credentials: `ctl shop rotate-secret` / `ctl shop reauthorize` replace them)"
        }
        spapi::Error::Throttled { .. } => " (Amazon's quota: try again in a few seconds)",
        _ => "",
    }
}

fn amazon(what: String, error: spapi::Error) -> Error {
    Error::Amazon { what, error }
}

/// One subscription of a [`Subscribed`] shop.
#[derive(Debug, Clone)]
pub struct Made {
    pub notification_type: NotificationType,
    pub subscription_id: String,
    pub destination_id: String,
    /// `true`: created now; `false`: it existed and is reused.
    pub created: bool,
}

/// What [`subscribe`] did.
#[derive(Debug, Clone)]
pub struct Subscribed {
    pub shop: String,
    pub sqs_arn: String,
    pub destination_id: String,
    /// `true`: the destination was created now; `false`: reused.
    pub destination_created: bool,
    /// ORDER_CHANGE first, then FEED_PROCESSING_FINISHED.
    pub subscriptions: Vec<Made>,
    /// status-sync's cadence now (the sweep).
    pub sweep: String,
    /// What happened to status-sync's default entry.
    pub change: Change,
    /// order-ingest's cadence set now (new orders only, `NEW_ORDERS_CRON`); `None`: the
    /// operator had chosen its cadence, left as it is.
    pub new_orders: Option<String>,
}

/// A subscription [`unsubscribe`] deleted at Amazon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub notification_type: String,
    pub subscription_id: String,
    /// `false`: Amazon no longer had it.
    pub existed: bool,
}

/// What [`unsubscribe`] did.
#[derive(Debug, Clone)]
pub struct Unsubscribed {
    pub shop: String,
    /// FEED_PROCESSING_FINISHED first, ORDER_CHANGE last.
    pub deleted: Vec<Deleted>,
    /// status-sync's cadence restored, and what happened to its entry.
    pub restored: Option<(String, Change)>,
    /// order-ingest's default cadence restored (it was the new-orders cadence).
    pub ingest_restored: Option<String>,
    /// `false`: nothing was recorded and nothing was at Amazon.
    pub changed: bool,
}

/// Sets order-ingest's default entry to `to` if its cadence is `from` (an operator's own
/// cadence is left alone). Returns whether it was set.
async fn switch_order_ingest(
    conn: &mut sqlx::PgConnection,
    shop_id: Uuid,
    from: &str,
    to: &str,
    operator: &str,
) -> Result<bool, StoreError> {
    if cron_of(&mut *conn, shop_id, Action::OrderIngest)
        .await?
        .as_deref()
        != Some(from)
    {
        return Ok(false);
    }
    let cadence: Cadence = to.parse().expect("the connector's own cadences are valid");
    let action = Action::OrderIngest;
    schedules::set_cron(conn, shop_id, action, DEFAULT_ENTRY, &cadence, operator).await?;
    Ok(true)
}

/// The cadence of `action`'s default entry.
async fn cron_of(
    conn: &mut sqlx::PgConnection,
    shop_id: Uuid,
    action: Action,
) -> Result<Option<String>, StoreError> {
    Ok(schedules::list(conn, &[shop_id])
        .await?
        .into_iter()
        .find(|s| s.action == action && s.entry == DEFAULT_ENTRY)
        .map(|s| s.cron))
}

/// Subscriptions this run created, deleted again when a later step fails (nothing half-done).
/// Returns what to tell the operator about them.
async fn roll_back(
    api: &spapi::Shop,
    shop: &str,
    created: &[(NotificationType, String)],
) -> String {
    let mut notes = Vec::new();
    for (ty, id) in created {
        match api.delete_subscription_by_id(ty, id).await {
            Ok(_) => notes.push(format!(
                "the {ty} subscription {id} created before was deleted again"
            )),
            Err(e) => notes.push(format!(
                "the {ty} subscription {id} created before remains at Amazon (deleting it failed: {e}); \
                 unsubscribing the shop removes it (`ctl notifications unsubscribe {shop}`, or \
                 Unsubscribe on its console page)"
            )),
        }
    }
    if notes.is_empty() {
        "no subscription was created".to_owned()
    } else {
        notes.join("; ")
    }
}

/// Subscribes the shop to ORDER_CHANGE (on its marketplaces) and FEED_PROCESSING_FINISHED,
/// delivered to the SQS queue `sqs_arn` (an existing destination or subscription is reused),
/// records them, sets status-sync's default entry to `sweep` (the cadence before is kept, to be
/// restored by [`unsubscribe`]) and writes the API-log entry naming `operator`. A failure after a
/// subscription was created deletes it again: nothing is half-done.
pub async fn subscribe(
    pool: &sqlx::PgPool,
    api: &spapi::Shop,
    shop: &ShopRecord,
    sqs_arn: &str,
    sweep: &Cadence,
    operator: &str,
) -> Result<Subscribed, Error> {
    check_sqs_arn(sqs_arn)?;
    let code = shop.shop.code.as_str().to_owned();
    let shop_id = shop.shop.id;

    // 1. Amazon: the destination, then both subscriptions; a failure deletes what this run
    //    created.
    let destination = api
        .ensure_destination(DESTINATION_NAME, sqs_arn)
        .await
        .map_err(|e| {
            amazon(
                format!("the destination for {sqs_arn} of shop {code}; nothing was changed"),
                e,
            )
        })?;
    let destination_id = destination.value.destination_id.clone();
    let marketplaces: Vec<String> = shop
        .shop
        .marketplaces
        .iter()
        .map(|m| m.id().to_owned())
        .collect();
    let mut created: Vec<(NotificationType, String)> = Vec::new();
    let mut subs: Vec<Made> = Vec::new();
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
                let undone = roll_back(api, &code, &created).await;
                return Err(amazon(
                    format!("the {ty} subscription of shop {code}; {undone}; nothing was recorded"),
                    e,
                ));
            }
        };
        if sub.value.destination_id != destination_id {
            let undone = roll_back(api, &code, &created).await;
            return Err(Error::OtherDestination {
                shop: code,
                notification_type: ty,
                subscription_id: sub.value.subscription_id,
                found: sub.value.destination_id,
                destination_id,
                sqs_arn: sqs_arn.to_owned(),
                undone,
            });
        }
        if sub.created {
            created.push((ty.clone(), sub.value.subscription_id.clone()));
        }
        subs.push(Made {
            notification_type: ty,
            subscription_id: sub.value.subscription_id,
            destination_id: sub.value.destination_id,
            created: sub.created,
        });
    }

    // 2. The records, status-sync's cadence and the API log, in one transaction.
    let recorded = record_subscription(
        pool,
        shop_id,
        &subs,
        &destination_id,
        destination.created,
        sqs_arn,
        sweep,
        operator,
    )
    .await;
    match recorded {
        Ok((change, new_orders)) => Ok(Subscribed {
            shop: code,
            sqs_arn: sqs_arn.to_owned(),
            destination_id,
            destination_created: destination.created,
            subscriptions: subs,
            sweep: sweep.as_str().to_owned(),
            change,
            new_orders,
        }),
        Err(error) => {
            let undone = roll_back(api, &code, &created).await;
            Err(Error::NotRecorded {
                shop: code,
                undone,
                error,
            })
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn record_subscription(
    pool: &sqlx::PgPool,
    shop_id: Uuid,
    subs: &[Made],
    destination_id: &str,
    destination_created: bool,
    sqs_arn: &str,
    sweep: &Cadence,
    operator: &str,
) -> Result<(Change, Option<String>), StoreError> {
    let mut tx = pool.begin().await?;
    let existing = repo::subscriptions(&mut tx, shop_id).await?;
    // The cadence to restore on unsubscribe: kept from the first subscription.
    let previous_cron = if existing
        .iter()
        .any(|s| s.notification_type == NotificationType::OrderChange.as_str())
    {
        None
    } else {
        cron_of(&mut tx, shop_id, Action::StatusSync).await?
    };
    for s in subs {
        repo::save_subscription(
            &mut tx,
            shop_id,
            s.notification_type.as_str(),
            &s.subscription_id,
            destination_id,
            match s.notification_type {
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
        sweep,
        operator,
    )
    .await?;
    // order-ingest polls for new orders only now, more often: unless the operator chose its
    // cadence (then it is left alone).
    let from = default_cron(Action::OrderIngest);
    let new_orders = switch_order_ingest(&mut tx, shop_id, from, NEW_ORDERS_CRON, operator).await?;
    let list = subs
        .iter()
        .map(|s| {
            format!(
                "{} ({}, {})",
                s.notification_type,
                s.subscription_id,
                if s.created { "created" } else { "reused" }
            )
        })
        .collect::<Vec<_>>()
        .join(" and ");
    let message = format!(
        "operator {operator} subscribed the shop to {list} at destination {destination_id} \
         ({sqs_arn}); status-sync polls on \"{sweep}\" as the sweep"
    );
    api_log::write(
        &mut tx,
        &Entry {
            code: Some(SUBSCRIBED_CODE),
            details: Some(json!({
                "operator": operator,
                "sqs_arn": sqs_arn,
                "destination_id": destination_id,
                "destination_created": destination_created,
                "subscriptions": subs.iter().map(|s| json!({
                    "type": s.notification_type.as_str(),
                    "subscription_id": s.subscription_id,
                    "created": s.created,
                })).collect::<Vec<_>>(),
                "sweep": sweep.as_str(),
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
    Ok((change, new_orders.then(|| NEW_ORDERS_CRON.to_owned())))
}

/// Deletes the shop's subscriptions at Amazon (the recorded ones, and one Amazon has that was
/// not recorded, e.g. made elsewhere), removes their records, restores status-sync's cadence
/// from before subscribing (or its default, [`polling_cron`]) and writes the API-log entry
/// naming `operator`. When Amazon refuses a deletion, what was deleted so far is recorded and
/// [`Error::Incomplete`] says so.
pub async fn unsubscribe(
    pool: &sqlx::PgPool,
    api: &spapi::Shop,
    shop: &ShopRecord,
    operator: &str,
) -> Result<Unsubscribed, Error> {
    let code = shop.shop.code.as_str().to_owned();
    let shop_id = shop.shop.id;
    let db = |error: StoreError| Error::Store {
        shop: code.clone(),
        error,
    };
    let records = {
        let mut conn = pool.acquire().await.map_err(|e| db(e.into()))?;
        repo::subscriptions(&mut conn, shop_id).await.map_err(db)?
    };

    // 1. Amazon: FEED_PROCESSING_FINISHED first, ORDER_CHANGE last (while it exists, the
    //    recorded cadence stays the sweep).
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
                failure = Some(amazon(format!("looking up the {ty} subscription"), e));
                break 'types;
            }
        }
        let mut deleted = Vec::new();
        for id in ids {
            match api.delete_subscription_by_id(&ty, &id).await {
                Ok(existed) => deleted.push((id, existed)),
                Err(e) => {
                    failure = Some(amazon(format!("deleting the {ty} subscription {id}"), e));
                    break 'types;
                }
            }
        }
        done.push((ty, deleted));
    }

    // 2. The records of what is gone, status-sync's cadence and the API log.
    let deleted: Vec<Deleted> = done
        .iter()
        .flat_map(|(ty, ids)| {
            ids.iter().map(move |(id, existed)| Deleted {
                notification_type: ty.as_str().to_owned(),
                subscription_id: id.clone(),
                existed: *existed,
            })
        })
        .collect();
    let (restored, ingest_restored, changed) =
        record_unsubscription(pool, shop_id, &done, &deleted, failure.is_none(), operator)
            .await
            .map_err(db)?;

    if let Some(e) = failure {
        let so_far = if deleted.is_empty() {
            "nothing was deleted".to_owned()
        } else {
            format!(
                "deleted so far: {}",
                deleted
                    .iter()
                    .map(|d| format!("{} {}", d.notification_type, d.subscription_id))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Err(Error::Incomplete {
            shop: code,
            so_far,
            error: Box::new(e),
        });
    }
    Ok(Unsubscribed {
        shop: code,
        deleted,
        restored,
        ingest_restored,
        changed,
    })
}

type Restored = Option<(String, Change)>;

async fn record_unsubscription(
    pool: &sqlx::PgPool,
    shop_id: Uuid,
    done: &[(NotificationType, Vec<(String, bool)>)],
    deleted: &[Deleted],
    complete: bool,
    operator: &str,
) -> Result<(Restored, Option<String>, bool), StoreError> {
    let mut tx = pool.begin().await?;
    let mut restored = None;
    let mut ingest_restored = None;
    let mut removed = Vec::new();
    for (ty, _) in done {
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
                    operator,
                )
                .await?;
                restored = Some((cadence.as_str().to_owned(), change));
                // order-ingest back to its default, unless the operator changed it meanwhile.
                let to = default_cron(Action::OrderIngest);
                if switch_order_ingest(&mut tx, shop_id, NEW_ORDERS_CRON, to, operator).await? {
                    ingest_restored = Some(to.to_owned());
                }
            }
            removed.push(r);
        }
    }
    let changed = !removed.is_empty() || deleted.iter().any(|d| d.existed);
    if changed {
        let list = deleted
            .iter()
            .map(|d| {
                format!(
                    "{} ({}{})",
                    d.notification_type,
                    d.subscription_id,
                    if d.existed { "" } else { ", already gone" }
                )
            })
            .collect::<Vec<_>>()
            .join(" and ");
        let message = format!(
            "operator {operator} unsubscribed the shop from {}{}",
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
                    "operator": operator,
                    "deleted": deleted.iter().map(|d| json!({
                        "type": d.notification_type,
                        "subscription_id": d.subscription_id,
                        "existed": d.existed,
                    })).collect::<Vec<_>>(),
                    "status_sync_cron": restored.as_ref().map(|r: &(String, Change)| r.0.clone()),
                    "complete": complete,
                })),
                ..Entry::new(
                    Some(shop_id),
                    Action::StatusSync.as_str(),
                    if complete {
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
    Ok((restored, ingest_restored, changed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqs_arns_are_checked() {
        for ok in [
            "arn:aws:sqs:us-west-2:123456789012:connector-notifications",
            "arn:aws:sqs:ap-northeast-1:000000000000:q_1.fifo",
        ] {
            assert_eq!(check_sqs_arn(ok), Ok(ok));
        }
        for bad in [
            "",
            "https://sqs.us-west-2.amazonaws.com/000000000000/q",
            "arn:aws:sqs:us-west-2:12345678901:q",
            "arn:aws:sqs:us-west-2:1234567890123:q",
            "arn:aws:sqs:us-west-2:12345678901x:q",
            "arn:aws:sqs::123456789012:q",
            "arn:aws:sqs:us-west-2:123456789012:",
            "arn:aws:sqs:us-west-2:123456789012:q<b>",
            "arn:aws:sns:us-west-2:123456789012:q",
            "arn:aws:sqs:us-west-2:123456789012:q:extra",
        ] {
            let err = check_sqs_arn(bad).unwrap_err();
            assert!(err.to_string().contains("is not an SQS queue ARN"), "{err}");
            assert!(err.to_string().contains("e.g."), "{err}");
        }
    }

    #[test]
    fn the_polling_cadence_is_status_syncs_default() {
        assert!(polling_cron().parse::<Cadence>().is_ok());
        assert_ne!(polling_cron(), DEFAULT_SWEEP);
    }
}

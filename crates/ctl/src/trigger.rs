//! `ctl trigger`: validate, write the command to the outbox, publish it.

use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use domain::{
    messages::{Action, Command, CommandParams, StatusSyncMode},
    window::ImportMode,
};
use serde_json::json;
use uuid::Uuid;

use crate::config::Config;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    Differential,
    Range,
    Hours,
}

#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// order-ingest, status-sync, shipment-feedback, inventory-sync or feed-poller.
    pub action: Action,
    /// Shop code.
    #[arg(long)]
    pub shop: String,
    /// order-ingest: how to choose the window.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// order-ingest range: start (RFC 3339, e.g. 2026-11-01T00:00:00+09:00).
    #[arg(long)]
    pub from: Option<DateTime<Utc>>,
    /// order-ingest range: end (RFC 3339).
    #[arg(long)]
    pub to: Option<DateTime<Utc>>,
    /// order-ingest hours: the last N hours (1-168).
    #[arg(long, allow_negative_numbers = true)]
    pub hours: Option<i64>,
    /// status-sync: check every open instruction by getOrder (after an outage).
    #[arg(long)]
    pub reconcile: bool,
    /// inventory-sync: push every mapped SKU.
    #[arg(long)]
    pub full: bool,
    /// Who is asking (recorded in the ledger).
    #[arg(long, env = "CTL_REQUESTED_BY", default_value = "ctl")]
    pub requested_by: String,
}

/// Builds the command's parameters, refusing combinations that make no sense.
pub fn params(a: &TriggerArgs) -> anyhow::Result<CommandParams> {
    let ingest_only = a.mode.is_some() || a.from.is_some() || a.to.is_some() || a.hours.is_some();
    if ingest_only && a.action != Action::OrderIngest {
        bail!(
            "--mode/--from/--to/--hours apply to order-ingest only, not {}",
            a.action
        );
    }
    if a.reconcile && a.action != Action::StatusSync {
        bail!("--reconcile applies to status-sync only");
    }
    if a.full && a.action != Action::InventorySync {
        bail!("--full applies to inventory-sync only");
    }
    Ok(match a.action {
        Action::OrderIngest => {
            let mode = match a.mode.unwrap_or(ModeArg::Differential) {
                ModeArg::Differential => {
                    if a.from.is_some() || a.to.is_some() || a.hours.is_some() {
                        bail!(
                            "differential mode takes no --from/--to/--hours (use --mode range or --mode hours)"
                        );
                    }
                    ImportMode::Differential
                }
                ModeArg::Range => match (a.from, a.to) {
                    (Some(from), Some(to)) => ImportMode::Range { from, to },
                    _ => bail!(
                        "--mode range needs both --from and --to (RFC 3339 times, at most 7 days apart)"
                    ),
                },
                ModeArg::Hours => match a.hours {
                    Some(hours) => ImportMode::Hours { hours },
                    None => bail!("--mode hours needs --hours N (1-168)"),
                },
            };
            CommandParams::OrderIngest { mode }
        }
        Action::StatusSync => CommandParams::StatusSync {
            mode: if a.reconcile {
                StatusSyncMode::Reconcile
            } else {
                StatusSyncMode::Changes
            },
        },
        Action::ShipmentFeedback => CommandParams::ShipmentFeedback {},
        Action::InventorySync => CommandParams::InventorySync { full: a.full },
        Action::FeedPoller => CommandParams::FeedPoll {
            feed_submission_id: None,
        },
    })
}

pub async fn run(config: &Config, a: TriggerArgs, json_out: bool) -> anyhow::Result<()> {
    let params = params(&a)?;
    let pool = config.pool().await?;
    let mut tx = pool.begin().await?;
    let shop = store::shops::get_by_code(&mut tx, &a.shop)
        .await
        .with_context(|| format!("unknown shop {:?}: see `ctl shop list`", a.shop))?;
    let cmd = Command::new(
        shop.shop.id,
        a.action,
        params,
        a.requested_by.clone(),
        Utc::now(),
    );
    cmd.validate(Utc::now())
        .context("trigger refused; nothing was published")?;
    let id = enqueue(&mut tx, &config.bus_prefix, &cmd).await?;
    tx.commit().await?;

    let published = publish_now(config, &pool, a.action).await;
    if json_out {
        println!(
            "{}",
            json!({ "message_id": id, "shop": a.shop, "action": a.action, "published": published.is_ok() })
        );
    } else {
        println!("{id}");
        if let Err(e) = published {
            eprintln!("note: queued in the outbox; a running service will publish it ({e:#})");
        }
    }
    Ok(())
}

/// Writes the command to the outbox inside the caller's transaction. Returns its message id.
pub async fn enqueue(
    conn: &mut sqlx::PgConnection,
    prefix: &str,
    cmd: &Command,
) -> anyhow::Result<Uuid> {
    let topo = bus::Topology::new(prefix, bus::DEFAULT_DELIVERY_LIMIT);
    let mut msg = bus::OutboxMessage::new(
        topo.commands_exchange(),
        cmd.action.as_str(),
        serde_json::to_value(cmd)?,
    );
    msg.id = cmd.message_id;
    bus::outbox::enqueue(conn, msg).await?;
    Ok(cmd.message_id)
}

/// Publishes due outbox rows now, declaring the target queue so the command is routable even
/// before its service first starts.
async fn publish_now(config: &Config, pool: &sqlx::PgPool, action: Action) -> anyhow::Result<()> {
    let conn = tokio::time::timeout(
        Duration::from_secs(10),
        bus::connect(&config.amqp_url, "ctl"),
    )
    .await
    .context("RabbitMQ did not answer within 10 s")??;
    let topo = bus::Topology::new(config.bus_prefix.clone(), bus::DEFAULT_DELIVERY_LIMIT);
    let channel = conn.create_channel().await?;
    topo.declare_service(&channel, action.as_str(), &[]).await?;
    let publisher = bus::Publisher::new(conn.clone()).await?;
    let relay = bus::outbox::Relay::new(pool.clone(), publisher);
    relay.relay_once().await?;
    let _ = bus::close(&conn).await;
    Ok(())
}

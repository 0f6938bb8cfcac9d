//! `ctl trigger`: validate, write the command to the outbox, publish it; optionally follow the
//! run it starts (`--wait`).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

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
    /// Make the message id a function of shop, action and this key (UUID v5), so triggering
    /// twice with the same key (e.g. a Job's slot) queues one command. 1-200 characters.
    #[arg(long, value_parser = dedupe_key)]
    pub dedupe_key: Option<String>,
    /// After publishing, follow the run(s) of this command and exit with their outcome:
    /// 0 when succeeded, non-zero when failed, rejected or skipped (or on --timeout).
    /// Not for feed-poller, which records no runs.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many seconds (the run itself goes on).
    #[arg(long, default_value_t = 600, requires = "wait", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
}

fn dedupe_key(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > 200 {
        return Err(format!(
            "{s:?} is not a dedupe key: expected 1 to 200 characters, e.g. 20261128T0915"
        ));
    }
    Ok(t.to_owned())
}

/// Namespace of dedupe-key message ids (a fixed random UUID; never change it).
const DEDUPE_NAMESPACE: Uuid = Uuid::from_u128(0x5d1c_2f0e_8a4b_4c77_9e31_6b0a_d2f4_71c3);

/// The message id of a command with a dedupe key: UUID v5 of shop id, action and key.
pub fn dedupe_id(shop_id: Uuid, action: Action, key: &str) -> Uuid {
    uuid_v5(
        DEDUPE_NAMESPACE,
        &format!("{shop_id}/{}/{key}", action.as_str()),
    )
}

/// RFC 9562 version 5 (SHA-1, name-based) UUID.
fn uuid_v5(namespace: Uuid, name: &str) -> Uuid {
    use sha1::{Digest, Sha1};
    let mut h = Sha1::new();
    h.update(namespace.as_bytes());
    h.update(name.as_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
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
    if a.wait && a.action == Action::FeedPoller {
        // feed-poller keeps no ledger rows (its work is per feed): there is no run to follow.
        bail!(
            "--wait works with order-ingest, status-sync, shipment-feedback and inventory-sync; \
             feed-poller records no runs: drop --wait and follow `ctl log --action feed-poller --follow`"
        );
    }
    let pool = config.pool().await?;
    let mut tx = pool.begin().await?;
    let shop = store::shops::get_by_code(&mut tx, &a.shop)
        .await
        .with_context(|| format!("unknown shop {:?}: see `ctl shop list`", a.shop))?;
    let mut cmd = Command::new(
        shop.shop.id,
        a.action,
        params,
        a.requested_by.clone(),
        Utc::now(),
    );
    if let Some(key) = &a.dedupe_key {
        cmd.message_id = dedupe_id(shop.shop.id, a.action, key);
    }
    cmd.validate(Utc::now())
        .context("trigger refused; nothing was published")?;
    let id = cmd.message_id;
    let duplicate = if a.dedupe_key.is_some() {
        enqueue_once(&mut tx, &config.bus_prefix, &cmd).await?
    } else {
        enqueue(&mut tx, &config.bus_prefix, &cmd).await?;
        false
    };
    tx.commit().await?;

    let published = publish_now(config, &pool, &[a.action]).await;
    if !json_out {
        println!("{id}");
        if duplicate {
            eprintln!(
                "note: a command with dedupe key {:?} was already queued for {} {}; nothing new was queued",
                a.dedupe_key.as_deref().unwrap_or_default(),
                a.shop,
                a.action
            );
        }
        if let Err(e) = &published {
            eprintln!("note: queued in the outbox; a running service will publish it ({e:#})");
        }
    }
    let mut out = json!({
        "message_id": id,
        "shop": a.shop,
        "action": a.action,
        "published": published.is_ok(),
        "duplicate": duplicate,
    });
    if !a.wait {
        if json_out {
            println!("{out}");
        }
        return Ok(());
    }
    let outcome = wait(
        &pool,
        &shop,
        a.action,
        id,
        Duration::from_secs(a.timeout),
        json_out,
    )
    .await;
    if json_out {
        out["outcome"] = json!(outcome.status);
        out["runs"] = json!(
            outcome
                .runs
                .iter()
                .map(|r| crate::ledger::run_json(r, Some(&a.shop)))
                .collect::<Vec<_>>()
        );
        println!("{out}");
    } else if let Some(r) = outcome.runs.last() {
        println!(
            "run {} {}: {} Amazon call(s){}{}",
            r.id,
            r.status,
            r.amazon_calls,
            match crate::ledger::counts_text(&r.counts) {
                t if t.is_empty() => String::new(),
                t => format!(" · {t}"),
            },
            r.error
                .as_deref()
                .map(|e| format!(" — {e}"))
                .unwrap_or_default()
        );
    }
    match outcome.status.as_str() {
        "succeeded" => Ok(()),
        "timeout" => bail!(
            "no outcome for command {id} after {} s; the run goes on (see `ctl runs --shop {} --action {}`)",
            a.timeout,
            a.shop,
            a.action
        ),
        status => {
            let err = outcome
                .runs
                .iter()
                .rev()
                .find_map(|r| r.error.clone())
                .unwrap_or_else(|| "no error recorded".into());
            bail!("{} {} {status}: {err}", a.shop, a.action)
        }
    }
}

fn is_unique_violation(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<sqlx::Error>()
            .and_then(|e| e.as_database_error())
            .is_some_and(|d| d.code().as_deref() == Some("23505"))
    })
}

/// What --wait saw.
struct Outcome {
    /// `succeeded`, `failed`, `rejected`, `skipped` or `timeout`.
    status: String,
    runs: Vec<store::runs::Run>,
}

/// Runs of the shop's action started by command `id` (there is one lease per shop and action,
/// so the newest few hundred runs of that pair always contain it while it is in progress).
async fn runs_of(
    pool: &sqlx::PgPool,
    shop_id: Uuid,
    action: Action,
    id: Uuid,
) -> anyhow::Result<Vec<store::runs::Run>> {
    let mut conn = pool.acquire().await?;
    let mut runs: Vec<_> =
        store::runs::recent(&mut conn, Some(shop_id), Some(action.as_str()), 500)
            .await?
            .into_iter()
            .filter(|r| r.command_id == Some(id))
            .collect();
    runs.reverse();
    Ok(runs)
}

/// Follows the run(s) of command `id` until they are finished or `timeout` passes. Shows one
/// updating progress line on a terminal (stdout); nothing otherwise.
async fn wait(
    pool: &sqlx::PgPool,
    shop: &store::shops::ShopRecord,
    action: Action,
    id: Uuid,
    timeout: Duration,
    json_out: bool,
) -> Outcome {
    let tty = !json_out && std::io::stdout().is_terminal();
    let started = Instant::now();
    let mut shown = 0usize;
    let outcome = loop {
        let runs = match runs_of(pool, shop.shop.id, action, id).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the ledger; retrying");
                Vec::new()
            }
        };
        let active = runs
            .iter()
            .any(|r| r.status == "running" || r.status == "waiting");
        if !runs.is_empty() && !active {
            let status = if runs.iter().all(|r| r.status == "succeeded") {
                "succeeded".to_owned()
            } else {
                runs.iter()
                    .rev()
                    .find(|r| r.status != "succeeded")
                    .map(|r| r.status.clone())
                    .unwrap_or_default()
            };
            break Outcome { status, runs };
        }
        if started.elapsed() >= timeout {
            break Outcome {
                status: "timeout".into(),
                runs,
            };
        }
        if tty {
            let line = match runs.last() {
                None => format!("{action} {id}: queued, waiting for the service…"),
                Some(r) => {
                    let counts = crate::ledger::counts_text(&r.counts);
                    format!(
                        "{action} {}: {}{} · {} call(s){}",
                        r.id,
                        if r.status == "waiting" {
                            "waiting for Amazon's quota"
                        } else {
                            r.status.as_str()
                        },
                        if counts.is_empty() {
                            String::new()
                        } else {
                            format!(" · {counts}")
                        },
                        r.amazon_calls,
                        format_args!(" · {}s", started.elapsed().as_secs())
                    )
                }
            };
            let pad = shown.saturating_sub(line.chars().count());
            print!("\r{line}{}", " ".repeat(pad));
            let _ = std::io::stdout().flush();
            shown = line.chars().count();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    if tty && shown > 0 {
        print!("\r{}\r", " ".repeat(shown));
        let _ = std::io::stdout().flush();
    }
    outcome
}

/// Writes the command to the outbox inside the caller's transaction. Returns its message id.
pub async fn enqueue(
    conn: &mut sqlx::PgConnection,
    prefix: &str,
    cmd: &Command,
) -> anyhow::Result<Uuid> {
    let topo = bus::Topology::new(prefix, bus::DEFAULT_DELIVERY_LIMIT);
    bus::outbox::enqueue(conn, bus::OutboxMessage::command(&topo, cmd)).await?;
    Ok(cmd.message_id)
}

/// Writes a command with a deterministic id (`--dedupe-key`, a scheduler slot) to the outbox
/// inside the caller's transaction, unless a command with that id is already there. Returns
/// whether it was a duplicate (nothing new queued; the transaction stays usable).
pub async fn enqueue_once(
    conn: &mut sqlx::PgConnection,
    prefix: &str,
    cmd: &Command,
) -> anyhow::Result<bool> {
    // A savepoint, so a duplicate id leaves the transaction usable.
    let mut sp = sqlx::Connection::begin(&mut *conn).await?;
    match enqueue(&mut sp, prefix, cmd).await {
        Ok(_) => {
            sp.commit().await?;
            Ok(false)
        }
        Err(e) if is_unique_violation(&e) => {
            sp.rollback().await?;
            Ok(true)
        }
        Err(e) => Err(e),
    }
}

/// Publishes due outbox rows now, declaring the target queues so the commands are routable even
/// before their services first start.
pub async fn publish_now(
    config: &Config,
    pool: &sqlx::PgPool,
    actions: &[Action],
) -> anyhow::Result<()> {
    let conn = tokio::time::timeout(
        Duration::from_secs(10),
        bus::connect(&config.amqp_url, "ctl"),
    )
    .await
    .context("RabbitMQ did not answer within 10 s")??;
    let topo = bus::Topology::new(config.bus_prefix.clone(), bus::DEFAULT_DELIVERY_LIMIT);
    let channel = conn.create_channel().await?;
    for action in actions {
        topo.declare_service(&channel, action.as_str(), &[]).await?;
    }
    let publisher = bus::Publisher::new(conn.clone()).await?;
    let relay = bus::outbox::Relay::new(pool.clone(), publisher);
    relay.relay_once().await?;
    let _ = bus::close(&conn).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v5_matches_the_standard() {
        // uuid.uuid5(uuid.NAMESPACE_DNS, "python.org") in Python.
        let dns = Uuid::parse_str("6ba7b810-9dad-11d1-80b4-00c04fd430c8").unwrap();
        assert_eq!(
            uuid_v5(dns, "python.org").to_string(),
            "886313e1-3b8a-5372-9b90-0c9aee199e5d"
        );
    }

    #[test]
    fn dedupe_ids_depend_on_shop_action_and_key() {
        let shop = Uuid::from_u128(1);
        let id = dedupe_id(shop, Action::OrderIngest, "k");
        assert_eq!(id, dedupe_id(shop, Action::OrderIngest, "k"));
        assert_eq!(id.get_version_num(), 5);
        assert_ne!(id, dedupe_id(shop, Action::StatusSync, "k"));
        assert_ne!(id, dedupe_id(shop, Action::OrderIngest, "k2"));
        assert_ne!(id, dedupe_id(Uuid::from_u128(2), Action::OrderIngest, "k"));
    }
}

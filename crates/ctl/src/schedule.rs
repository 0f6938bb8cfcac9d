//! 自動実行 (schedules): `ctl schedule list|set|enable|disable|remove` (when each action runs for
//! each shop, kept in the database) and `ctl scheduler tick` (the every-minute CronJob that
//! publishes a trigger for every due entry).

use anyhow::{Context, bail};
use chrono::{DateTime, Duration, Utc};
use clap::{Args, Subcommand};
use domain::{
    messages::{Action, Command},
    schedule::{self, Cadence, DEFAULT_ENTRY, Due},
};
use serde_json::json;
use store::schedules::{self as repo, Change, Schedule};

use crate::{config::Config, trigger};

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// List the schedule entries of a shop (or of every shop): cadence, next run, last fired.
    List(ListArgs),
    /// Set the cadence of an entry (a cron expression in the shop's time zone); creates the
    /// entry when the shop has none of that action and name. Takes effect at the next tick.
    Set(Box<SetArgs>),
    /// Enable an entry, every entry of an action (no --entry), or the whole shop (no --action).
    Enable(ToggleArgs),
    /// Disable (pause) an entry, every entry of an action (no --entry), or the whole shop (no
    /// --action). Nothing of it runs until it is enabled again; missed slots are not caught up.
    Disable(ToggleArgs),
    /// Remove an entry (e.g. an extra one added with `set --entry NAME`).
    Remove(RemoveArgs),
}

#[derive(Debug, Subcommand)]
pub enum SchedulerCommand {
    /// Publish a trigger for every due entry of every active shop (run once a minute): the
    /// latest slot of each entry, once, with a message id derived from shop, action and slot.
    Tick(TickArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Shop code (default: every shop).
    #[arg(long)]
    pub shop: Option<String>,
}

fn entry_name(s: &str) -> Result<String, String> {
    schedule::entry_name(s)
        .map(str::to_owned)
        .map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// Shop code (see `ctl shop list`).
    #[arg(long)]
    pub shop: String,
    /// order-ingest, status-sync, shipment-feedback, inventory-sync or feed-poller.
    #[arg(long)]
    pub action: Action,
    /// Which entry of the action: `default`, or e.g. `end-of-day` (shipment-feedback's 23:55
    /// run); a new name adds an entry.
    #[arg(long, default_value = DEFAULT_ENTRY, value_parser = entry_name)]
    pub entry: String,
    /// Cron expression, five fields in the shop's time zone: minute hour day-of-month month
    /// day-of-week, e.g. '*/15 * * * *' (every 15 minutes), '5-59/15 * * * *' (every 15 minutes
    /// from :05), '55 23 * * *' (23:55 daily), '0 9-18 * * 1-5' (hourly 9-18 on weekdays).
    #[arg(long)]
    pub cron: Cadence,
    /// Who is changing it (recorded on the entry and in the API log).
    #[arg(long, env = "CTL_REQUESTED_BY", default_value = "ctl")]
    pub requested_by: String,
}

#[derive(Debug, Args)]
pub struct ToggleArgs {
    /// Shop code (see `ctl shop list`).
    #[arg(long)]
    pub shop: String,
    /// Only this action's entries (default: every entry of the shop).
    #[arg(long)]
    pub action: Option<Action>,
    /// Only this entry of the action (needs --action).
    #[arg(long, requires = "action", value_parser = entry_name)]
    pub entry: Option<String>,
    /// Who is changing it (recorded on the entries and in the API log).
    #[arg(long, env = "CTL_REQUESTED_BY", default_value = "ctl")]
    pub requested_by: String,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Shop code (see `ctl shop list`).
    #[arg(long)]
    pub shop: String,
    /// The entry's action.
    #[arg(long)]
    pub action: Action,
    /// The entry's name.
    #[arg(long, value_parser = entry_name)]
    pub entry: String,
    /// Who is removing it (recorded in the API log).
    #[arg(long, env = "CTL_REQUESTED_BY", default_value = "ctl")]
    pub requested_by: String,
}

#[derive(Debug, Args)]
pub struct TickArgs {
    /// A slot more than this many minutes old is passed over (logged as a warning in the API
    /// log) instead of fired late; slots missed before the latest are never fired one by one.
    #[arg(long, default_value_t = schedule::MAX_LATE.num_minutes() as u32,
          value_parser = clap::value_parser!(u32).range(1..=10_080))]
    pub max_late_minutes: u32,
    /// Recorded as the triggers' requester, followed by the entry (`scheduler:end-of-day`).
    #[arg(long, env = "CTL_REQUESTED_BY", default_value = "scheduler")]
    pub requested_by: String,
}

async fn shop(
    conn: &mut sqlx::PgConnection,
    code: &str,
) -> anyhow::Result<store::shops::ShopRecord> {
    store::shops::get_by_code(conn, code)
        .await
        .with_context(|| format!("unknown shop {code:?}: see `ctl shop list`"))
}

pub async fn run(config: &Config, cmd: ScheduleCommand, json_out: bool) -> anyhow::Result<()> {
    let pool = config.pool().await?;
    let mut conn = pool.acquire().await?;
    match cmd {
        ScheduleCommand::List(a) => {
            let shops = match &a.shop {
                Some(code) => vec![shop(&mut conn, code).await?],
                None => store::shops::list(&mut conn).await?,
            };
            let ids: Vec<_> = shops.iter().map(|s| s.shop.id).collect();
            let rows = repo::list(&mut conn, &ids).await?;
            print_list(&shops, &rows, Utc::now(), json_out)?;
        }
        ScheduleCommand::Set(a) => {
            let rec = shop(&mut conn, &a.shop).await?;
            let change = repo::set_cron(
                &mut conn,
                rec.shop.id,
                a.action,
                &a.entry,
                &a.cron,
                &a.requested_by,
            )
            .await
            .context("cannot change the schedule")?;
            let tz = rec.shop.time_zone;
            let entry = repo::list(&mut conn, &[rec.shop.id])
                .await?
                .into_iter()
                .find(|r| r.action == a.action && r.entry == a.entry);
            let enabled = entry.as_ref().is_some_and(|r| r.enabled);
            let next = entry.as_ref().and_then(|r| r.next_run(tz, Utc::now()));
            let (change, what) = match &change {
                Change::Created => ("created", "added".to_owned()),
                Change::Updated { previous } => ("updated", format!("changed from \"{previous}\"")),
                Change::Unchanged => ("unchanged", "unchanged (already so)".to_owned()),
            };
            let when = if enabled {
                format!("next run {}", local(next, tz))
            } else {
                format!(
                    "paused: `ctl schedule enable --shop {} --action {} --entry {}` resumes it",
                    a.shop, a.action, a.entry
                )
            };
            done(
                json_out,
                json!({"shop": a.shop, "action": a.action, "entry": a.entry, "cron": a.cron.as_str(),
                       "time_zone": tz.name(), "change": change, "enabled": enabled, "next_run": next}),
                &format!(
                    "{} {} ({}): \"{}\" in {}, {what}; {when}",
                    a.shop,
                    a.action,
                    a.entry,
                    a.cron,
                    tz.name(),
                ),
            );
        }
        ScheduleCommand::Enable(a) => toggle(&mut conn, a, true, json_out).await?,
        ScheduleCommand::Disable(a) => toggle(&mut conn, a, false, json_out).await?,
        ScheduleCommand::Remove(a) => {
            let rec = shop(&mut conn, &a.shop).await?;
            match repo::remove(&mut conn, rec.shop.id, a.action, &a.entry, &a.requested_by).await {
                Ok(()) => {}
                Err(store::StoreError::NotFound { .. }) => bail!(
                    "shop {} has no {} entry named {:?}: see `ctl schedule list --shop {}`",
                    a.shop,
                    a.action,
                    a.entry,
                    a.shop
                ),
                Err(e) => return Err(e).context("cannot remove the entry"),
            }
            done(
                json_out,
                json!({"shop": a.shop, "action": a.action, "entry": a.entry, "removed": true}),
                &format!("{} {} ({}): removed", a.shop, a.action, a.entry),
            );
        }
    }
    Ok(())
}

async fn toggle(
    conn: &mut sqlx::PgConnection,
    a: ToggleArgs,
    enabled: bool,
    json_out: bool,
) -> anyhow::Result<()> {
    let rec = shop(conn, &a.shop).await?;
    let changed = match repo::set_enabled(
        conn,
        rec.shop.id,
        a.action,
        a.entry.as_deref(),
        enabled,
        &a.requested_by,
    )
    .await
    {
        Ok(c) => c,
        Err(store::StoreError::NotFound { .. }) => bail!(
            "shop {} has no schedule entry {}{}: see `ctl schedule list --shop {}`",
            a.shop,
            a.action.map(|x| x.as_str()).unwrap_or("(any action)"),
            a.entry
                .as_deref()
                .map(|e| format!(" named {e:?}"))
                .unwrap_or_default(),
            a.shop
        ),
        Err(e) => return Err(e).context("cannot change the schedule"),
    };
    let state = if enabled { "enabled" } else { "disabled" };
    let list: Vec<String> = changed.iter().map(|(a, e)| format!("{a} ({e})")).collect();
    done(
        json_out,
        json!({"shop": a.shop, "enabled": enabled,
               "changed": changed.iter().map(|(a, e)| json!({"action": a, "entry": e})).collect::<Vec<_>>()}),
        &if list.is_empty() {
            format!("{}: already {state}; nothing changed", a.shop)
        } else {
            format!("{}: {state} {}", a.shop, list.join(", "))
        },
    );
    Ok(())
}

fn local(t: Option<DateTime<Utc>>, tz: chrono_tz::Tz) -> String {
    t.map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string())
        .unwrap_or_else(|| "—".to_owned())
}

fn print_list(
    shops: &[store::shops::ShopRecord],
    rows: &[Schedule],
    now: DateTime<Utc>,
    json_out: bool,
) -> anyhow::Result<()> {
    let shop_of = |id| shops.iter().find(|s| s.shop.id == id);
    if json_out {
        let v: Vec<_> = rows
            .iter()
            .filter_map(|r| {
                let s = shop_of(r.shop_id)?;
                let tz = s.shop.time_zone;
                Some(json!({
                    "shop": s.shop.code, "shop_active": s.active, "action": r.action, "entry": r.entry,
                    "cron": r.cron, "time_zone": tz.name(), "enabled": r.enabled,
                    "next_run": r.next_run(tz, now), "last_fired_slot": r.last_fired_slot,
                    "last_fired_at": r.last_fired_at, "updated_by": r.updated_by, "updated_at": r.updated_at,
                }))
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no schedule entries");
        return Ok(());
    }
    println!(
        "{:<16} {:<18} {:<12} {:<18} {:<8} {:<22} {:<22} UPDATED BY",
        "SHOP", "ACTION", "ENTRY", "CRON", "ENABLED", "NEXT RUN", "LAST FIRED"
    );
    for r in rows {
        let Some(s) = shop_of(r.shop_id) else {
            continue;
        };
        let tz = s.shop.time_zone;
        println!(
            "{:<16} {:<18} {:<12} {:<18} {:<8} {:<22} {:<22} {}",
            s.shop.code.as_str(),
            r.action.as_str(),
            r.entry,
            r.cron,
            if !r.enabled {
                "no"
            } else if !s.active {
                "inactive"
            } else {
                "yes"
            },
            local(r.next_run(tz, now), tz),
            local(r.last_fired_slot, tz),
            r.updated_by
        );
    }
    Ok(())
}

fn done(json_out: bool, v: serde_json::Value, text: &str) {
    if json_out {
        println!("{v}");
    } else {
        println!("{text}");
    }
}

/// `ctl scheduler tick`: claims the due slots and writes one trigger per fired slot to the outbox
/// in one transaction (store::schedules::claim_due), then publishes them. A retried tick finds
/// the slots claimed; a trigger's message id is derived from (shop, action, slot), so even a
/// slot claimed twice queues one command.
pub async fn tick(config: &Config, cmd: SchedulerCommand, json_out: bool) -> anyhow::Result<()> {
    let SchedulerCommand::Tick(a) = cmd;
    let pool = config.pool().await?;
    let now = Utc::now();
    let max_late = Duration::minutes(i64::from(a.max_late_minutes));
    let mut tx = pool.begin().await?;
    let claims = repo::claim_due(&mut tx, now, max_late)
        .await
        .context("cannot read the schedules")?;
    let mut fired = Vec::new();
    let mut missed = Vec::new();
    for c in &claims {
        let slot = match c.due {
            Due::Fire(slot) => slot,
            Due::Missed(slot) => {
                missed.push(json!({"shop": c.shop_code, "action": c.action, "entry": c.entry, "slot": slot}));
                continue;
            }
        };
        let mut cmd = Command::new(
            c.shop_id,
            c.action,
            schedule::params(c.action),
            format!("{}:{}", a.requested_by, c.entry),
            now,
        );
        cmd.message_id = trigger::dedupe_id(c.shop_id, c.action, &schedule::dedupe_key(slot));
        cmd.validate(now)
            .with_context(|| format!("{} {}: trigger refused", c.shop_code, c.action))?;
        let duplicate = trigger::enqueue_once(&mut tx, &config.bus_prefix, &cmd).await?;
        fired.push((c, slot, cmd.message_id, duplicate));
    }
    tx.commit().await?;

    let mut actions: Vec<Action> = fired.iter().map(|(c, ..)| c.action).collect();
    actions.sort_by_key(|a| a.as_str());
    actions.dedup();
    let published = if actions.is_empty() {
        Ok(())
    } else {
        trigger::publish_now(config, &pool, &actions).await
    };
    if json_out {
        println!(
            "{}",
            json!({
                "at": now,
                "fired": fired.iter().map(|(c, slot, id, duplicate)| json!({
                    "shop": c.shop_code, "action": c.action, "entry": c.entry, "slot": slot,
                    "message_id": id, "duplicate": duplicate,
                })).collect::<Vec<_>>(),
                "missed": missed,
                "published": published.is_ok(),
            })
        );
    } else {
        for (c, slot, id, duplicate) in &fired {
            println!(
                "{} {} ({}) slot {} → {id}{}",
                c.shop_code,
                c.action,
                c.entry,
                slot.format("%Y-%m-%dT%H:%MZ"),
                if *duplicate { " (already queued)" } else { "" }
            );
        }
        for m in &missed {
            eprintln!(
                "note: passed over {} {} ({}) slot {}: more than {} min late",
                m["shop"].as_str().unwrap_or_default(),
                m["action"].as_str().unwrap_or_default(),
                m["entry"].as_str().unwrap_or_default(),
                m["slot"].as_str().unwrap_or_default(),
                a.max_late_minutes
            );
        }
        if fired.is_empty() && missed.is_empty() {
            println!("nothing due");
        }
        if let Err(e) = &published {
            eprintln!("note: queued in the outbox; a running service will publish it ({e:#})");
        }
    }
    Ok(())
}

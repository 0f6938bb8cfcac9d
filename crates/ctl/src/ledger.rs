//! `ctl runs` (the run ledger) and `ctl log` (the API log, APIログ).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use domain::messages::Action;
use serde_json::json;
use store::{api_log, runs::Run};
use uuid::Uuid;

use crate::config::Config;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub command: Option<RunsCommand>,
    #[command(flatten)]
    pub list: RunsListArgs,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// One run with its window, cursor, counts and error.
    Show {
        /// Run id (the ID column of `ctl runs`).
        id: Uuid,
    },
}

#[derive(Debug, Args)]
pub struct RunsListArgs {
    /// Only this shop (code, see `ctl shop list`).
    #[arg(long)]
    pub shop: Option<String>,
    /// Only this action: order-ingest, status-sync, shipment-feedback, inventory-sync or feed-poller.
    #[arg(long)]
    pub action: Option<Action>,
    /// How many runs, newest first (1-1000).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=1000))]
    pub limit: i64,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only this shop (code, see `ctl shop list`).
    #[arg(long)]
    pub shop: Option<String>,
    /// Only this action: order-ingest, status-sync, shipment-feedback, inventory-sync or feed-poller.
    #[arg(long)]
    pub action: Option<Action>,
    /// Only this level: info, warning, error or attention.
    #[arg(long)]
    pub level: Option<api_log::Level>,
    /// Only entries about this Amazon order id.
    #[arg(long)]
    pub order: Option<String>,
    /// Only entries about this seller SKU.
    #[arg(long)]
    pub sku: Option<String>,
    /// Only entries of this run (see `ctl runs`).
    #[arg(long)]
    pub run: Option<Uuid>,
    /// How many entries (1-10000): the newest, printed oldest first.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub limit: i64,
    /// Keep printing new entries as they are written, until Ctrl-C. With --json: one JSON
    /// object per line.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// With --follow: seconds between polls (1-60).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub interval: u64,
}

/// Shop id → code, for printing.
async fn shop_codes(conn: &mut sqlx::PgConnection) -> anyhow::Result<HashMap<Uuid, String>> {
    Ok(store::shops::list(conn)
        .await?
        .into_iter()
        .map(|r| (r.shop.id, r.shop.code.as_str().to_owned()))
        .collect())
}

async fn shop_id(conn: &mut sqlx::PgConnection, code: &str) -> anyhow::Result<Uuid> {
    Ok(store::shops::get_by_code(conn, code)
        .await
        .with_context(|| format!("unknown shop {code:?}: see `ctl shop list`"))?
        .shop
        .id)
}

/// `counts` as `pages 3 · orders 12 · new 10 …` (the console prints the same).
pub use store::read::runs::counts_summary as counts_text;

fn duration_text(r: &Run) -> String {
    let end = r.finished_at.unwrap_or_else(chrono::Utc::now);
    let secs = (end - r.started_at).num_milliseconds() as f64 / 1000.0;
    if r.finished_at.is_some() {
        format!("{secs:.1}s")
    } else {
        format!("{secs:.0}s…")
    }
}

pub fn run_json(r: &Run, shop: Option<&str>) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("shop".into(), json!(shop));
        obj.insert(
            "duration_seconds".into(),
            json!(
                r.finished_at
                    .map(|f| (f - r.started_at).num_milliseconds() as f64 / 1000.0)
            ),
        );
    }
    v
}

pub async fn run_runs(config: &Config, a: RunsArgs, json_out: bool) -> anyhow::Result<()> {
    let pool = config.pool().await?;
    let mut conn = pool.acquire().await?;
    let codes = shop_codes(&mut conn).await?;
    let code_of = |id: &Uuid| codes.get(id).map(String::as_str);
    if let Some(RunsCommand::Show { id }) = a.command {
        let r = store::runs::get(&mut conn, id)
            .await
            .with_context(|| format!("no run {id}: see `ctl runs` for run ids"))?;
        let v = run_json(&r, code_of(&r.shop_id));
        if json_out {
            println!("{}", serde_json::to_string_pretty(&v)?);
            return Ok(());
        }
        let opt = |t: Option<String>| t.unwrap_or_else(|| "-".into());
        println!("{:<14} {}", "id", r.id);
        println!("{:<14} {}", "shop", code_of(&r.shop_id).unwrap_or("?"));
        println!("{:<14} {}", "action", r.action);
        println!("{:<14} {}", "mode", opt(r.mode.clone()));
        println!("{:<14} {}", "status", r.status);
        println!(
            "{:<14} {}",
            "command",
            opt(r.command_id.map(|c| c.to_string()))
        );
        println!("{:<14} {}", "requested by", opt(r.requested_by.clone()));
        println!("{:<14} {}", "started", r.started_at.to_rfc3339());
        println!(
            "{:<14} {}",
            "finished",
            opt(r.finished_at.map(|t| t.to_rfc3339()))
        );
        println!("{:<14} {}", "duration", duration_text(&r));
        println!(
            "{:<14} {} → {}",
            "window",
            opt(r.window_from.map(|t| t.to_rfc3339())),
            opt(r.window_to.map(|t| t.to_rfc3339()))
        );
        println!(
            "{:<14} {}",
            "watermark",
            opt(r.watermark.map(|t| t.to_rfc3339()))
        );
        println!("{:<14} {}", "amazon calls", r.amazon_calls);
        println!("{:<14} {}", "counts", counts_text(&r.counts));
        println!("{:<14} {}", "counts (all)", r.counts);
        if let Some(c) = &r.cursor {
            println!("{:<14} {c}", "cursor");
        }
        println!("{:<14} {}", "error", opt(r.error.clone()));
        return Ok(());
    }
    let l = a.list;
    let shop = match &l.shop {
        Some(code) => Some(shop_id(&mut conn, code).await?),
        None => None,
    };
    let rows = store::runs::recent(&mut conn, shop, l.action.map(Action::as_str), l.limit).await?;
    if json_out {
        let v: Vec<_> = rows
            .iter()
            .map(|r| run_json(r, code_of(&r.shop_id)))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no runs yet (trigger one with `ctl trigger <action> --shop <shop>`)");
        return Ok(());
    }
    println!(
        "{:<36} {:<12} {:<18} {:<12} {:<10} {:<19} {:>8} {:>6}  COUNTS / ERROR",
        "ID", "SHOP", "ACTION", "MODE", "STATUS", "STARTED (UTC)", "TIME", "CALLS"
    );
    for r in &rows {
        let tail = match &r.error {
            Some(e) => format!("{} — {e}", counts_text(&r.counts)),
            None => counts_text(&r.counts),
        };
        println!(
            "{:<36} {:<12} {:<18} {:<12} {:<10} {:<19} {:>8} {:>6}  {}",
            r.id,
            code_of(&r.shop_id).unwrap_or("?"),
            r.action,
            r.mode.as_deref().unwrap_or("-"),
            r.status,
            r.started_at.format("%Y-%m-%d %H:%M:%S"),
            duration_text(r),
            r.amazon_calls,
            tail
        );
    }
    Ok(())
}

fn log_line(r: &api_log::Record, codes: &HashMap<Uuid, String>) -> String {
    let shop = r
        .shop_id
        .and_then(|id| codes.get(&id).map(String::as_str))
        .unwrap_or("-");
    let mut about = Vec::new();
    if let Some(o) = &r.amazon_order_id {
        about.push(format!("order {o}"));
    }
    if let Some(s) = &r.sku {
        about.push(format!("sku {s}"));
    }
    if let Some(c) = &r.code {
        about.push(format!("[{c}]"));
    }
    format!(
        "{:>8} {} {:<12} {:<18} {:<9} {}{}",
        r.id,
        r.created_at.format("%Y-%m-%d %H:%M:%S"),
        shop,
        r.action,
        r.level,
        if about.is_empty() {
            String::new()
        } else {
            format!("{}: ", about.join(" "))
        },
        r.message
    )
}

fn log_json(r: &api_log::Record, codes: &HashMap<Uuid, String>) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "shop".into(),
            json!(r.shop_id.and_then(|id| codes.get(&id))),
        );
    }
    v
}

pub async fn run_log(config: &Config, a: LogArgs, json_out: bool) -> anyhow::Result<()> {
    let pool = config.pool().await?;
    let mut conn = pool.acquire().await?;
    let mut codes = shop_codes(&mut conn).await?;
    let shop = match &a.shop {
        Some(code) => Some(shop_id(&mut conn, code).await?),
        None => None,
    };
    let mut filter = api_log::Filter {
        shop_id: shop,
        run_id: a.run,
        action: a.action.map(|x| x.as_str().to_owned()),
        level: a.level.map(|l| l.as_str().to_owned()),
        amazon_order_id: a.order.clone(),
        sku: a.sku.clone(),
        after_id: None,
        limit: a.limit,
        ..api_log::Filter::default()
    };
    // Newest first from the store; printed oldest first so the newest is next to the prompt.
    let mut rows = api_log::query(&mut conn, &filter).await?;
    rows.reverse();
    let mut last_id = rows.last().map(|r| r.id);
    if json_out && !a.follow {
        let v: Vec<_> = rows.iter().map(|r| log_json(r, &codes)).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if !json_out && !a.follow && rows.is_empty() {
        println!("no API log entries match");
        return Ok(());
    }
    let print = |rows: &[api_log::Record], codes: &HashMap<Uuid, String>| {
        for r in rows {
            if json_out {
                println!("{}", log_json(r, codes));
            } else {
                println!("{}", log_line(r, codes));
            }
        }
    };
    print(&rows, &codes);
    if !a.follow {
        return Ok(());
    }
    if last_id.is_none() {
        // Nothing matched yet: start after the newest entry of the whole log.
        let newest = api_log::query(
            &mut conn,
            &api_log::Filter {
                limit: 1,
                ..api_log::Filter::default()
            },
        )
        .await?;
        last_id = Some(newest.first().map_or(0, |r| r.id));
    }
    drop(conn);
    let interval = Duration::from_secs(a.interval);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            () = tokio::time::sleep(interval) => {}
        }
        filter.after_id = last_id;
        filter.limit = 1000;
        let mut conn = pool.acquire().await?;
        let rows = api_log::query(&mut conn, &filter).await?;
        if rows
            .iter()
            .any(|r| r.shop_id.is_some_and(|id| !codes.contains_key(&id)))
        {
            codes = shop_codes(&mut conn).await?;
        }
        if let Some(r) = rows.last() {
            last_id = Some(r.id);
        }
        print(&rows, &codes);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn counts_text_puts_pages_and_orders_first_and_drops_noise() {
        let c = json!({"active_ms": 120, "calls": {"getOrders": 2}, "failed": 0, "new": 3,
                       "orders": 4, "pages": 0, "continuations": 1});
        assert_eq!(
            super::counts_text(&c),
            "pages 0 · orders 4 · continuations 1 · new 3"
        );
        assert_eq!(super::counts_text(&json!(null)), "");
    }
}

//! `ctl stock` and `ctl external-product`: the operator's side of inventory sync (在庫連携).
//! Every stock change is recorded with when it happened (`stock_changes`) and bumps the
//! product's change sequence, so the next inventory-sync run pushes it. Values Amazon would
//! refuse (handling days outside 0–30) and negative stock are refused here, before any change.

use anyhow::{Context, bail};
use clap::Subcommand;
use domain::inventory::HandlingDays;
use serde_json::json;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum StockCommand {
    /// Set a product's on-hand quantity (a stock count).
    Set {
        /// Product code.
        product: String,
        /// New on-hand quantity (0 or more).
        #[arg(allow_negative_numbers = true)]
        quantity: i64,
        /// Shop code.
        #[arg(long)]
        shop: String,
        /// Why (recorded with the change).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Add to (or, with a negative number, take from) a product's on-hand quantity.
    Adjust {
        /// Product code.
        product: String,
        /// Change, e.g. 5 or -2.
        #[arg(allow_negative_numbers = true)]
        delta: i64,
        /// Shop code.
        #[arg(long)]
        shop: String,
        /// Why (recorded with the change).
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExternalProductCommand {
    /// Map an Amazon seller SKU to a product (対応表). Remapping a SKU pushes it again.
    Map {
        /// Amazon seller SKU.
        sku: String,
        /// Product code.
        product: String,
        /// Shop code.
        #[arg(long)]
        shop: String,
        /// Handling time (出荷作業日数) in days, 0-30; unset: Amazon's default at the next push (or
        /// Amazon's own value for a shop set with `ctl shop set --keep-amazon-handling-time true`).
        #[arg(long, allow_negative_numbers = true)]
        handling_days: Option<i64>,
    },
    /// Remove a SKU from the mapping table (its stock is no longer pushed).
    Unmap {
        /// Amazon seller SKU.
        sku: String,
        /// Shop code.
        #[arg(long)]
        shop: String,
    },
    /// Set a SKU's handling time (出荷作業日数), 0-30 days, or clear it with --clear.
    SetHandlingDays {
        /// Amazon seller SKU.
        sku: String,
        /// Days, 0-30.
        #[arg(allow_negative_numbers = true, required_unless_present = "clear")]
        days: Option<i64>,
        /// No handling time: the next push sets Amazon's default (or leaves Amazon's value for a shop
        /// that keeps it).
        #[arg(long, conflicts_with = "days")]
        clear: bool,
        /// Shop code.
        #[arg(long)]
        shop: String,
    },
}

/// A handling time from the command line, refused with a clear message outside 0–30.
pub fn handling_days(days: i64) -> anyhow::Result<HandlingDays> {
    HandlingDays::new(days).map_err(|e| anyhow::anyhow!("{e}; nothing was changed"))
}

/// A stock quantity from the command line: 0 or more, within range.
pub fn on_hand(quantity: i64) -> anyhow::Result<i32> {
    if quantity < 0 {
        bail!("stock cannot be negative (got {quantity}); nothing was changed");
    }
    i32::try_from(quantity)
        .map_err(|_| anyhow::anyhow!("quantity {quantity} is too large; nothing was changed"))
}

/// A stock change from the command line (may be negative).
pub fn delta(delta: i64) -> anyhow::Result<i32> {
    i32::try_from(delta)
        .map_err(|_| anyhow::anyhow!("change {delta} is too large; nothing was changed"))
}

pub async fn run_stock(config: &Config, cmd: StockCommand, as_json: bool) -> anyhow::Result<()> {
    // Validate before connecting.
    let (product, shop, reason, change) = match &cmd {
        StockCommand::Set {
            product,
            quantity,
            shop,
            reason,
        } => (product, shop, reason, Ok(on_hand(*quantity)?)),
        StockCommand::Adjust {
            product,
            delta: d,
            shop,
            reason,
        } => (product, shop, reason, Err(delta(*d)?)),
    };
    let pool = config.pool().await?;
    let mut tx = pool.begin().await?;
    let shop = store::shops::get_by_code(&mut tx, shop)
        .await
        .with_context(|| format!("shop {shop:?}"))?
        .shop;
    let p = store::catalog::product_by_code(&mut tx, shop.id, product)
        .await
        .with_context(|| format!("product {product:?} of shop {}", shop.code.as_str()))?;
    let after = match change {
        Ok(q) => store::inventory::set_on_hand(&mut tx, shop.id, p.id, q, reason.as_deref()).await,
        Err(d) => store::inventory::adjust_on_hand(&mut tx, shop.id, p.id, d, reason.as_deref()).await,
    }
    .map_err(|e| match e {
        store::inventory::StockError::Negative { result, .. } => {
            anyhow::anyhow!("stock cannot be negative: this would leave {result} on hand for product {product}; nothing was changed")
        }
        other => anyhow::Error::new(other),
    })?;
    tx.commit().await?;
    if as_json {
        println!(
            "{}",
            json!({
                "product": p.code,
                "on_hand": after.levels.on_hand,
                "reserved": after.levels.reserved,
                "allocated": after.levels.allocated,
                "free": after.free,
                "change_seq": after.change_seq,
                "changed_at": after.changed_at,
            })
        );
    } else {
        println!(
            "{}: on hand {}, reserved {}, allocated {}, free {} (pushed to Amazon by the next inventory-sync run)",
            p.code, after.levels.on_hand, after.levels.reserved, after.levels.allocated, after.free
        );
    }
    Ok(())
}

pub async fn run_external_product(
    config: &Config,
    cmd: ExternalProductCommand,
    as_json: bool,
) -> anyhow::Result<()> {
    match cmd {
        ExternalProductCommand::Map {
            sku,
            product,
            shop,
            handling_days: days,
        } => {
            let days = days.map(handling_days).transpose()?;
            let sku = non_empty_sku(&sku)?;
            let pool = config.pool().await?;
            let mut tx = pool.begin().await?;
            let shop = store::shops::get_by_code(&mut tx, &shop)
                .await
                .with_context(|| format!("shop {shop:?}"))?
                .shop;
            let p = store::catalog::product_by_code(&mut tx, shop.id, &product)
                .await
                .with_context(|| format!("product {product:?} of shop {}", shop.code.as_str()))?;
            let m = store::inventory::map_sku(&mut tx, shop.id, sku, p.id, days).await?;
            tx.commit().await?;
            print_mapping(&m, &p.code, as_json);
        }
        ExternalProductCommand::Unmap { sku, shop } => {
            let pool = config.pool().await?;
            let mut tx = pool.begin().await?;
            let shop = store::shops::get_by_code(&mut tx, &shop)
                .await
                .with_context(|| format!("shop {shop:?}"))?
                .shop;
            if !store::inventory::unmap_sku(&mut tx, shop.id, &sku).await? {
                bail!("SKU {sku:?} is not mapped in shop {}", shop.code.as_str());
            }
            tx.commit().await?;
            if as_json {
                println!("{}", json!({"sku": sku, "unmapped": true}));
            } else {
                println!("{sku}: unmapped (its stock is no longer pushed)");
            }
        }
        ExternalProductCommand::SetHandlingDays {
            sku,
            days,
            clear,
            shop,
        } => {
            let days = if clear {
                None
            } else {
                Some(handling_days(
                    days.context("give the days (0-30) or --clear")?,
                )?)
            };
            let pool = config.pool().await?;
            let mut tx = pool.begin().await?;
            let shop = store::shops::get_by_code(&mut tx, &shop)
                .await
                .with_context(|| format!("shop {shop:?}"))?
                .shop;
            let m = store::inventory::set_handling_days(&mut tx, shop.id, &sku, days).await?;
            tx.commit().await?;
            print_mapping(&m, &m.product_id.to_string(), as_json);
        }
    }
    Ok(())
}

fn non_empty_sku(sku: &str) -> anyhow::Result<&str> {
    let t = sku.trim();
    if t.is_empty() || t.len() > 40 {
        bail!("a seller SKU has 1 to 40 characters");
    }
    Ok(t)
}

fn print_mapping(m: &store::inventory::Mapping, product: &str, as_json: bool) {
    if as_json {
        println!(
            "{}",
            json!({
                "sku": m.sku,
                "product": product,
                "handling_days": m.handling_days,
                "push_state": m.push_state,
            })
        );
    } else {
        let days = m.handling_days.map_or_else(
            || "Amazon's own setting".to_owned(),
            |d| format!("{d} day(s)"),
        );
        println!(
            "{} → {product}: handling time {days}; push state {}",
            m.sku, m.push_state
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_checks() {
        assert_eq!(handling_days(0).unwrap().get(), 0);
        assert_eq!(handling_days(30).unwrap().get(), 30);
        let e = handling_days(31).unwrap_err().to_string();
        assert!(
            e.contains("0 to 30") && e.contains("nothing was changed"),
            "{e}"
        );
        assert!(handling_days(-1).is_err());
        assert_eq!(on_hand(0).unwrap(), 0);
        let e = on_hand(-3).unwrap_err().to_string();
        assert!(e.contains("cannot be negative"), "{e}");
        assert!(on_hand(i64::from(i32::MAX) + 1).is_err());
        assert_eq!(delta(-5).unwrap(), -5);
        assert!(non_empty_sku("  ").is_err());
    }
}

//! `ctl stock` and `ctl external-product`: the operator's side of inventory sync (在庫連携).
//! Every stock change is recorded with when it happened (`stock_changes`) and bumps the
//! product's change sequence, so the next inventory-sync run pushes it. Values Amazon would
//! refuse (handling days outside 0–30) and negative stock are refused here, before any change.

use anyhow::{Context, bail};
use clap::Subcommand;
use domain::inventory::HandlingDays;
use domain::stock::{SafetyStock, SharePercent};
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
        /// The product belongs to this shop (default: the SKU's shop). Seller accounts of several
        /// marketplaces may sell one stock; give each SKU a share with `share`.
        #[arg(long)]
        product_shop: Option<String>,
    },
    /// Give a SKU a share of its product's free stock (percent, 1-100) and a safety stock kept
    /// back, for a product whose stock several shops sell; --clear: the whole free stock again.
    /// Every SKU of the product, in every shop, is pushed by its next inventory-sync run.
    Share {
        /// Amazon seller SKU.
        sku: String,
        /// Share of free stock in percent, 1-100.
        #[arg(allow_negative_numbers = true, required_unless_present = "clear")]
        percent: Option<i64>,
        /// No share: the SKU is sent the whole free stock (less its safety stock).
        #[arg(long, conflicts_with = "percent")]
        clear: bool,
        /// Safety stock (安全在庫), units kept back from Amazon: when free stock reaches it, every
        /// sharing shop shows 0. Unset: unchanged (0 for a SKU never given one).
        #[arg(long, allow_negative_numbers = true)]
        safety: Option<i64>,
        /// Shop code.
        #[arg(long)]
        shop: String,
    },
    /// List a shop's mapped SKUs: product, free stock, share, safety stock, what the next push
    /// sends, and the state of the last push.
    List {
        /// Shop code.
        #[arg(long)]
        shop: String,
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

/// A share from the command line, refused with a clear message outside 1–100 %.
pub fn share_percent(percent: i64) -> anyhow::Result<SharePercent> {
    SharePercent::new(percent).map_err(|e| anyhow::anyhow!("{e}; nothing was changed"))
}

/// A safety stock from the command line, refused with a clear message when negative or too large.
pub fn safety_stock(units: i64) -> anyhow::Result<SafetyStock> {
    SafetyStock::new(units).map_err(|e| anyhow::anyhow!("{e}; nothing was changed"))
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
            product_shop,
        } => {
            let days = days.map(handling_days).transpose()?;
            let sku = non_empty_sku(&sku)?;
            let pool = config.pool().await?;
            let mut tx = pool.begin().await?;
            let shop = store::shops::get_by_code(&mut tx, &shop)
                .await
                .with_context(|| format!("shop {shop:?}"))?
                .shop;
            let owner = match &product_shop {
                Some(code) => {
                    store::shops::get_by_code(&mut tx, code)
                        .await
                        .with_context(|| format!("product shop {code:?}"))?
                        .shop
                }
                None => shop.clone(),
            };
            let p = store::catalog::product_by_code(&mut tx, owner.id, &product)
                .await
                .with_context(|| format!("product {product:?} of shop {}", owner.code.as_str()))?;
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
        ExternalProductCommand::Share {
            sku,
            percent,
            clear,
            safety,
            shop,
        } => {
            // Validate before connecting.
            let share = if clear {
                None
            } else {
                Some(share_percent(
                    percent.context("give the share in percent (1-100) or --clear")?,
                )?)
            };
            let safety = safety.map(safety_stock).transpose()?;
            let pool = config.pool().await?;
            let mut tx = pool.begin().await?;
            let shop = store::shops::get_by_code(&mut tx, &shop)
                .await
                .with_context(|| format!("shop {shop:?}"))?
                .shop;
            let m = store::inventory::set_share(&mut tx, shop.id, &sku, share, safety)
                .await
                .with_context(|| format!("SKU {sku:?} of shop {}", shop.code.as_str()))?;
            tx.commit().await?;
            if as_json {
                println!(
                    "{}",
                    json!({
                        "sku": m.sku,
                        "share_percent": m.share_percent,
                        "safety_stock": m.safety_stock,
                    })
                );
            } else {
                println!(
                    "{}: {}, safety stock {} (every SKU of the product is pushed by its next inventory-sync run)",
                    m.sku,
                    share_text(m.share_percent),
                    m.safety_stock
                );
            }
        }
        ExternalProductCommand::List { shop } => {
            let pool = config.pool().await?;
            let mut conn = pool.acquire().await?;
            let shop = store::shops::get_by_code(&mut conn, &shop)
                .await
                .with_context(|| format!("shop {shop:?}"))?
                .shop;
            let rows = store::read::external_products::list(&mut conn, shop.id).await?;
            if as_json {
                let rows: Vec<_> = rows
                    .iter()
                    .map(|r| {
                        json!({
                            "sku": r.sku,
                            "product": r.product_code,
                            "handling_days": r.handling_days,
                            "free": r.free,
                            "share_percent": r.share_percent,
                            "safety_stock": r.safety_stock,
                            "to_send": r.to_send,
                            "push_state": r.push_state,
                            "pushed_quantity": r.pushed_quantity,
                        })
                    })
                    .collect();
                println!("{}", json!(rows));
            } else if rows.is_empty() {
                println!("no SKU is mapped in shop {}", shop.code.as_str());
            } else {
                println!(
                    "{:<24} {:<16} {:>6} {:>12} {:>7} {:>7} {:<10} {:>7}",
                    "SKU", "product", "free", "share", "safety", "to send", "push", "pushed"
                );
                for r in &rows {
                    println!(
                        "{:<24} {:<16} {:>6} {:>12} {:>7} {:>7} {:<10} {:>7}",
                        r.sku,
                        r.product_code,
                        r.free,
                        r.share_percent
                            .map_or_else(|| "whole stock".to_owned(), |p| format!("{p} %")),
                        r.safety_stock,
                        r.to_send,
                        r.push_state,
                        r.pushed_quantity
                            .map_or_else(|| "-".to_owned(), |q| q.to_string()),
                    );
                }
            }
        }
    }
    Ok(())
}

fn share_text(share: Option<i16>) -> String {
    share.map_or_else(
        || "no share (the whole free stock)".to_owned(),
        |p| format!("share {p} % of free stock"),
    )
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
        assert_eq!(share_percent(70).unwrap().get(), 70);
        let e = share_percent(0).unwrap_err().to_string();
        assert!(
            e.contains("share 0") && e.contains("1 to 100") && e.contains("nothing was changed"),
            "{e}"
        );
        assert!(share_percent(101).is_err());
        assert_eq!(safety_stock(2).unwrap().get(), 2);
        let e = safety_stock(-1).unwrap_err().to_string();
        assert!(e.contains("safety stock -1") && e.contains("0 to"), "{e}");
    }
}

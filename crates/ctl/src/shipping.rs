//! Shipment feedback operations: carrier mappings, feeds, resending a shipment, and the WMS
//! steps the demo and tests need (allocate, ship).

use anyhow::{Context, bail};
use chrono::{NaiveDate, Utc};
use clap::{Args, Subcommand};
use serde_json::json;
use sqlx::PgPool;
use store::resend::Resend;
use uuid::Uuid;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum ShippingCommand {
    /// Carrier mappings: external delivery method (外部連携先配送方法) → Amazon carrier.
    #[command(subcommand)]
    Carrier(CarrierCommand),
    /// Feeds sent to Amazon and their per-message results.
    #[command(subcommand)]
    Feeds(FeedsCommand),
    /// Send a shipment again after fixing its data (a failed or refused instruction).
    ResendShipment(ResendArgs),
    /// WMS: allocate (引当) an instruction awaiting shipment.
    Allocate(OrderArgs),
    /// Put an order's instruction on hold (保留) as an operator, or release a hold (--release).
    /// An operator's hold stays when Amazon reports the order paid; only the import's own
    /// "not paid yet" hold is released by payment.
    Hold(HoldArgs),
    /// WMS: ship (出荷) an instruction with its tracking numbers.
    Ship(ShipArgs),
    /// A buyer's request to cancel (status-sync holds or flags the order): accept (cancel here,
    /// release the stock, tell Amazon) or decline (ship as usual).
    #[command(subcommand)]
    CancelRequest(CancelRequestCommand),
}

#[derive(Debug, Subcommand)]
pub enum CancelRequestCommand {
    /// Accept: the instruction is cancelled and its stock released; the next shipment-feedback
    /// run sends Amazon the order acknowledgement (CancelReason BuyerCanceled).
    Accept(DecisionArgs),
    /// Decline: the order ships as usual (its hold for the request is released).
    Decline(DecisionArgs),
}

#[derive(Debug, Args)]
pub struct DecisionArgs {
    /// Shop code (see `ctl shop list`).
    #[arg(long)]
    pub shop: String,
    /// Amazon order id.
    pub amazon_order_id: String,
    /// Who decides (recorded with the decision and in the API log).
    #[arg(long, env = "CTL_REQUESTED_BY", default_value = "ctl")]
    pub operator: String,
}

#[derive(Debug, Subcommand)]
pub enum CarrierCommand {
    /// The mappings a shop sees (its own, then the built-in defaults), or the defaults.
    List {
        /// Shop code (see `ctl shop list`); without it, the built-in defaults.
        #[arg(long)]
        shop: Option<String>,
    },
    /// Add or replace a mapping (for one shop, or a built-in default without --shop).
    Add {
        /// External delivery method, e.g. yamato, sagawa, japan_post.
        external_delivery_method: String,
        /// Amazon CarrierCode as listed in Seller Central (YamatoTransport, SagawaExpress...) or Other.
        #[arg(long)]
        code: String,
        /// CarrierName (required with --code Other).
        #[arg(long)]
        name: Option<String>,
        /// Regular expression the whole tracking number must match, e.g. '^[0-9]{12}$'.
        #[arg(long)]
        pattern: Option<String>,
        /// Shop code (see `ctl shop list`); without it, the built-in defaults.
        #[arg(long)]
        shop: Option<String>,
        /// For a built-in default: the marketplaces it serves, e.g. JP or AU,SG (default: those
        /// of the default it replaces, or every marketplace).
        #[arg(long, value_delimiter = ',', conflicts_with = "shop")]
        markets: Vec<String>,
    },
    /// Remove a mapping.
    Remove {
        /// External delivery method of the mapping, e.g. yamato.
        external_delivery_method: String,
        /// Shop code (see `ctl shop list`); without it, the built-in defaults.
        #[arg(long)]
        shop: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum FeedsCommand {
    /// Newest feed submissions of a shop.
    List {
        /// Shop code (see `ctl shop list`).
        #[arg(long)]
        shop: String,
        /// pending, in_flight, submitted, done, fatal, cancelled or failed.
        #[arg(long)]
        state: Option<String>,
        /// How many submissions, newest first.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// One submission (our id or Amazon's feed id) with its messages.
    Show {
        /// Our submission id (UUID) or Amazon's feed id.
        id: String,
        /// Shop code (see `ctl shop list`).
        #[arg(long)]
        shop: String,
    },
}

#[derive(Debug, Args)]
pub struct ResendArgs {
    /// Shop code (see `ctl shop list`).
    #[arg(long)]
    pub shop: String,
    /// Amazon order id.
    pub amazon_order_id: String,
    /// Who asks (recorded with the request and in the API log).
    #[arg(long, env = "CTL_REQUESTED_BY", default_value = "ctl")]
    pub requested_by: String,
}

#[derive(Debug, Args)]
pub struct OrderArgs {
    /// Shop code (see `ctl shop list`).
    #[arg(long)]
    pub shop: String,
    /// Amazon order id.
    pub amazon_order_id: String,
}

#[derive(Debug, Args)]
pub struct HoldArgs {
    /// Shop code (see `ctl shop list`).
    #[arg(long)]
    pub shop: String,
    /// Amazon order id.
    pub amazon_order_id: String,
    /// Release the hold (保留 → 出荷待ち) instead, whatever its reason.
    #[arg(long)]
    pub release: bool,
}

#[derive(Debug, Args)]
pub struct ShipArgs {
    /// Shop code (see `ctl shop list`).
    #[arg(long)]
    pub shop: String,
    /// Amazon order id.
    pub amazon_order_id: String,
    /// Tracking numbers, comma-separated (only the first goes to Amazon, unless the shop sends
    /// every package).
    #[arg(
        long,
        value_delimiter = ',',
        required_unless_present = "package",
        conflicts_with = "package"
    )]
    pub tracking: Vec<String>,
    /// One package as packed, repeated per package in order:
    /// TRACKING[@CARRIER]:ORDER_ITEM_ID=QTY[,ORDER_ITEM_ID=QTY…] (CARRIER: an external delivery
    /// method when the package went with another carrier than the instruction's). Sent one by
    /// one for a shop set with `ctl shop set --send-every-package true`; otherwise the first
    /// package's tracking number is sent as the seed says. For a shop sending every package,
    /// packages covering only part of the order are a partial shipment (一部出荷済み): run `ctl
    /// ship --package` again for the rest when it leaves (package numbers continue).
    #[arg(long)]
    pub package: Vec<String>,
    /// Ship date (default: today in the shop's time zone).
    #[arg(long)]
    pub date: Option<NaiveDate>,
}

pub async fn run(config: &Config, command: ShippingCommand, json_out: bool) -> anyhow::Result<()> {
    let pool = config.pool().await?;
    match command {
        ShippingCommand::Carrier(c) => carrier(&pool, c, json_out).await,
        ShippingCommand::Feeds(c) => feeds(&pool, c, json_out).await,
        ShippingCommand::ResendShipment(a) => resend(&pool, a).await,
        ShippingCommand::Allocate(a) => allocate(&pool, a).await,
        ShippingCommand::Hold(a) => hold(&pool, a, json_out).await,
        ShippingCommand::Ship(a) => ship(&pool, a).await,
        ShippingCommand::CancelRequest(c) => cancel_request(&pool, c).await,
    }
}

async fn shop_of(pool: &PgPool, code: &str) -> anyhow::Result<domain::shop::Shop> {
    let mut conn = pool.acquire().await?;
    Ok(store::shops::get_by_code(&mut conn, code)
        .await
        .with_context(|| format!("unknown shop {code:?} (see `ctl shop list`)"))?
        .shop)
}

async fn carrier(pool: &PgPool, c: CarrierCommand, json_out: bool) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    match c {
        CarrierCommand::List { shop } => {
            let rows = match shop {
                Some(code) => {
                    store::carriers::effective(&mut conn, shop_of(pool, &code).await?.id).await?
                }
                None => store::carriers::list(&mut conn, None).await?,
            };
            if json_out {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:<26} {:<26} {:<28} {:<8} {:<8} PATTERN",
                    "EXTERNAL", "CARRIER CODE", "CARRIER NAME", "SCOPE", "MARKETS"
                );
                for r in rows {
                    let markets = r.marketplace_codes();
                    println!(
                        "{:<26} {:<26} {:<28} {:<8} {:<8} {}",
                        r.external_delivery_method,
                        r.carrier_code,
                        r.carrier_name.as_deref().unwrap_or("-"),
                        if r.shop_id.is_some() {
                            "shop"
                        } else {
                            "default"
                        },
                        if markets.is_empty() {
                            "all".to_owned()
                        } else {
                            markets.join(",")
                        },
                        r.tracking_pattern.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        CarrierCommand::Add {
            external_delivery_method,
            code,
            name,
            pattern,
            shop,
            markets,
        } => {
            let markets = markets
                .iter()
                .map(|m| {
                    m.trim()
                        .parse::<domain::marketplace::Marketplace>()
                        .map(|m| m.code().to_owned())
                        .with_context(|| format!("--markets {m:?}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let check = store::carriers::NewMapping {
                shop_id: None,
                external_delivery_method: &external_delivery_method,
                carrier_code: &code,
                carrier_name: name.as_deref(),
                tracking_pattern: pattern.as_deref(),
                marketplaces: None,
            };
            if let Some(problem) = check.invalid() {
                bail!("{problem} (--code, --name)");
            }
            if let Some(p) = &pattern {
                store::carriers::check_pattern(&mut conn, p)
                    .await
                    .with_context(|| {
                        format!("--pattern {p:?} is not a valid regular expression")
                    })?;
            }
            let shop_id = match shop {
                Some(code) => Some(shop_of(pool, &code).await?.id),
                None => None,
            };
            let new = store::carriers::NewMapping {
                shop_id,
                external_delivery_method: &external_delivery_method,
                carrier_code: &code,
                carrier_name: name.as_deref(),
                tracking_pattern: pattern.as_deref(),
                marketplaces: (!markets.is_empty()).then_some(markets.as_slice()),
            };
            let m = store::carriers::upsert(&mut conn, &new).await?;
            if let domain::carrier::AmazonCarrier::Other(name) = m.amazon_carrier()
                && m.carrier_code != "Other"
            {
                println!(
                    "note: {:?} is not on Amazon's carrier list; it is sent as CarrierCode Other with CarrierName {name:?}",
                    m.carrier_code
                );
            }
            println!(
                "carrier mapping {} → {}{} saved",
                m.external_delivery_method,
                m.carrier_code,
                m.carrier_name
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            );
        }
        CarrierCommand::Remove {
            external_delivery_method,
            shop,
        } => {
            let shop_id = match shop {
                Some(code) => Some(shop_of(pool, &code).await?.id),
                None => None,
            };
            if !store::carriers::remove(&mut conn, shop_id, &external_delivery_method).await? {
                bail!("no carrier mapping {external_delivery_method:?} in that scope");
            }
            println!("carrier mapping {external_delivery_method} removed");
        }
    }
    Ok(())
}

async fn feeds(pool: &PgPool, c: FeedsCommand, json_out: bool) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    match c {
        FeedsCommand::List { shop, state, limit } => {
            let shop = shop_of(pool, &shop).await?;
            let subs = store::feeds::list(&mut conn, shop.id, state.as_deref(), limit).await?;
            if json_out {
                println!("{}", serde_json::to_string_pretty(&subs)?);
                return Ok(());
            }
            println!(
                "{:<36} {:<28} {:<10} {:<14} {:<12} CREATED",
                "ID", "FEED TYPE", "STATE", "AMAZON FEED", "STATUS"
            );
            for s in subs {
                println!(
                    "{:<36} {:<28} {:<10} {:<14} {:<12} {}",
                    s.id,
                    s.feed_type,
                    s.state,
                    s.amazon_feed_id.as_deref().unwrap_or("-"),
                    s.processing_status.as_deref().unwrap_or("-"),
                    s.created_at.format("%Y-%m-%d %H:%M:%S")
                );
            }
        }
        FeedsCommand::Show { id, shop } => {
            let shop = shop_of(pool, &shop).await?;
            let sub = match id.parse::<Uuid>() {
                Ok(uuid) => store::feeds::get(&mut conn, uuid).await?,
                Err(_) => store::feeds::get_by_amazon_id(&mut conn, shop.id, &id).await?,
            };
            if sub.shop_id != shop.id {
                bail!("feed {id} does not belong to shop {}", shop.code);
            }
            let messages = store::feeds::messages(&mut conn, sub.id).await?;
            if json_out {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({"submission": sub, "messages": messages})
                    )?
                );
                return Ok(());
            }
            println!("{}", serde_json::to_string_pretty(&sub)?);
            println!(
                "{:<6} {:<22} {:<20} {:<8} {:<8} MESSAGE",
                "MSG", "ORDER", "SKU", "RESULT", "CODE"
            );
            for m in messages {
                println!(
                    "{:<6} {:<22} {:<20} {:<8} {:<8} {}",
                    m.message_id,
                    m.amazon_order_id.as_deref().unwrap_or("-"),
                    m.sku.as_deref().unwrap_or("-"),
                    m.result,
                    m.result_code.as_deref().unwrap_or("-"),
                    m.result_message.as_deref().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}

async fn resend(pool: &PgPool, a: ResendArgs) -> anyhow::Result<()> {
    let shop = shop_of(pool, &a.shop).await?;
    let mut conn = pool.acquire().await?;
    let order = &a.amazon_order_id;
    match store::resend::ask(&mut conn, shop.id, order, &a.requested_by).await? {
        Resend::Requested => {}
        Resend::Unknown => bail!("no instruction for order {order} in shop {}", shop.code),
        Resend::NotShipped(status) => {
            bail!("order {order} is {status}, not shipped: ship it first (`ctl ship`)")
        }
        Resend::Pending => bail!(
            "order {order} was sent and Amazon's result is still pending (印刷済み); wait for feed-poller"
        ),
        Resend::Confirmed => bail!("order {order} is already confirmed by Amazon (出荷済み)"),
    }
    println!(
        "order {} is awaiting print again; the next shipment-feedback run sends it (`ctl trigger shipment-feedback --shop {}`)",
        a.amazon_order_id, shop.code
    );
    Ok(())
}

async fn cancel_request(pool: &PgPool, c: CancelRequestCommand) -> anyhow::Result<()> {
    let (accept, a) = match c {
        CancelRequestCommand::Accept(a) => (true, a),
        CancelRequestCommand::Decline(a) => (false, a),
    };
    let shop = shop_of(pool, &a.shop).await?;
    let order = &a.amazon_order_id;
    let mut tx = pool.begin().await?;
    let decided = if accept {
        store::cancel_requests::accept(&mut tx, shop.id, order, &a.operator).await
    } else {
        store::cancel_requests::decline(&mut tx, shop.id, order, &a.operator).await
    };
    decided.map_err(|e| wms_error(e, order, shop.code.as_str(), ""))?;
    tx.commit().await?;
    if accept {
        println!(
            "order {order}: cancelled (キャンセル) and its stock released; the next shipment-feedback run tells Amazon (`ctl trigger shipment-feedback --shop {}`)",
            shop.code
        );
    } else {
        println!("order {order}: the buyer's request is declined; it ships as usual");
    }
    Ok(())
}

/// Names the order and the shop when the instruction does not exist; passes other errors on.
fn wms_error(e: store::StoreError, order: &str, shop: &str, next: &str) -> anyhow::Error {
    match e {
        store::StoreError::NotFound { .. } => anyhow::anyhow!(
            "no instruction for order {order} in shop {shop} (see `ctl runs --shop {shop}` or import it with `ctl import-order`)"
        ),
        store::StoreError::Conflict(msg) => anyhow::anyhow!("{msg}{next}"),
        other => anyhow::Error::new(other),
    }
}

async fn allocate(pool: &PgPool, a: OrderArgs) -> anyhow::Result<()> {
    let shop = shop_of(pool, &a.shop).await?;
    let mut tx = pool.begin().await?;
    store::wms::allocate(&mut tx, shop.id, &a.amazon_order_id)
        .await
        .map_err(|e| wms_error(e, &a.amazon_order_id, shop.code.as_str(), ""))?;
    tx.commit().await?;
    println!("order {} allocated (引当済み)", a.amazon_order_id);
    Ok(())
}

async fn hold(pool: &PgPool, a: HoldArgs, json_out: bool) -> anyhow::Result<()> {
    let shop = shop_of(pool, &a.shop).await?;
    let order = a.amazon_order_id.as_str();
    let mut conn = pool.acquire().await?;
    let (done, text) = if a.release {
        let done = store::instructions::release_hold(&mut conn, shop.id, order).await?;
        (done, format!("order {order}: hold released (出荷待ち)"))
    } else {
        let reason = domain::HoldReason::Operator;
        let done = store::instructions::place_hold(&mut conn, shop.id, order, reason).await?;
        (
            done,
            format!("order {order}: on hold by an operator (保留)"),
        )
    };
    if !done {
        let state = if a.release {
            "not on hold"
        } else {
            "not open (only 保留 and 出荷待ち instructions can be held)"
        };
        bail!(
            "order {order} in shop {}: no instruction, or it is {state}",
            shop.code
        );
    }
    if json_out {
        println!("{}", json!({"order": order, "held": !a.release}));
    } else {
        println!("{text}");
    }
    Ok(())
}

async fn ship(pool: &PgPool, a: ShipArgs) -> anyhow::Result<()> {
    let shop = shop_of(pool, &a.shop).await?;
    let date = a
        .date
        .unwrap_or_else(|| domain::eligibility::today_in(shop.time_zone, Utc::now()));
    let wms_err = |e| {
        wms_error(
            e,
            &a.amazon_order_id,
            shop.code.as_str(),
            " (`ctl allocate`)",
        )
    };
    let mut tx = pool.begin().await?;
    let tracking: Vec<String> = if a.package.is_empty() {
        let tracking: Vec<String> = a
            .tracking
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        if tracking.is_empty() {
            bail!("--tracking needs at least one tracking number (comma-separated)");
        }
        store::wms::ship(&mut tx, shop.id, &a.amazon_order_id, &tracking, date)
            .await
            .map_err(wms_err)?;
        tracking
    } else {
        let packages = a
            .package
            .iter()
            .enumerate()
            .map(|(n, spec)| domain::packages::parse(n as u16 + 1, spec))
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| anyhow::anyhow!("--package {e}"))?;
        let shipped =
            store::wms::ship_packages(&mut tx, shop.id, &a.amazon_order_id, &packages, date)
                .await
                .map_err(wms_err)?;
        if !shipped.remaining.is_empty() {
            tx.commit().await?;
            let numbers: Vec<String> = shipped
                .packages
                .iter()
                .map(|p| format!("{} ({})", p.number, p.tracking_number))
                .collect();
            let rest: Vec<String> = shipped
                .remaining
                .iter()
                .map(|(item, q)| format!("{item} × {q}"))
                .collect();
            println!(
                "order {} partially shipped (一部出荷済み) on {date}: package {} recorded; still to ship: {} (record it with `ctl ship --package` when it leaves)",
                a.amazon_order_id,
                numbers.join(", "),
                rest.join(", ")
            );
            return Ok(());
        }
        shipped
            .packages
            .into_iter()
            .map(|p| p.tracking_number)
            .collect()
    };
    tx.commit().await?;
    println!(
        "order {} shipped (出荷済み) on {date} with tracking {}",
        a.amazon_order_id,
        tracking.join(", ")
    );
    Ok(())
}

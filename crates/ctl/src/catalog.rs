//! `ctl product` and `ctl rules`: the products orders reserve, and the delivery rules
//! (変換ロボット) that set an imported order's delivery method (first match wins).

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use domain::{Marketplace, delivery_rules::RuleConditions};
use rust_decimal::Decimal;
use serde_json::json;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum ProductCommand {
    /// Create a product (with zero stock; set it with `ctl stock set`).
    Add {
        /// Shop code (see `ctl shop list`).
        #[arg(long)]
        shop: String,
        /// Product code (unique per shop).
        code: String,
        /// Product name.
        name: String,
    },
    /// List products with their stock (on hand, reserved 確保数, allocated, free).
    List {
        /// Shop code (see `ctl shop list`).
        #[arg(long)]
        shop: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeliveryMethodCommand {
    /// Add a delivery method (配送方法), or change its name and external delivery method
    /// (外部連携先配送方法, which selects the Amazon carrier through `ctl carrier`).
    Add {
        /// Shop code (see `ctl shop list`).
        #[arg(long)]
        shop: String,
        /// Method code (unique per shop), e.g. yamato-takkyubin.
        #[arg(long)]
        code: String,
        /// Name sent to Amazon as ShippingMethod, e.g. ヤマト宅急便.
        #[arg(long)]
        name: String,
        /// External delivery method: the key of a carrier mapping (`ctl carrier list`), e.g. yamato.
        #[arg(long)]
        external: Option<String>,
    },
    /// List the shop's delivery methods with their external delivery method.
    List {
        /// Shop code (see `ctl shop list`).
        #[arg(long)]
        shop: String,
    },
}

pub async fn run_delivery_method(
    config: &Config,
    cmd: DeliveryMethodCommand,
    as_json: bool,
) -> anyhow::Result<()> {
    let pool = config.pool().await?;
    let mut tx = pool.begin().await?;
    match cmd {
        DeliveryMethodCommand::Add {
            shop,
            code,
            name,
            external,
        } => {
            anyhow::ensure!(!code.trim().is_empty(), "--code must not be empty");
            anyhow::ensure!(!name.trim().is_empty(), "--name must not be empty");
            let id = shop_id(&mut tx, &shop).await?;
            let external = external.as_deref().map(str::trim).filter(|e| !e.is_empty());
            if let Some(e) = external {
                let known = store::carriers::effective(&mut tx, id).await?;
                if !known
                    .iter()
                    .any(|m| m.external_delivery_method == store::carriers::normalize_key(e))
                {
                    bail!(
                        "external delivery method {e:?} has no carrier mapping: add one with `ctl carrier add` first (see `ctl carrier list --shop {shop}`)"
                    );
                }
            }
            let m = store::catalog::upsert_delivery_method(
                &mut tx,
                id,
                code.trim(),
                name.trim(),
                external,
            )
            .await?;
            tx.commit().await?;
            if as_json {
                println!(
                    "{}",
                    json!({"id": m.id, "code": m.code, "name": m.name, "external_delivery_method": m.external_delivery_method})
                );
            } else {
                println!("delivery method {} ({}) saved", m.code, m.name);
            }
        }
        DeliveryMethodCommand::List { shop } => {
            let id = shop_id(&mut tx, &shop).await?;
            let list = store::catalog::list_delivery_methods(&mut tx, id).await?;
            if as_json {
                let v: Vec<_> = list
                    .iter()
                    .map(|m| json!({"id": m.id, "code": m.code, "name": m.name, "external_delivery_method": m.external_delivery_method}))
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                println!("{:<24} {:<24} external", "code", "name");
                for m in list {
                    println!(
                        "{:<24} {:<24} {}",
                        m.code,
                        m.name,
                        m.external_delivery_method.unwrap_or_else(|| "-".into())
                    );
                }
            }
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Add a delivery rule: when every given condition holds, the order gets the delivery
    /// method. Rules are tried by position, lowest first; the first match wins.
    Add(RuleAddArgs),
    /// List the shop's rules in the order they are tried.
    List {
        /// Shop code (see `ctl shop list`).
        #[arg(long)]
        shop: String,
    },
    /// Remove the rule at a position.
    Remove {
        /// Shop code (see `ctl shop list`).
        #[arg(long)]
        shop: String,
        /// Position of the rule (the first column of `ctl rules list`).
        #[arg(long)]
        position: i32,
    },
    /// Show which rule an imported order matches (by Amazon order id), rule by rule.
    Test {
        /// Shop code (see `ctl shop list`).
        #[arg(long)]
        shop: String,
        /// Amazon order id of an imported instruction.
        amazon_order_id: String,
    },
}

#[derive(Debug, Args)]
pub struct RuleAddArgs {
    /// Shop code (see `ctl shop list`).
    #[arg(long)]
    pub shop: String,
    /// Position (unique per shop; lower is tried first).
    #[arg(long)]
    pub position: i32,
    /// Rule name, for operators.
    #[arg(long)]
    pub name: String,
    /// Delivery method code (created if it does not exist).
    #[arg(long)]
    pub method: String,
    /// Delivery method name, when the method is created (default: the code).
    #[arg(long)]
    pub method_name: Option<String>,
    /// Marketplace (JP, AU, SG); repeatable, any of them.
    #[arg(long = "marketplace")]
    pub marketplaces: Vec<Marketplace>,
    /// Amazon shipping service level (e.g. Expedited); repeatable, any of them.
    #[arg(long = "service-level")]
    pub service_levels: Vec<String>,
    /// Destination prefecture/state (e.g. 北海道); repeatable, any of them.
    #[arg(long = "state")]
    pub states: Vec<String>,
    /// Seller SKU; repeatable: the order contains any of them.
    #[arg(long = "sku")]
    pub skus: Vec<String>,
    /// Order total at least this amount.
    #[arg(long)]
    pub min_total: Option<Decimal>,
    /// Order total at most this amount.
    #[arg(long)]
    pub max_total: Option<Decimal>,
    /// Prime orders only (true) or non-Prime only (false).
    #[arg(long)]
    pub prime: Option<bool>,
    /// Orders whose buyer chose a delivery date and time slot (true) or did not (false).
    #[arg(long)]
    pub time_slot: Option<bool>,
}

async fn shop_id(conn: &mut sqlx::PgConnection, code: &str) -> anyhow::Result<uuid::Uuid> {
    Ok(store::shops::get_by_code(conn, code)
        .await
        .with_context(|| format!("unknown shop {code:?}: see `ctl shop list`"))?
        .shop
        .id)
}

pub async fn run_product(
    config: &Config,
    cmd: ProductCommand,
    as_json: bool,
) -> anyhow::Result<()> {
    let pool = config.pool().await?;
    let mut tx = pool.begin().await?;
    match cmd {
        ProductCommand::Add { shop, code, name } => {
            anyhow::ensure!(!code.trim().is_empty(), "product code must not be empty");
            let id = shop_id(&mut tx, &shop).await?;
            let p = store::catalog::insert_product(&mut tx, id, code.trim(), &name).await?;
            tx.commit().await?;
            if as_json {
                println!("{}", serde_json::to_string(&p)?);
            } else {
                println!("product {} created ({})", p.code, p.id);
            }
        }
        ProductCommand::List { shop } => {
            let id = shop_id(&mut tx, &shop).await?;
            let list = store::catalog::list_products(&mut tx, id).await?;
            if as_json {
                println!("{}", serde_json::to_string(&list)?);
            } else {
                println!(
                    "{:<16} {:>8} {:>8} {:>9} {:>8}  name",
                    "code", "on_hand", "reserved", "allocated", "free"
                );
                for p in list {
                    println!(
                        "{:<16} {:>8} {:>8} {:>9} {:>8}  {}",
                        p.code, p.on_hand, p.reserved, p.allocated, p.free, p.name
                    );
                }
            }
        }
    }
    Ok(())
}

pub async fn run_rules(config: &Config, cmd: RulesCommand, as_json: bool) -> anyhow::Result<()> {
    let pool = config.pool().await?;
    let mut tx = pool.begin().await?;
    match cmd {
        RulesCommand::Add(a) => {
            let conditions = RuleConditions {
                marketplaces: a.marketplaces,
                ship_service_levels: a.service_levels,
                states: a.states,
                skus: a.skus,
                min_total: a.min_total,
                max_total: a.max_total,
                prime: a.prime,
                time_slot: a.time_slot,
            };
            if let Some(why) = conditions.impossible() {
                bail!("{why} (--min-total, --max-total)");
            }
            let id = shop_id(&mut tx, &a.shop).await?;
            let method = match store::catalog::delivery_method_by_code(&mut tx, id, &a.method).await
            {
                Ok(m) => m,
                Err(store::StoreError::NotFound { .. }) => {
                    let name = a.method_name.clone().unwrap_or_else(|| a.method.clone());
                    store::catalog::upsert_delivery_method(&mut tx, id, &a.method, &name, None)
                        .await?
                }
                Err(e) => return Err(e.into()),
            };
            store::catalog::add_rule(&mut tx, id, a.position, &a.name, &conditions, method.id)
                .await
                .with_context(|| {
                    format!("rule at position {} (see `ctl rules list`)", a.position)
                })?;
            tx.commit().await?;
            if as_json {
                println!(
                    "{}",
                    json!({"position": a.position, "method": method.code, "conditions": conditions})
                );
            } else {
                println!(
                    "rule {} at position {} → {} when {}",
                    a.name,
                    a.position,
                    method.name,
                    serde_json::to_string(&conditions)?
                );
            }
        }
        RulesCommand::List { shop } => {
            let id = shop_id(&mut tx, &shop).await?;
            let rules = store::catalog::list_rules(&mut tx, id).await?;
            if as_json {
                println!("{}", serde_json::to_string(&rules)?);
            } else if rules.is_empty() {
                println!(
                    "no delivery rules: imported orders keep {}",
                    domain::PLACEHOLDER_DELIVERY_METHOD
                );
            } else {
                for r in rules {
                    println!(
                        "{:>5}  {:<20} → {:<20} {}{}",
                        r.position,
                        r.name,
                        r.delivery_method.name,
                        r.conditions,
                        if r.enabled { "" } else { "  (disabled)" }
                    );
                }
            }
        }
        RulesCommand::Remove { shop, position } => {
            let id = shop_id(&mut tx, &shop).await?;
            if !store::catalog::remove_rule(&mut tx, id, position).await? {
                bail!("shop {shop} has no rule at position {position} (see `ctl rules list`)");
            }
            tx.commit().await?;
            println!("rule at position {position} removed");
        }
        RulesCommand::Test {
            shop,
            amazon_order_id,
        } => {
            let id = shop_id(&mut tx, &shop).await?;
            // The prefecture / state is part of the sealed ship-to data.
            let keys = crypto::Keyring::from_env()
                .context("reading the keyring that opens the ship-to state")?;
            let trial = orders::try_rules(&mut tx, &keys, id, &amazon_order_id)
                .await
                .map_err(|e| match e {
                    orders::TrialError::NotImported(o) => {
                        anyhow::anyhow!("order {o} is not imported for shop {shop}")
                    }
                    other => other.into(),
                })?;
            let verdicts: Vec<_> = trial
                .verdicts
                .iter()
                .map(|(position, method, matches)| {
                    json!({"position": position, "method": method, "matches": matches})
                })
                .collect();
            if as_json {
                println!(
                    "{}",
                    json!({"order": amazon_order_id, "rules": verdicts, "winner": trial.winner})
                );
            } else {
                println!(
                    "order {amazon_order_id}: marketplace {}, service level {}, state {}, total {}, prime {}, time slot {}, SKUs {}",
                    trial.marketplace.code(),
                    trial.ship_service_level.as_deref().unwrap_or("-"),
                    // The prefecture is not personal on its own; the rest of the address is never shown.
                    trial.state.as_deref().unwrap_or("-"),
                    trial
                        .order_total
                        .map(|t| t.normalize().to_string())
                        .unwrap_or_else(|| "-".into()),
                    trial.prime,
                    trial.time_slot,
                    trial.skus.join(",")
                );
                for (position, method, matches) in &trial.verdicts {
                    println!(
                        "  {position:>5} {method:<20} {}",
                        if *matches { "matches" } else { "-" }
                    );
                }
                match &trial.winner {
                    Some(code) => println!("→ delivery method {code} (first match)"),
                    None => println!("→ no rule matches: {}", domain::PLACEHOLDER_DELIVERY_METHOD),
                }
            }
        }
    }
    Ok(())
}

//! `ctl import-order`: recover one Amazon order by id (getOrder), for the order an operator
//! knows is missing.

use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::config::Config;

#[derive(Debug, Args)]
pub struct ImportOrderArgs {
    /// Shop code.
    #[arg(long)]
    pub shop: String,
    /// Amazon order id (3-7-7, e.g. 503-1234567-1234567).
    pub amazon_order_id: String,
    /// Who is asking (recorded in the ledger).
    #[arg(long, env = "CTL_REQUESTED_BY", default_value = "ctl")]
    pub requested_by: String,
}

pub async fn run(config: &Config, a: ImportOrderArgs, as_json: bool) -> anyhow::Result<()> {
    anyhow::ensure!(
        domain::is_amazon_order_id(&a.amazon_order_id),
        "{:?} is not an Amazon order id (3-7-7 characters, e.g. 503-1234567-1234567)",
        a.amazon_order_id
    );
    let keys = crypto::Keyring::from_env()?;
    let pool = config.pool().await?;
    let shop = {
        let mut conn = pool.acquire().await?;
        store::shops::get_by_code(&mut conn, &a.shop)
            .await
            .with_context(|| format!("unknown shop {:?}: see `ctl shop list`", a.shop))?
    };
    let rate_scale = crate::config::spapi_rate_scale()?;
    // An operator can wait a few seconds for getOrder's quota (0.5/s, burst 30).
    let api = runtime::spapi_client(&pool, rate_scale, Duration::from_secs(10))?;
    let handle = {
        let mut conn = pool.acquire().await?;
        runtime::shop_api(&mut conn, &keys, &api, &shop.shop)
            .await
            .with_context(|| format!("the SP-API handle of shop {:?}", a.shop))?
    };
    let topology = bus::Topology::new(config.bus_prefix.clone(), bus::DEFAULT_DELIVERY_LIMIT);
    let r = orders::import_order(
        &pool,
        &keys,
        &handle,
        &topology.events_exchange(),
        shop.shop.id,
        &a.amazon_order_id,
        &a.requested_by,
    )
    .await
    .with_context(|| format!("order {} was not imported", a.amazon_order_id))?;
    if as_json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!("{}", r.message);
        if !r.unmapped_skus.is_empty() {
            println!(
                "unmapped SKUs (no stock reserved): {}; map them with `ctl external-product map`",
                r.unmapped_skus.join(", ")
            );
        }
    }
    if r.result == "refused" {
        anyhow::bail!("{}", r.message);
    }
    Ok(())
}

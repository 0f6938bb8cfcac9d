//! `ctl shop add|list|show|rotate-secret|promote-secret|reauthorize`.

use anyhow::Context;
use clap::{Args, Subcommand};
use domain::{
    Marketplace,
    shop::{FE_SP_API_ENDPOINT, LWA_ENDPOINT, ShipmentStrategy, ShopCode},
};
use secrecy::SecretString;
use serde_json::json;
use store::shops::{self, NewShop, ShopRecord};

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum ShopCommand {
    /// Register a shop. Secrets are read from the environment (LWA_CLIENT_SECRET,
    /// LWA_REFRESH_TOKEN), never from arguments, checked with one LWA token request and stored
    /// encrypted.
    #[command(
        override_usage = "LWA_CLIENT_ID=<id> LWA_CLIENT_SECRET=<secret> LWA_REFRESH_TOKEN=<token> \\\n           \
                          ctl shop add --code <CODE> --name <NAME> --seller-id <SELLER_ID> --marketplace <MARKETPLACE>",
        after_help = "Environment (read, never printed):\n  \
                      LWA_CLIENT_ID       the app's LWA client id (or --client-id)\n  \
                      LWA_CLIENT_SECRET   the app's LWA client secret (required)\n  \
                      LWA_REFRESH_TOKEN   the seller's LWA refresh token (required)\n  \
                      CONNECTOR_ENCRYPTION_KEYS  the keys that encrypt them at rest (required)\n\n\
                      Before saving, one LWA token request checks the three; when LWA refuses them \
                      nothing is saved. --skip-credential-check registers without it (offline)."
    )]
    Add(AddArgs),
    /// List shops (never prints secrets).
    List,
    /// Show one shop (never prints secrets).
    Show {
        /// Shop code.
        code: String,
    },
    /// Stage a new LWA client secret (read from LWA_CLIENT_SECRET) next to the current one.
    ///
    /// During Amazon's rotation overlap both secrets are valid. The services keep using the
    /// current secret until `ctl shop promote-secret`, which you run before Amazon retires it.
    #[command(
        override_usage = "LWA_CLIENT_SECRET=<new secret> ctl shop rotate-secret --shop <SHOP>",
        after_help = "Environment: LWA_CLIENT_SECRET (required): the new client secret."
    )]
    RotateSecret(ShopArg),
    /// Make the staged client secret (see `rotate-secret`) the only one.
    PromoteSecret(ShopArg),
    /// Store a new refresh token (read from LWA_REFRESH_TOKEN) after the seller re-authorized
    /// the app, and clear the shop's "needs re-authorization" flag.
    #[command(
        override_usage = "LWA_REFRESH_TOKEN=<new token> ctl shop reauthorize --shop <SHOP>",
        after_help = "Environment: LWA_REFRESH_TOKEN (required): the seller's new refresh token."
    )]
    Reauthorize(ShopArg),
    /// Change a shop's options.
    Set(SetArgs),
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// Shop code (see `ctl shop list`).
    #[arg(long)]
    pub shop: String,
    /// For SKUs without 出荷作業日数: `true` leaves Amazon's handling time as it is; `false`
    /// (the default, the seed's rule) sets it back to Amazon's default at the next push.
    #[arg(long, action = clap::ArgAction::Set, required_unless_present = "send_every_package")]
    pub keep_amazon_handling_time: Option<bool>,
    /// `true`: shipment-feedback sends every package the warehouse recorded (`ctl ship
    /// --package`), each with its carrier, tracking number and items; `false` (the default, the
    /// seed's rule): only the first tracking number.
    #[arg(long, action = clap::ArgAction::Set)]
    pub send_every_package: Option<bool>,
}

#[derive(Debug, Args)]
pub struct ShopArg {
    /// Shop code (see `ctl shop list`).
    #[arg(long)]
    pub shop: String,
}

/// The variables the secrets are read from (never from arguments: they would land in the shell
/// history and the process list).
pub const CLIENT_SECRET_VAR: &str = "LWA_CLIENT_SECRET";
/// See [`CLIENT_SECRET_VAR`].
pub const REFRESH_TOKEN_VAR: &str = "LWA_REFRESH_TOKEN";

/// A secret from the environment: present and not blank.
fn env_secret(var: &str) -> anyhow::Result<SecretString> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Ok(SecretString::from(v.trim().to_owned())),
        _ => anyhow::bail!(
            "{var} is not set (or blank): put the value in the environment (e.g. `read -rs {var}; export {var}`), \
             never on the command line"
        ),
    }
}

async fn shop_by_code(conn: &mut sqlx::PgConnection, code: &str) -> anyhow::Result<ShopRecord> {
    shops::get_by_code(conn, code)
        .await
        .with_context(|| format!("unknown shop {code:?}: see `ctl shop list`"))
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Short code, e.g. acme-jp (a-z, 0-9, '-', '_').
    #[arg(long)]
    pub code: ShopCode,
    /// Display name.
    #[arg(long)]
    pub name: String,
    /// Amazon seller (merchant) id.
    #[arg(long)]
    pub seller_id: String,
    /// Marketplaces, comma-separated: JP, AU, SG.
    #[arg(long, value_delimiter = ',', required = true)]
    pub marketplace: Vec<Marketplace>,
    /// IANA time zone for "today" (default: the first marketplace's).
    #[arg(long)]
    pub time_zone: Option<chrono_tz::Tz>,
    /// SP-API endpoint (default: Far East production).
    #[arg(long, default_value = FE_SP_API_ENDPOINT)]
    pub sp_api_endpoint: String,
    /// LWA token endpoint.
    #[arg(long, default_value = LWA_ENDPOINT)]
    pub lwa_endpoint: String,
    /// How shipments are reported: feed or confirm-shipment.
    #[arg(long, default_value = "feed")]
    pub shipment_strategy: ShipmentStrategy,
    /// LWA client id (amzn1.application-oa2-client...); not a secret.
    #[arg(long, env = "LWA_CLIENT_ID")]
    pub client_id: String,
    /// Save without asking LWA whether the credentials work (offline registration); the first
    /// run then finds out.
    #[arg(long)]
    pub skip_credential_check: bool,
}

pub async fn run(config: &Config, cmd: ShopCommand, json_out: bool) -> anyhow::Result<()> {
    let pool = config.pool().await?;
    let mut conn = pool.acquire().await?;
    match cmd {
        ShopCommand::Add(a) => {
            let client_secret = env_secret(CLIENT_SECRET_VAR)?;
            let refresh_token = env_secret(REFRESH_TOKEN_VAR)?;
            let keys = crypto::Keyring::from_env()?;
            for (name, url) in [
                ("--sp-api-endpoint", &a.sp_api_endpoint),
                ("--lwa-endpoint", &a.lwa_endpoint),
            ] {
                anyhow::ensure!(
                    url.starts_with("https://")
                        || url.starts_with("http://127.")
                        || url.starts_with("http://localhost"),
                    "{name} {url:?} must be an https:// URL (plain http only for a local simulator)"
                );
            }
            let new = NewShop {
                time_zone: a.time_zone.unwrap_or_else(|| a.marketplace[0].time_zone()),
                code: a.code,
                name: a.name,
                seller_id: a.seller_id,
                marketplaces: a.marketplace,
                sp_api_endpoint: a.sp_api_endpoint.trim_end_matches('/').to_owned(),
                lwa_endpoint: a.lwa_endpoint,
                shipment_strategy: a.shipment_strategy,
                client_id: a.client_id,
                client_secret,
                refresh_token,
            };
            if a.skip_credential_check {
                eprintln!(
                    "credentials not checked (--skip-credential-check): the first run will tell"
                );
            } else {
                crate::lwa_check::check(&pool, &new).await?;
            }
            let rec = shops::insert(&mut conn, &keys, &new)
                .await
                .context("cannot add the shop")?;
            print_shop(&rec, json_out);
            if !json_out {
                println!(
                    "{:<18} every action on its default cadence, from the next slot (`ctl schedule list --shop {}`)",
                    "schedule", rec.shop.code
                );
            }
        }
        ShopCommand::List => {
            let all = shops::list(&mut conn).await?;
            if json_out {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&all.iter().map(shop_json).collect::<Vec<_>>())?
                );
            } else if all.is_empty() {
                println!("no shops yet: add one with `ctl shop add`");
            } else {
                println!(
                    "{:<16} {:<24} {:<10} {:<18} {:<10} AUTH",
                    "CODE", "NAME", "MARKETS", "TIME ZONE", "SHIPMENT"
                );
                for r in &all {
                    let s = &r.shop;
                    let m: Vec<_> = s.marketplaces.iter().map(|m| m.code()).collect();
                    println!(
                        "{:<16} {:<24} {:<10} {:<18} {:<10} {}",
                        s.code,
                        s.name,
                        m.join(","),
                        s.time_zone.name(),
                        s.shipment_strategy.as_str(),
                        r.auth_status
                    );
                }
            }
        }
        ShopCommand::Show { code } => {
            let rec = shop_by_code(&mut conn, &code).await?;
            print_shop(&rec, json_out);
        }
        ShopCommand::RotateSecret(a) => {
            let secret = env_secret(CLIENT_SECRET_VAR)?;
            let keys = crypto::Keyring::from_env()?;
            let rec = shop_by_code(&mut conn, &a.shop).await?;
            shops::stage_client_secret(&mut conn, &keys, rec.shop.id, &secret)
                .await
                .context("cannot stage the client secret")?;
            done(
                json_out,
                json!({"shop": a.shop, "client_secret": "staged"}),
                &format!(
                    "shop {}: new client secret staged next to the current one; the services use the current one until \
                     `ctl shop promote-secret --shop {}`",
                    a.shop, a.shop
                ),
            );
        }
        ShopCommand::PromoteSecret(a) => {
            let keys = crypto::Keyring::from_env()?;
            let rec = shop_by_code(&mut conn, &a.shop).await?;
            let mut tx = pool.begin().await?;
            match shops::promote_client_secret(&mut tx, &keys, rec.shop.id).await {
                Ok(()) => {}
                Err(store::StoreError::NotFound { .. }) => anyhow::bail!(
                    "shop {} has no staged client secret: stage one first with \
                     `LWA_CLIENT_SECRET=... ctl shop rotate-secret --shop {}`",
                    a.shop,
                    a.shop
                ),
                Err(e) => return Err(e).context("cannot promote the client secret"),
            }
            tx.commit().await?;
            done(
                json_out,
                json!({"shop": a.shop, "client_secret": "promoted"}),
                &format!(
                    "shop {}: the staged client secret is now the only one",
                    a.shop
                ),
            );
        }
        ShopCommand::Reauthorize(a) => {
            let token = env_secret(REFRESH_TOKEN_VAR)?;
            let keys = crypto::Keyring::from_env()?;
            let rec = shop_by_code(&mut conn, &a.shop).await?;
            shops::set_refresh_token(&mut conn, &keys, rec.shop.id, &token)
                .await
                .context("cannot store the refresh token")?;
            done(
                json_out,
                json!({"shop": a.shop, "refresh_token": "replaced", "auth_status": "ok"}),
                &format!(
                    "shop {}: new refresh token stored; re-authorization flag cleared",
                    a.shop
                ),
            );
        }
        ShopCommand::Set(a) => {
            let rec = shop_by_code(&mut conn, &a.shop).await?;
            let mut said = Vec::new();
            if let Some(keep) = a.keep_amazon_handling_time {
                shops::set_keep_amazon_handling_time(&mut conn, rec.shop.id, keep).await?;
                said.push(if keep {
                    "SKUs without handling days keep Amazon's handling time"
                } else {
                    "SKUs without handling days get Amazon's default handling time at the next push"
                });
            }
            if let Some(every) = a.send_every_package {
                store::packages::set_send_every_package(&mut conn, rec.shop.id, every).await?;
                said.push(if every {
                    "every package is sent to Amazon with its carrier, tracking number and items"
                } else {
                    "only the first tracking number is sent to Amazon (the seed's rule)"
                });
            }
            done(
                json_out,
                json!({
                    "shop": a.shop,
                    "keep_amazon_handling_time": a.keep_amazon_handling_time,
                    "send_every_package": a.send_every_package,
                }),
                &format!("shop {}: {}", a.shop, said.join("; ")),
            );
        }
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

fn shop_json(r: &ShopRecord) -> serde_json::Value {
    let s = &r.shop;
    json!({
        "id": s.id,
        "code": s.code,
        "name": s.name,
        "seller_id": s.seller_id,
        "marketplaces": s.marketplaces,
        "time_zone": s.time_zone.name(),
        "sp_api_endpoint": s.sp_api_endpoint,
        "lwa_endpoint": s.lwa_endpoint,
        "shipment_strategy": s.shipment_strategy,
        "lwa_client_id": r.lwa_client_id,
        "auth_status": r.auth_status,
        "auth_error": r.auth_error,
        "active": r.active,
        "created_at": r.created_at,
    })
}

fn print_shop(r: &ShopRecord, json_out: bool) {
    let v = shop_json(r);
    if json_out {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return;
    }
    if let serde_json::Value::Object(map) = v {
        for (k, v) in map {
            let shown = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            println!("{k:<18} {shown}");
        }
        println!("{:<18} (stored encrypted, never shown)", "credentials");
    }
}

//! Command-line grammar and dispatch.

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::{config::Config, shop, trigger};

#[derive(Debug, Parser)]
#[command(
    name = "ctl",
    version,
    about = "Operate the Amazon connector: database, shops, triggers and schedules, runs, API log, dead letters",
    long_about = "Operate the Amazon connector: database, shops and credentials, catalog and stock, \
triggers and their schedules (自動実行), Amazon's notification subscriptions, the run ledger, the API log (APIログ) \
and dead-lettered messages.\n\n\
Connects with DATABASE_URL and AMQP_URL (BUS_PREFIX prefixes queue names). Secrets are read \
from the environment, never from arguments, and never printed. Every listing accepts --json."
)]
pub struct Cli {
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the database if needed and apply every migration.
    Migrate,
    /// Shops (one Amazon seller account each) and their credentials.
    #[command(subcommand)]
    Shop(shop::ShopCommand),
    /// Publish a command that triggers an action for a shop.
    Trigger(trigger::TriggerArgs),
    /// 自動実行: when each action runs for each shop (cron expressions in the shop's time zone).
    #[command(subcommand)]
    Schedule(crate::schedule::ScheduleCommand),
    /// The scheduler: `tick` publishes a trigger for every due schedule entry (run it every minute).
    #[command(subcommand)]
    Scheduler(crate::schedule::SchedulerCommand),
    /// Encryption keys for credentials at rest.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Stock of products (a count or an adjustment); pushed by the next inventory-sync run.
    #[command(subcommand)]
    Stock(crate::inventory::StockCommand),
    /// The external-product mapping table (Amazon SKU → product, handling time).
    #[command(subcommand)]
    ExternalProduct(crate::inventory::ExternalProductCommand),
    #[command(flatten)]
    Shipping(crate::shipping::ShippingCommand),
    /// Products (the WMS side of the external-product mapping).
    #[command(subcommand)]
    Product(crate::catalog::ProductCommand),
    /// Delivery rules (変換ロボット): the first matching rule sets an imported order's delivery method.
    #[command(subcommand)]
    Rules(crate::catalog::RulesCommand),
    /// Delivery methods (配送方法) and the external delivery method that selects Amazon's carrier.
    #[command(subcommand)]
    DeliveryMethod(crate::catalog::DeliveryMethodCommand),
    /// Import one Amazon order by id (getOrder), for an order known to be missing.
    ImportOrder(crate::ingest::ImportOrderArgs),
    /// The run ledger: what each action did (status, counts, Amazon calls, errors).
    Runs(crate::ledger::RunsArgs),
    /// The API log (APIログ): filter by shop, action, level, order or SKU; --follow to tail it.
    Log(crate::ledger::LogArgs),
    /// Dead-lettered messages of a service: list them, or replay them after fixing the cause.
    #[command(subcommand)]
    Dlq(crate::dlq::DlqCommand),
    /// Buyer and ship-to data (PII) retention.
    #[command(subcommand)]
    Pii(crate::pii::PiiCommand),
    /// Amazon's notifications (ORDER_CHANGE, FEED_PROCESSING_FINISHED to SQS): subscribe a shop,
    /// unsubscribe it, show its subscriptions and what was received.
    #[command(subcommand)]
    Notifications(crate::notifications::NotificationsCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a new random key in CONNECTOR_ENCRYPTION_KEYS format.
    Generate {
        /// Key version (1-255); append the output to CONNECTOR_ENCRYPTION_KEYS after the old keys.
        #[arg(long, default_value_t = 1)]
        version: u8,
    },
    /// Re-encrypt every stored secret with the current (last) key.
    Rotate,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Keys(KeysCommand::Generate { version }) => {
            anyhow::ensure!(version > 0, "--version must be from 1 to 255");
            println!("{}", crypto::Keyring::generate_key(version));
            Ok(())
        }
        command => {
            let config = Config::from_env()?;
            match command {
                Command::Migrate => migrate(&config).await,
                Command::Shop(c) => shop::run(&config, c, cli.json).await,
                Command::Trigger(t) => trigger::run(&config, t, cli.json).await,
                Command::Schedule(c) => crate::schedule::run(&config, c, cli.json).await,
                Command::Scheduler(c) => crate::schedule::tick(&config, c, cli.json).await,
                Command::Stock(c) => crate::inventory::run_stock(&config, c, cli.json).await,
                Command::ExternalProduct(c) => {
                    crate::inventory::run_external_product(&config, c, cli.json).await
                }
                Command::Shipping(c) => crate::shipping::run(&config, c, cli.json).await,
                Command::Product(c) => crate::catalog::run_product(&config, c, cli.json).await,
                Command::Rules(c) => crate::catalog::run_rules(&config, c, cli.json).await,
                Command::DeliveryMethod(c) => {
                    crate::catalog::run_delivery_method(&config, c, cli.json).await
                }
                Command::ImportOrder(a) => crate::ingest::run(&config, a, cli.json).await,
                Command::Pii(c) => crate::pii::run(&config, c, cli.json).await,
                Command::Notifications(c) => crate::notifications::run(&config, c, cli.json).await,
                Command::Runs(a) => crate::ledger::run_runs(&config, a, cli.json).await,
                Command::Log(a) => crate::ledger::run_log(&config, a, cli.json).await,
                Command::Dlq(c) => crate::dlq::run(&config, c, cli.json).await,
                Command::Keys(KeysCommand::Rotate) => {
                    let keys = crypto::Keyring::from_env()?;
                    let pool = config.pool().await?;
                    let mut tx = pool.begin().await?;
                    let n = store::shops::rotate_keys(&mut tx, &keys).await?;
                    tx.commit().await?;
                    // Buyer and ship-to data, in batches of 1,000 (one transaction each).
                    let mut sealed = 0;
                    loop {
                        let mut tx = pool.begin().await?;
                        let done = store::pii::reseal(&mut tx, &keys, 1000).await?;
                        tx.commit().await?;
                        sealed += done;
                        if done == 0 {
                            break;
                        }
                    }
                    if cli.json {
                        println!(
                            "{}",
                            serde_json::json!({"shops": n, "instructions": sealed, "key_version": keys.current_version()})
                        );
                    } else {
                        println!(
                            "re-encrypted the credentials of {n} shop(s) and the buyer and ship-to data of {sealed} instruction(s) with key version {}",
                            keys.current_version()
                        );
                    }
                    Ok(())
                }
                Command::Keys(KeysCommand::Generate { .. }) => unreachable!("handled above"),
            }
        }
    }
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    store::ensure_database(&config.database_url)
        .await
        .context("cannot create the database")?;
    let pool = config.pool().await?;
    store::MIGRATOR
        .run(&pool)
        .await
        .context("migration failed")?;
    println!(
        "database migrated ({} migrations)",
        store::MIGRATOR.iter().count()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }

    /// `--help` everywhere: every command and every visible argument says what it is.
    #[test]
    fn every_command_and_argument_is_documented() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            if cmd.get_about().is_none() && !path.is_empty() {
                missing.push(format!("command `{path}`"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("`{path}` argument {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() == "help" {
                    continue;
                }
                walk(sub, format!("{path} {}", sub.get_name()).trim(), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "undocumented: {missing:#?}");
    }
}

//! `ctl pii purge`: the scheduled PII purge (buyer and ship-to data 30 days after shipment).

use clap::Subcommand;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum PiiCommand {
    /// Null buyer and ship-to data of instructions shipped (or canceled) more than N days ago.
    Purge {
        /// Retention in days after shipment (Amazon's DPP: at most 30).
        #[arg(long, default_value_t = store::pii::RETENTION_DAYS)]
        older_than_days: i64,
    },
}

pub async fn run(config: &Config, command: PiiCommand, json_out: bool) -> anyhow::Result<()> {
    match command {
        PiiCommand::Purge { older_than_days } => {
            anyhow::ensure!(
                (0..=3650).contains(&older_than_days),
                "--older-than-days must be from 0 to 3650"
            );
            let pool = config.pool().await?;
            let mut conn = pool.acquire().await?;
            let n = store::pii::purge(
                &mut conn,
                chrono::Duration::days(older_than_days),
                chrono::Utc::now(),
            )
            .await?;
            if json_out {
                println!(
                    "{}",
                    serde_json::json!({ "purged": n, "older_than_days": older_than_days })
                );
            } else {
                println!(
                    "purged buyer and ship-to data of {n} instruction(s) shipped or canceled more than {older_than_days} days ago"
                );
            }
            Ok(())
        }
    }
}

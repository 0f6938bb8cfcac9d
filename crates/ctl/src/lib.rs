//! `ctl`: the operator's command line.

use std::process::ExitCode;

use clap::Parser;

mod catalog;
mod cli;
mod config;
mod dlq;
mod ingest;
mod inventory;
mod ledger;
mod lwa_check;
mod notifications;
mod pii;
mod schedule;
mod shipping;
mod shop;
mod trigger;

/// The `ctl` program: parses the command line and runs it. The `ctl` binary and the image's
/// multi-call `connector` binary both run this.
pub async fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

//! The `spapi-sim` program: `spapi-sim --listen 127.0.0.1:8700 [--seed N] [--orders N] [--rate-scale X | --unlimited] [--sqs-endpoint URL]`

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::SimConfig;
use clap::Parser;

/// Amazon SP-API simulator (LWA, Orders, Feeds, Listings) with a /_sim/ control API.
#[derive(Debug, Parser)]
#[command(name = "spapi-sim", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8700", env = "SPAPI_SIM_LISTEN")]
    listen: SocketAddr,
    /// Seed for generated data and fault probabilities.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Orders to pre-create for the default seller (mixed PENDING/UNSHIPPED, JP/AU/SG).
    #[arg(long, default_value_t = 0)]
    orders: usize,
    /// Speed-up of simulated time for rate limits and token lifetimes.
    #[arg(long, default_value_t = 1.0, conflicts_with = "unlimited")]
    rate_scale: f64,
    /// Disable rate limiting (benchmarks).
    #[arg(long)]
    unlimited: bool,
    /// Feed processing time in milliseconds (IN_QUEUE → DONE).
    #[arg(long, default_value_t = 3000)]
    feed_processing_ms: u64,
    /// SQS-compatible endpoint for notifications (e.g. moto: `moto_server -p 4566`).
    #[arg(long, env = "SQS_ENDPOINT", default_value = crate::config::DEFAULT_SQS_ENDPOINT)]
    sqs_endpoint: String,
}

/// `spapi-sim`: parses the command line, serves until Ctrl-C or SIGTERM. The `spapi-sim`
/// binary and the image's multi-call `connector` binary both run this.
pub async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    if !(args.rate_scale > 0.0 && args.rate_scale.is_finite()) {
        anyhow::bail!("--rate-scale must be a positive number");
    }
    let config = SimConfig {
        seed: args.seed,
        orders: args.orders,
        rate_scale: args.rate_scale,
        unlimited: args.unlimited,
        feed_processing: Duration::from_millis(args.feed_processing_ms),
        sqs_endpoint: args.sqs_endpoint,
        ..SimConfig::default()
    };
    let running = crate::server::spawn_on(config, args.listen).await?;
    println!("spapi-sim listening on {}", running.base_url());
    // Ctrl-C, or SIGTERM from a container runtime.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    running.shutdown().await;
    Ok(())
}

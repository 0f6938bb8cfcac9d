//! `spapi-sim --listen 127.0.0.1:8700 [--seed N] [--orders N] [--rate-scale X | --unlimited]`
//! (see `spapi_sim::cli`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    spapi_sim::cli::main().await
}

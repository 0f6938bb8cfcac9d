//! `console serve | user add` (see `console::cli`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    console::cli::main().await
}

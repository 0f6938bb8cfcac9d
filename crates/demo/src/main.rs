//! `cargo run --release -p demo`: the whole mission on one machine (see the library: `demo::main`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    demo::main().await
}

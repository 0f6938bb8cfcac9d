//! `cargo run --release -p demo` (or, as the README has it, `cargo run --release -p connector --
//! demo`): the whole mission on one machine (see the library: `demo::main`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    demo::main().await
}

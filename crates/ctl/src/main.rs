//! `ctl`: the operator's command line (see the library: `ctl::main`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ctl::main().await
}

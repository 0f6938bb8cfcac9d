//! `console serve` runs the operator web console; `console user add` creates or updates an
//! operator (password from `CONSOLE_PASSWORD`, never an argument).

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "console",
    about = "Operator web console for the Amazon connector"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the console (env: DATABASE_URL, CONSOLE_ADDR=127.0.0.1:8080, BUS_PREFIX, CONSOLE_TZ,
    /// AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f for the dead-letters page).
    Serve,
    /// Operators.
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Create an operator, or update the password, name, shops and role of an existing one
    /// (the command sets the whole account: what it does not name is taken away).
    /// The password is read from CONSOLE_PASSWORD.
    Add {
        #[arg(long)]
        username: String,
        /// Shop codes the operator sees, comma-separated (e.g. acme-jp,acme-au).
        #[arg(long, value_delimiter = ',')]
        shops: Vec<String>,
        /// Name shown in the console (default: the username).
        #[arg(long)]
        display_name: Option<String>,
        /// Make the operator a console administrator: also sees and replays the dead-letter
        /// queues (デッドレター), which are per service and so hold every shop's messages.
        /// Without it the operator is (or becomes again) a regular operator.
        #[arg(long)]
        admin: bool,
    },
}

/// The `console` program: parses the command line and runs it. The `console` binary and the
/// image's multi-call `connector` binary both run this.
pub async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _guard = telemetry::init("console")?;
    let config = crate::Config::from_env()?;
    let pool = store::connect(&config.database_url, 8)
        .await
        .context("connecting to PostgreSQL (DATABASE_URL)")?;
    match cli.cmd {
        Cmd::Serve => {
            let listener = tokio::net::TcpListener::bind(config.addr)
                .await
                .with_context(|| format!("binding CONSOLE_ADDR={}", config.addr))?;
            tracing::info!(addr = %listener.local_addr()?, "console listening");
            let keys = crypto::Keyring::from_env()
                .context("reading the keyring that opens buyer and ship-to data")?;
            let mut state = crate::AppState::new(pool, config.bus_prefix.clone(), keys);
            state.amqp_url = config.amqp_url.clone();
            state.tz = config.tz;
            state.secure_cookies = config.secure_cookies;
            state.trust_forwarded_for = config.trust_forwarded_for;
            crate::serve(listener, state, shutdown()).await?;
        }
        Cmd::User {
            cmd:
                UserCmd::Add {
                    username,
                    shops,
                    display_name,
                    admin,
                },
        } => {
            let password = std::env::var("CONSOLE_PASSWORD")
                .context("set CONSOLE_PASSWORD to the new operator's password")?;
            let shops: Vec<String> = shops
                .into_iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            crate::auth::upsert_operator(
                &pool,
                &username,
                display_name.as_deref(),
                &password,
                &shops,
                Some(admin),
            )
            .await?;
            println!(
                "operator {username} can sign in; shops: {}{}",
                shops.join(", "),
                if admin {
                    "; administrator (dead letters)"
                } else {
                    ""
                }
            );
        }
    }
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("console shutting down");
}

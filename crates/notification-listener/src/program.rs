//! The program: configuration from the environment, the outbox relay, the listener until
//! SIGTERM.

use anyhow::Context;
use tokio_util::sync::CancellationToken;

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The environment the listener reads (`notification-listener --help`).
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "SQS_QUEUE_URL",
        "the SQS queue of the shops' notification destination (required)",
    ),
    (
        "SQS_DEAD_LETTER_QUEUE_URL",
        "where unreadable notifications go, with the reason",
    ),
    (
        "SQS_ENDPOINT",
        "an SQS-compatible server such as moto (unset: AWS)",
    ),
    ("AWS_REGION", "the queue's region (default us-east-1)"),
    ("AWS_ACCESS_KEY_ID", "required with AWS"),
    ("AWS_SECRET_ACCESS_KEY", "required with AWS"),
    ("SQS_WAIT_SECONDS", "long-poll wait, 0-20 (default 20)"),
    (
        "SQS_VISIBILITY_SECONDS",
        "how long a received notification stays hidden before SQS delivers it again, 1-43200 (default 60)",
    ),
    (
        "ADMIN_ADDR",
        "where /livez, /readyz and /metrics listen, host:port (default 127.0.0.1:0, a free port)",
    ),
    ("DATABASE_URL", "PostgreSQL"),
    ("AMQP_URL", "RabbitMQ (the outbox relay)"),
    ("BUS_PREFIX", "prefix of exchange and queue names"),
    ("LOG_FORMAT", "json or text"),
    (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTLP/HTTP collector for traces (unset or empty: off)",
    ),
    ("RUST_LOG", "log filter"),
];

/// The `notification-listener` program: `--help` lists the environment; otherwise it listens
/// until SIGTERM. Its binary and the image's multi-call `connector` binary both run this.
pub async fn main_from_env() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("--help" | "-h") => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "notification-listener: Amazon's notifications from SQS into status-sync and feed-poller work.\nusage: notification-listener (configured by the environment only)\n\nenvironment:"
            );
            for (name, what) in ENVIRONMENT {
                let _ = writeln!(out, "  {name:<32} {what}");
            }
            return Ok(());
        }
        Some(other) => anyhow::bail!(
            "unexpected argument {other:?}: the listener takes no arguments (its configuration is the environment); see notification-listener --help"
        ),
    }
    let _guard = telemetry::init("notification-listener")?;
    let queue_url = var("SQS_QUEUE_URL").context(
        "SQS_QUEUE_URL is not set: the URL of the SQS queue of the shops' notification destination, e.g. https://sqs.us-west-2.amazonaws.com/123456789012/connector-notifications",
    )?;
    let endpoint = var("SQS_ENDPOINT");
    let (key, secret) = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(k), Some(s)) => (k, s),
        // An SQS-compatible test server (moto) takes any credentials.
        _ if endpoint.is_some() => ("test".to_owned(), "test".to_owned()),
        _ => anyhow::bail!(
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are required to read {queue_url} (or set SQS_ENDPOINT for an SQS-compatible server)"
        ),
    };
    let wait: i32 = match var("SQS_WAIT_SECONDS") {
        None => 20,
        Some(v) => v
            .parse()
            .ok()
            .filter(|w| (0..=20).contains(w))
            .with_context(|| format!("SQS_WAIT_SECONDS={v:?} is not valid: expected 0 to 20"))?,
    };
    let visibility: i32 = match var("SQS_VISIBILITY_SECONDS") {
        None => 60,
        Some(v) => v
            .parse()
            .ok()
            .filter(|w| (1..=43_200).contains(w))
            .with_context(|| {
                format!("SQS_VISIBILITY_SECONDS={v:?} is not valid: expected 1 to 43200 (seconds)")
            })?,
    };
    let hold_after_commit = match var(crate::FAIL_POINT_ENV).as_deref() {
        None => false,
        Some(crate::HOLD_AFTER_COMMIT) => true,
        Some(other) => anyhow::bail!(
            "{}={other:?} is not a fail point: the only one is {:?} (tests)",
            crate::FAIL_POINT_ENV,
            crate::HOLD_AFTER_COMMIT
        ),
    };
    let admin_addr: std::net::SocketAddr = match var("ADMIN_ADDR") {
        None => std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        Some(v) => v.parse().with_context(|| {
            format!("ADMIN_ADDR={v:?} is not valid: expected host:port, e.g. 0.0.0.0:9000")
        })?,
    };
    let region = var("AWS_REGION").unwrap_or_else(|| "us-east-1".to_owned());
    let database_url =
        var("DATABASE_URL").unwrap_or_else(|| store::DEFAULT_DATABASE_URL.to_owned());
    let amqp_url = var("AMQP_URL").unwrap_or_else(|| bus::DEFAULT_AMQP_URL.to_owned());
    let topology = bus::Topology::new(
        var("BUS_PREFIX").unwrap_or_default(),
        bus::DEFAULT_DELIVERY_LIMIT,
    );

    let pool = store::connect(&database_url, 4)
        .await
        .context("cannot connect to PostgreSQL (DATABASE_URL)")?;
    let amqp = bus::connect(&amqp_url, "notification-listener")
        .await
        .context("cannot connect to RabbitMQ (AMQP_URL)")?;
    let publisher = bus::Publisher::new(amqp.clone()).await?;
    let cancel = CancellationToken::new();
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            bus::shutdown_signal().await;
            tracing::info!("shutdown requested: finishing the notifications in hand");
            cancel.cancel();
        });
    }
    // The commands it writes are published by its own relay (and by any service's).
    let relay = bus::Relay::new(pool.clone(), publisher);
    let relay_task = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if let Err(e) = relay.run(cancel).await {
                tracing::error!(error = %e, "outbox relay stopped");
            }
        })
    };
    let listener = crate::Listener::new(
        pool.clone(),
        crate::sqs_client(&region, endpoint.as_deref(), &key, &secret),
        topology,
        crate::Settings {
            queue_url,
            dead_letter_queue_url: var("SQS_DEAD_LETTER_QUEUE_URL"),
            wait_seconds: wait,
            max_messages: 10,
            visibility_timeout: visibility,
        },
    );
    let listener = if hold_after_commit {
        listener.hold_after_commit()
    } else {
        listener
    };
    let admin = std::sync::Arc::new(crate::admin::Admin {
        stats: listener.stats(),
        pool: pool.clone(),
        amqp: amqp.clone(),
    });
    let admin_listener = tokio::net::TcpListener::bind(admin_addr)
        .await
        .with_context(|| format!("cannot listen on ADMIN_ADDR {admin_addr}"))?;
    tracing::info!(admin = %admin_listener.local_addr()?, "listening for notifications");
    let admin_task = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let _ = axum::serve(admin_listener, crate::admin::router(admin))
                .with_graceful_shutdown(cancel.cancelled_owned())
                .await;
        })
    };
    listener.run(cancel).await;
    let _ = relay_task.await;
    let _ = admin_task.await;
    let _ = bus::close(&amqp).await;
    tracing::info!("stopped");
    Ok(())
}

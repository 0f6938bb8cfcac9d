//! `ctl dlq list|replay`: dead-lettered messages of a service.
//!
//! Messages carry ids and parameters only (never buyer data), so the listing shows the message
//! id, why it was dead-lettered, its original routing key and the (truncated) body.

use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use domain::messages::Action;
use serde_json::json;

use crate::config::Config;

/// Characters of the body shown by `dlq list`.
const PAYLOAD_CHARS: usize = 160;

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Show dead-lettered messages of a service without removing them.
    #[command(visible_alias = "peek")]
    List {
        /// The service: order-ingest, status-sync, shipment-feedback, inventory-sync or feed-poller.
        service: Action,
        /// How many messages at most (1-10000).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
    },
    /// Send dead-lettered messages back to the service's work queue (fix the cause first: a
    /// message that fails again is dead-lettered again). The inbox ignores duplicates.
    Replay {
        /// The service: order-ingest, status-sync, shipment-feedback, inventory-sync or feed-poller.
        service: Action,
        /// How many messages at most (1-100000).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        limit: u32,
    },
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

fn payload_text(m: &bus::DlqMessage) -> String {
    match m.payload_json() {
        Some(v) => v.to_string(),
        None => format!("<{} bytes, not JSON>", m.payload.len()),
    }
}

pub async fn run(config: &Config, cmd: DlqCommand, json_out: bool) -> anyhow::Result<()> {
    let conn = tokio::time::timeout(
        Duration::from_secs(10),
        bus::connect(&config.amqp_url, "ctl"),
    )
    .await
    .context("RabbitMQ (AMQP_URL) did not answer within 10 s")?
    .context("cannot connect to RabbitMQ (AMQP_URL)")?;
    let topo = bus::Topology::new(config.bus_prefix.clone(), bus::DEFAULT_DELIVERY_LIMIT);
    let service = match &cmd {
        DlqCommand::List { service, .. } | DlqCommand::Replay { service, .. } => *service,
    };
    // Idempotent; makes the DLQ exist even if the service never started.
    let channel = conn.create_channel().await?;
    topo.declare_service(&channel, service.as_str(), &[])
        .await
        .with_context(|| format!("cannot declare the queues of {service}"))?;
    let queue = topo.queue(service.as_str());
    let result = match cmd {
        DlqCommand::List { limit, .. } => list(&conn, &queue, service, limit, json_out).await,
        DlqCommand::Replay { limit, .. } => {
            let stats = bus::dlq_replay(&conn, &queue, limit as usize)
                .await
                .with_context(|| format!("cannot replay the DLQ of {service}"))?;
            if json_out {
                println!(
                    "{}",
                    json!({"service": service, "replayed": stats.replayed, "failed": stats.failed})
                );
            } else {
                println!(
                    "{service}: {} message(s) sent back to {queue}{}",
                    stats.replayed,
                    if stats.failed > 0 {
                        format!(
                            "; {} could not be republished and stay in the DLQ",
                            stats.failed
                        )
                    } else {
                        String::new()
                    }
                );
            }
            if stats.failed > 0 {
                Err(anyhow::anyhow!(
                    "{} message(s) of {service} could not be replayed (RabbitMQ did not confirm); run `ctl dlq replay {service}` again",
                    stats.failed
                ))
            } else {
                Ok(())
            }
        }
    };
    let _ = bus::close(&conn).await;
    result
}

async fn list(
    conn: &bus::lapin::Connection,
    queue: &str,
    service: Action,
    limit: u32,
    json_out: bool,
) -> anyhow::Result<()> {
    let messages = bus::dlq_peek(conn, queue, limit as usize)
        .await
        .with_context(|| format!("cannot read the DLQ of {service}"))?;
    if json_out {
        let v: Vec<_> = messages
            .iter()
            .map(|m| {
                json!({
                    "message_id": m.raw_message_id,
                    "reason": m.reason,
                    "original_routing_key": m.original_routing_key,
                    "original_exchange": m.original_exchange,
                    "payload": truncate(&payload_text(m), PAYLOAD_CHARS),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if messages.is_empty() {
        println!("the DLQ of {service} is empty");
        return Ok(());
    }
    println!(
        "{:<36} {:<15} {:<20} PAYLOAD",
        "MESSAGE ID", "REASON", "ROUTING KEY"
    );
    for m in &messages {
        println!(
            "{:<36} {:<15} {:<20} {}",
            m.raw_message_id.as_deref().unwrap_or("-"),
            m.reason.as_deref().unwrap_or("-"),
            m.original_routing_key,
            truncate(&payload_text(m), PAYLOAD_CHARS)
        );
    }
    println!(
        "{} message(s); `ctl dlq replay {service}` sends them back",
        messages.len()
    );
    Ok(())
}

//! Connecting to RabbitMQ, watching the connection, and shutdown signals.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::{Connection, ConnectionProperties};
use tokio_util::sync::CancellationToken;

use crate::BusError;

/// Default AMQP URL for local development (`AMQP_URL` overrides it in binaries).
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Opens an AMQP connection with lapin's automatic recovery enabled.
///
/// On a connection failure (broker restart, network cut) lapin reconnects with exponential
/// back-off capped at [`RECONNECT_MAX_DELAY`] (see [`reconnect_schedule`]: attempts for about
/// 11 minutes in total), reopens the channels, re-enables
/// publisher confirms, reapplies `basic_qos`, and redeclares the exchanges, queues, bindings and
/// consumers that were declared through this connection. In-flight publishes fail (the outbox
/// relay retries them) and deliveries from before the failure cannot be acknowledged any more
/// (the broker redelivers them; the consumer's duplicate check, the run ledger for the services,
/// absorbs them).
///
/// `connection_name` shows in the RabbitMQ management UI; use `<service>@<host>`.
///
/// The connection is returned in an [`Arc`] because the publisher, the consumers and the
/// [`watchdog`] share it; close it with [`close`] once they are done.
pub async fn connect(amqp_url: &str, connection_name: &str) -> Result<Arc<Connection>, BusError> {
    let properties = ConnectionProperties::default()
        .with_connection_name(connection_name.into())
        .configure_backoff(|backoff| {
            backoff
                .with_min_delay(RECONNECT_MIN_DELAY)
                .with_max_delay(RECONNECT_MAX_DELAY)
                .with_max_times(RECONNECT_ATTEMPTS)
                .with_jitter()
        })
        .enable_auto_recover();
    let conn = Connection::connect(amqp_url, properties).await?;
    tracing::info!(connection_name, "connected to RabbitMQ");
    Ok(Arc::new(conn))
}

/// First reconnect delay after a connection failure; each next one doubles.
pub const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(500);
/// Longest wait between two reconnect attempts. lapin's own default grows to 60 s, so a broker
/// back after 16 s was not tried again before 31 s, past the 30 s a consumer or the
/// [`watchdog`] waits before giving up (found in CI: a consumer gave up on a broker that had
/// been back for seconds). With 5 s, a returned broker is found within 5 s (plus jitter).
pub const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(5);
/// Reconnect attempts before the connection is given up for good (see [`reconnect_schedule`]).
pub const RECONNECT_ATTEMPTS: usize = 140;

/// The waits before each reconnect attempt, without jitter (jitter adds up to as much again).
pub fn reconnect_schedule() -> impl Iterator<Item = Duration> {
    (0..RECONNECT_ATTEMPTS).map(|n| {
        let doubled = RECONNECT_MIN_DELAY.saturating_mul(1u32 << n.min(16));
        doubled.min(RECONNECT_MAX_DELAY)
    })
}

/// Closes the connection gracefully (`connection.close` 200 OK). Call it after every consumer has
/// returned and the relay has stopped. Closing an already closed connection is not an error.
pub async fn close(conn: &Connection) -> Result<(), BusError> {
    if conn.status().connected() {
        conn.close(200, "OK".into()).await?;
    }
    Ok(())
}

/// Resolves when the process receives SIGTERM (Kubernetes stop) or SIGINT (Ctrl-C).
///
/// Typical wiring in a service's `main`:
/// ```no_run
/// # async fn run() {
/// let cancel = tokio_util::sync::CancellationToken::new();
/// let on_signal = cancel.clone();
/// tokio::spawn(async move {
///     bus::shutdown_signal().await;
///     on_signal.cancel();
/// });
/// # }
/// ```
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// Watches the connection and fails when it has not been usable for longer than `max_down`, or
/// as soon as it is closed or errored for good (recovery gave up). Returns `Ok(())` when
/// `cancel` fires.
///
/// lapin's recovery is young; run this next to the service and exit non-zero when it returns an
/// error, so the orchestrator restarts the process.
pub async fn watchdog(
    conn: &Connection,
    max_down: Duration,
    cancel: CancellationToken,
) -> Result<(), BusError> {
    let mut down_since: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        let status = conn.status();
        if status.connected() {
            if down_since.take().is_some() {
                tracing::info!("AMQP connection recovered");
            }
            continue;
        }
        let since = *down_since.get_or_insert_with(|| {
            tracing::warn!(state = ?status.state_name(), "AMQP connection not usable");
            Instant::now()
        });
        let gone_for_good = status.closed() || status.errored();
        if gone_for_good || since.elapsed() > max_down {
            return Err(BusError::ConnectionUnavailable {
                down_for: since.elapsed(),
                state: status.state_name(),
            });
        }
    }
}

trait StateName {
    fn state_name(&self) -> String;
}

impl StateName for lapin::ConnectionStatus {
    fn state_name(&self) -> String {
        let name = if self.connected() {
            "connected"
        } else if self.reconnecting() {
            "reconnecting"
        } else if self.connecting() {
            "connecting"
        } else if self.closing() {
            "closing"
        } else if self.closed() {
            "closed"
        } else if self.errored() {
            "error"
        } else {
            "initial"
        };
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_often_enough_for_the_consumer_and_long_enough_for_an_outage() {
        let waits: Vec<Duration> = reconnect_schedule().collect();
        let total: Duration = waits.iter().sum();
        // A broker that comes back is tried again well before a consumer gives up on it
        // (jitter at most doubles a wait).
        let longest = waits.iter().max().copied().unwrap();
        assert!(
            longest * 2 < crate::consumer::MAX_DOWN,
            "longest wait {longest:?}"
        );
        // And a longer outage (a broker upgrade) is ridden out for about 11 minutes.
        assert!(total >= Duration::from_secs(600), "{total:?}");
        assert!(total <= Duration::from_secs(900), "{total:?}");
        assert_eq!(waits[0], RECONNECT_MIN_DELAY);
        assert_eq!(waits[1], RECONNECT_MIN_DELAY * 2);
    }
}

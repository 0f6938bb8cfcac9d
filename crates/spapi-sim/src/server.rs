//! Serving the simulator: its HTTP surface on a socket and the ticker that moves feeds on.

use std::net::SocketAddr;
use std::time::Duration;

use crate::api;
use crate::config::SimConfig;
use crate::sim::Sim;

/// A simulator serving HTTP in the background.
#[derive(Debug)]
pub struct RunningSim {
    sim: Sim,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    ticker: Option<tokio::task::JoinHandle<()>>,
    delivery: Option<tokio::task::JoinHandle<()>>,
}

impl RunningSim {
    /// e.g. `http://127.0.0.1:41234`: SP-API routes, LWA (`/auth/o2/token`) and `/_sim/`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// In-process handle to the state.
    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    /// Stops serving and waits for the server task to end.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.ticker.take() {
            t.abort();
            let _ = t.await;
        }
        if let Some(t) = self.delivery.take() {
            t.abort();
            let _ = t.await;
        }
        if let Some(s) = self.server.take() {
            let _ = s.await;
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        if let Some(t) = self.delivery.take() {
            t.abort();
        }
    }
}

/// Starts a simulator on `127.0.0.1` with a free port.
pub async fn spawn(config: SimConfig) -> std::io::Result<RunningSim> {
    spawn_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
}

/// Starts a simulator on `addr`.
pub async fn spawn_on(config: SimConfig, addr: SocketAddr) -> std::io::Result<RunningSim> {
    let sim = Sim::new(config);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    sim.set_base_url(format!("http://{addr}"));
    let app = api::router(sim.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = rx.await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "spapi-sim server failed");
        }
    });
    // Feeds progress even when nobody polls.
    let tick_sim = sim.clone();
    let ticker = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(50));
        loop {
            every.tick().await;
            tick_sim.tick();
        }
    });
    // Notifications reach their SQS queues without holding up the handlers that caused them.
    let delivery = tokio::spawn(crate::delivery::run(sim.clone()));
    tracing::info!(%addr, "spapi-sim listening");
    Ok(RunningSim {
        sim,
        addr,
        shutdown: Some(tx),
        server: Some(server),
        ticker: Some(ticker),
        delivery: Some(delivery),
    })
}

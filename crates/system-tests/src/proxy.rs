//! A small TCP fault proxy (the toxiproxy idea in ~150 lines of tokio): put it between a
//! service and the simulator or the broker and switch its mode at run time.
//!
//! * `Pass`: forward bytes both ways.
//! * `Latency(ms)`: forward, delaying every chunk.
//! * `Reset`: new connections are closed at once, existing ones are cut (peer sees a reset or EOF).
//! * `Blackhole`: accept and read, never forward nor answer (the peer waits for its timeout).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    Latency(u64),
    Reset,
    Blackhole,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    /// Increments cut every open connection.
    generation: watch::Sender<u64>,
    stats: Arc<Mutex<Stats>>,
    task: tokio::task::JoinHandle<()>,
}

/// What the proxy saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub accepted: u64,
    pub refused: u64,
    pub blackholed: u64,
}

impl FaultProxy {
    /// Listens on a free local port and forwards to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, mode_rx) = watch::channel(Mode::Pass);
        let (generation, gen_rx) = watch::channel(0u64);
        let stats = Arc::new(Mutex::new(Stats::default()));
        let st = stats.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                let m = *mode_rx.borrow();
                match m {
                    Mode::Reset => {
                        st.lock().unwrap().refused += 1;
                        let _ = inbound.set_zero_linger();
                        drop(inbound);
                    }
                    Mode::Blackhole => {
                        st.lock().unwrap().blackholed += 1;
                        let mut gen_rx = gen_rx.clone();
                        gen_rx.borrow_and_update();
                        tokio::spawn(async move {
                            let mut inbound = inbound;
                            let mut buf = [0u8; 4096];
                            loop {
                                tokio::select! {
                                    r = inbound.read(&mut buf) => if matches!(r, Ok(0) | Err(_)) { break },
                                    _ = gen_rx.changed() => break,
                                }
                            }
                        });
                    }
                    Mode::Pass | Mode::Latency(_) => {
                        st.lock().unwrap().accepted += 1;
                        let mode_rx = mode_rx.clone();
                        // Only cuts from now on concern this connection.
                        let mut gen_rx = gen_rx.clone();
                        gen_rx.borrow_and_update();
                        tokio::spawn(async move {
                            if let Ok(outbound) = TcpStream::connect(target).await {
                                pipe(inbound, outbound, mode_rx, gen_rx).await;
                            }
                        });
                    }
                }
            }
        });
        Ok(FaultProxy {
            addr,
            mode,
            generation,
            stats,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switches the mode of new connections (and of the data of open ones); `Reset` and
    /// `Blackhole` also cut every open connection.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
        if matches!(mode, Mode::Reset | Mode::Blackhole) {
            self.cut();
        }
    }

    /// Cuts every open connection (RST).
    pub fn cut(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn stats(&self) -> Stats {
        *self.stats.lock().unwrap()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

async fn pipe(
    inbound: TcpStream,
    outbound: TcpStream,
    mode: watch::Receiver<Mode>,
    mut generation: watch::Receiver<u64>,
) {
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (ir, iw) = inbound.into_split();
    let (or, ow) = outbound.into_split();
    let up = pump(ir, ow, mode.clone());
    let down = pump(or, iw, mode);
    tokio::select! {
        _ = async { tokio::join!(up, down) } => {}
        _ = generation.changed() => {}
    }
}

/// Copies one direction of a connection chunk by chunk, applying the current mode to each
/// (delayed, or swallowed while blackholed mid-stream), then shuts the writer down.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mode: watch::Receiver<Mode>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if !forward_delay(&mode).await {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Applies the current mode to one chunk: false when it must be swallowed.
async fn forward_delay(mode: &watch::Receiver<Mode>) -> bool {
    let m = *mode.borrow();
    match m {
        Mode::Latency(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            true
        }
        Mode::Blackhole => false,
        _ => true,
    }
}

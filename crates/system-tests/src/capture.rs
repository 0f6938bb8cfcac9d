//! Captures every log line of the in-process services (a global `tracing` subscriber writing
//! to a shared buffer) so the PII canary test can search them. nextest runs each test in its
//! own process; under `cargo test` the buffer is shared by the tests of one binary, which only
//! makes the search wider.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use tracing_subscriber::{EnvFilter, fmt::MakeWriter};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

struct Writer(Arc<Mutex<Vec<u8>>>);

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Writer;
    fn make_writer(&'a self) -> Writer {
        Writer(self.0.clone())
    }
}

static BUFFER: OnceLock<Buffer> = OnceLock::new();

/// Installs the capturing subscriber (once per process) at `debug` for every crate (JSON
/// lines, with span fields, so that nothing a production JSON log would show is missed).
pub fn install() {
    BUFFER.get_or_init(|| {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_env_filter(EnvFilter::new("debug"))
            .with_writer(buffer.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    });
}

/// Everything logged so far (lossy UTF-8).
pub fn text() -> String {
    BUFFER
        .get()
        .map(|b| {
            String::from_utf8_lossy(&b.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
        })
        .unwrap_or_default()
}

/// Bytes logged so far.
pub fn len() -> usize {
    BUFFER
        .get()
        .map(|b| b.0.lock().unwrap_or_else(|p| p.into_inner()).len())
        .unwrap_or(0)
}

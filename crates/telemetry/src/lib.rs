//! Logging and tracing set-up shared by every binary.
//!
//! * `RUST_LOG` filters (default `info`), `LOG_FORMAT=json` switches to JSON lines.
//! * Spans always carry OpenTelemetry trace ids (so a trace id can follow a command across
//!   services through the `traceparent` message header); they are exported over OTLP/HTTP only
//!   when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use anyhow::Context;
use opentelemetry::{global, trace::TracerProvider as _};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

impl LogFormat {
    /// From `LOG_FORMAT` (`json` or `human`, default human).
    pub fn from_env() -> anyhow::Result<Self> {
        match std::env::var("LOG_FORMAT").as_deref() {
            Err(_) | Ok("") | Ok("human") | Ok("pretty") => Ok(Self::Human),
            Ok("json") => Ok(Self::Json),
            Ok(other) => {
                anyhow::bail!("LOG_FORMAT={other:?} is not valid: use \"json\" or \"human\"")
            }
        }
    }
}

/// Flushes spans on drop.
pub struct Guard {
    provider: SdkTracerProvider,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

/// Installs the global subscriber for `service`. Call once at start-up, keep the guard.
pub fn init(service: &'static str) -> anyhow::Result<Guard> {
    let format = LogFormat::from_env()?;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| {
            EnvFilter::try_new("info,sqlx=warn,lapin=warn,h2=warn,hyper=warn,reqwest=warn")
        })
        .context("RUST_LOG is not a valid filter")?;
    let provider = tracer_provider(service)?;
    global::set_text_map_propagator(TraceContextPropagator::new());
    global::set_tracer_provider(provider.clone());
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer(service));
    let fmt = match format {
        LogFormat::Human => tracing_subscriber::fmt::layer().with_target(false).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .context("a tracing subscriber is already installed")?;
    Ok(Guard { provider })
}

/// For tests: installs a subscriber once (writes to the test output when `TEST_LOG` is set)
/// with trace-id propagation; later calls are no-ops.
pub fn init_for_test() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        global::set_text_map_propagator(TraceContextPropagator::new());
        let provider = SdkTracerProvider::builder().build();
        global::set_tracer_provider(provider.clone());
        let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        let filter = if std::env::var_os("TEST_LOG").is_some() {
            "debug"
        } else {
            "off"
        };
        let _ = tracing_subscriber::registry()
            .with(otel)
            .with(
                tracing_subscriber::fmt::layer()
                    .with_test_writer()
                    .with_filter(EnvFilter::new(filter)),
            )
            .try_init();
    });
}

fn tracer_provider(service: &'static str) -> anyhow::Result<SdkTracerProvider> {
    let resource = Resource::builder().with_service_name(service).build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_default();
    if endpoint.trim().is_empty() {
        return Ok(builder.build());
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .with_context(|| {
            format!("OTEL_EXPORTER_OTLP_ENDPOINT={endpoint:?}: cannot build the OTLP exporter")
        })?;
    Ok(builder.with_batch_exporter(exporter).build())
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    #[test]
    fn spans_get_trace_ids_without_an_exporter() {
        super::init_for_test();
        let span = tracing::info_span!("unit");
        let ctx = span.context();
        let sc = ctx.span().span_context().clone();
        assert!(sc.is_valid(), "span has no OpenTelemetry context");
        let child = span.in_scope(|| tracing::info_span!("child"));
        assert_eq!(
            child.context().span().span_context().trace_id(),
            sc.trace_id()
        );
    }
}

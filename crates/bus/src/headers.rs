//! Message headers: conversion between JSON maps (how the outbox stores them and how handlers
//! see them) and AMQP field tables, plus W3C trace-context propagation.

use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use opentelemetry::propagation::{Extractor, Injector};
use serde_json::{Number, Value};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::PublishError;

/// Message headers as a JSON object. Strings, numbers, booleans, null, arrays and nested objects
/// map to the corresponding AMQP field types.
pub type Headers = serde_json::Map<String, Value>;

/// Header carrying the W3C trace context (`00-<trace-id>-<span-id>-<flags>`).
pub const TRACEPARENT: &str = "traceparent";

/// Header set by [`crate::dlq_replay`]: the routing key the message had before it was
/// dead-lettered. The consumer driver reports it as [`crate::Incoming::routing_key`].
pub const ORIGINAL_ROUTING_KEY: &str = "x-original-routing-key";

/// Header set by quorum queues on redelivery: how many times the message was returned.
pub const DELIVERY_COUNT: &str = "x-delivery-count";

pub(crate) fn short(what: &'static str, s: &str) -> Result<ShortString, PublishError> {
    ShortString::try_new(s)
        .map_err(|_| PublishError::Encode(format!("{what} longer than 255 bytes")))
}

/// Converts JSON headers to an AMQP field table.
pub(crate) fn to_field_table(headers: &Headers) -> Result<FieldTable, PublishError> {
    let mut table = FieldTable::default();
    for (key, value) in headers {
        table.insert(short("header name", key)?, to_amqp(value)?);
    }
    Ok(table)
}

fn to_amqp(value: &Value) -> Result<AMQPValue, PublishError> {
    Ok(match value {
        Value::Null => AMQPValue::Void,
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                AMQPValue::LongLongInt(i)
            } else if let Some(f) = n.as_f64() {
                AMQPValue::Double(f)
            } else {
                // u64 above i64::MAX: keep the digits rather than lose precision.
                AMQPValue::LongString(LongString::from(n.to_string()))
            }
        }
        Value::String(s) => AMQPValue::LongString(LongString::from(s.as_str())),
        Value::Array(items) => AMQPValue::FieldArray(FieldArray::from(
            items.iter().map(to_amqp).collect::<Result<Vec<_>, _>>()?,
        )),
        Value::Object(map) => AMQPValue::FieldTable(to_field_table(map)?),
    })
}

/// Converts an AMQP field table to JSON headers (lossless for everything but decimals, which
/// become strings, and byte arrays, which become lossy UTF-8 strings).
pub(crate) fn from_field_table(table: &FieldTable) -> Headers {
    table
        .inner()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), from_amqp(v)))
        .collect()
}

fn from_amqp(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(i) => Value::from(*i),
        AMQPValue::ShortShortUInt(i) => Value::from(*i),
        AMQPValue::ShortInt(i) => Value::from(*i),
        AMQPValue::ShortUInt(i) => Value::from(*i),
        AMQPValue::LongInt(i) => Value::from(*i),
        AMQPValue::LongUInt(i) => Value::from(*i),
        AMQPValue::LongLongInt(i) => Value::from(*i),
        AMQPValue::Float(f) => Number::from_f64(f64::from(*f)).map_or(Value::Null, Value::Number),
        AMQPValue::Double(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        AMQPValue::DecimalValue(d) => Value::String(format!("{}e-{}", d.value, d.scale)),
        AMQPValue::ShortString(s) => Value::String(s.as_str().to_owned()),
        AMQPValue::LongString(s) => {
            Value::String(String::from_utf8_lossy(s.as_bytes()).into_owned())
        }
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(from_amqp).collect()),
        AMQPValue::Timestamp(t) => Value::from(*t),
        AMQPValue::FieldTable(t) => Value::Object(from_field_table(t)),
        AMQPValue::ByteArray(b) => {
            Value::String(String::from_utf8_lossy(b.as_slice()).into_owned())
        }
        AMQPValue::Void => Value::Null,
    }
}

struct HeaderInjector<'a>(&'a mut Headers);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), Value::String(value));
    }
}

struct HeaderExtractor<'a>(&'a Headers);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// Writes the current tracing span's OpenTelemetry context into `headers` (W3C `traceparent`,
/// and `tracestate` when present) using the global text-map propagator, unless the headers
/// already carry a `traceparent`. Does nothing when no propagator is installed.
pub fn inject_current_context(headers: &mut Headers) {
    if headers.contains_key(TRACEPARENT) {
        return;
    }
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&cx, &mut HeaderInjector(headers));
    });
}

/// Reads the OpenTelemetry context carried in `headers` with the global text-map propagator.
#[must_use]
pub fn extract_context(headers: &Headers) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_headers_round_trip_through_amqp() {
        let headers = json!({
            "s": "text", "i": -5, "b": true, "n": null, "f": 1.5,
            "a": [1, "x"], "o": {"k": "v"}
        });
        let Value::Object(headers) = headers else {
            unreachable!()
        };
        let table = to_field_table(&headers).unwrap();
        assert_eq!(from_field_table(&table), headers);
    }

    #[test]
    fn overlong_header_name_is_an_error() {
        let mut headers = Headers::new();
        headers.insert("k".repeat(300), Value::Null);
        assert!(matches!(
            to_field_table(&headers),
            Err(PublishError::Encode(_))
        ));
    }
}

//! What every handler shares: Amazon's error body ([`ApiError`]), the call wrapper ([`call`]:
//! authorization, rate limit, faults, call counting, response headers), query and time
//! parsing, JSON bodies.

use std::future::Future;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::json;

use crate::ops::Op;
use crate::sim::{Sim, tick};
use crate::state::Fault;

/// Amazon's 404 for a path no route serves.
pub(crate) async fn not_found() -> Response {
    let mut resp = ApiError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        "The requested resource was not found.",
    )
    .into_response();
    add_request_id(&mut resp);
    resp
}

/// Amazon's error body: `{"errors":[{"code","message","details"}]}`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            details: String::new(),
        }
    }

    /// 400 InvalidInput.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "InvalidInput", message)
    }

    /// 404 NotFound.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "NotFound", message)
    }

    pub fn with_details(mut self, details: impl Into<String>) -> ApiError {
        self.details = details.into();
        self
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "Unauthorized",
            "Access to requested resource is denied.",
        )
    }

    pub fn quota_exceeded() -> ApiError {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "QuotaExceeded",
            "You exceeded your quota for the requested resource.",
        )
    }

    /// The error Amazon sends for an injected status.
    pub fn for_status(status: u16) -> ApiError {
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match status {
            429 => ApiError::quota_exceeded(),
            403 => ApiError::unauthorized(),
            400 => ApiError::invalid("Invalid Input"),
            404 => ApiError::not_found("The requested resource was not found."),
            500 => ApiError::new(
                code,
                "InternalFailure",
                "We encountered an internal error. Please try again.",
            ),
            503 => ApiError::new(
                code,
                "ServiceUnavailable",
                "Service is temporarily unavailable. Please try again.",
            ),
            _ => ApiError::new(
                code,
                "InternalFailure",
                format!("Simulated status {status}"),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"errors": [{"code": self.code, "message": self.message, "details": self.details}]});
        json_response(self.status, &body)
    }
}

/// A JSON response with Amazon's content type.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The caller of an SP-API operation, from its access token.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub seller_id: String,
    /// LWA client id (the application).
    pub client_id: String,
    /// Presented a restricted data token.
    pub restricted: bool,
}

fn add_request_id(resp: &mut Response) {
    let id = uuid::Uuid::new_v4().to_string();
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-amzn-RequestId", v);
    }
}

fn add_rate_limit(resp: &mut Response, op: Op) {
    let s = resp.status().as_u16();
    if ((200..300).contains(&s) || s == 400 || s == 404)
        && let Some(v) = op
            .rate_limit_header()
            .and_then(|h| HeaderValue::from_str(&h).ok())
    {
        resp.headers_mut().insert("x-amzn-RateLimit-Limit", v);
    }
}

/// How a call is guarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guard {
    /// SP-API: access token acting for a seller (refresh-token grant), rate limit.
    SpApi,
    /// Grantless SP-API: client-credentials token with the notifications scope, rate limit
    /// per application.
    Grantless,
    /// LWA / presigned URLs: no access token, no usage plan.
    Open,
}

impl Guard {
    /// The guard of `op`: LWA and the presigned document URLs are open, every SP-API operation
    /// needs an access token and is rate-limited.
    fn of(op: Op) -> Guard {
        match op {
            Op::LwaToken | Op::UploadFeedDocument | Op::DownloadDocument => Guard::Open,
            op if op.grantless() => Guard::Grantless,
            _ => Guard::SpApi,
        }
    }
}

/// Runs one operation: authentication, rate limiting, fault injection, counting and
/// Amazon's response headers. The guard follows from the operation ([`Guard::of`]); `f` gets its
/// own handle on the simulator and the caller.
pub(crate) async fn call<F, Fut>(sim: &Sim, op: Op, headers: &HeaderMap, f: F) -> Response
where
    F: FnOnce(Sim, Caller) -> Fut,
    Fut: Future<Output = Result<Response, ApiError>>,
{
    let guard = Guard::of(op);
    let (caller, fault) = {
        let mut st = sim.lock();
        tick(&mut st);
        let caller = if guard != Guard::Open {
            let token = headers
                .get("x-amz-access-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let now = st.now();
            // A grantless token acts for no seller; a seller's token is no grantless one.
            match st.tokens.get(token) {
                Some(t) if t.expires_at > now && t.grantless == (guard == Guard::Grantless) => {
                    Caller {
                        seller_id: t.seller_id.clone(),
                        client_id: t.client_id.clone(),
                        restricted: t.restricted,
                    }
                }
                _ => {
                    st.count(op, 403, false, false);
                    drop(st);
                    let mut resp = ApiError::unauthorized().into_response();
                    add_request_id(&mut resp);
                    return resp;
                }
            }
        } else {
            Caller {
                seller_id: String::new(),
                client_id: String::new(),
                restricted: false,
            }
        };
        // Seller operations are throttled per seller, grantless ones per application.
        let party = match guard {
            Guard::Grantless => format!("app:{}", caller.client_id),
            _ => caller.seller_id.clone(),
        };
        if guard != Guard::Open
            && let Some(plan) = op.usage_plan()
            && !st.take_token(&party, op.name(), plan)
        {
            st.count(op, 429, true, false);
            drop(st);
            tracing::debug!(operation = op.name(), "throttled");
            let mut resp = ApiError::quota_exceeded().into_response();
            add_request_id(&mut resp);
            return resp;
        }
        (caller, st.take_fault(op))
    };

    let mut faulted = false;
    let mut post_fault = None;
    if let Some(fault) = fault {
        faulted = true;
        tracing::debug!(operation = op.name(), ?fault, "injecting fault");
        match fault {
            Fault::Status { status } => {
                let mut resp = ApiError::for_status(status).into_response();
                add_request_id(&mut resp);
                if guard != Guard::Open {
                    add_rate_limit(&mut resp, op);
                }
                sim.lock().count(op, status, status == 429, true);
                return resp;
            }
            Fault::Latency { ms } => {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
            other => post_fault = Some(other),
        }
    }

    let mut resp = match f(sim.clone(), caller).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };

    if let Some(fault) = post_fault {
        resp = apply_body_fault(resp, &fault).await;
    }
    add_request_id(&mut resp);
    if guard != Guard::Open {
        add_rate_limit(&mut resp, op);
    }
    sim.lock().count(op, resp.status().as_u16(), false, faulted);
    resp
}

async fn apply_body_fault(resp: Response, fault: &Fault) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    match fault {
        Fault::ConnectionReset => {
            let stream = futures_util::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "simulated connection reset",
                ))
            });
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from_stream(stream))
        }
        Fault::TruncatedGzip if parts.headers.contains_key("x-amz-meta-sim-compression") => {
            let cut = bytes.len() / 2;
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(bytes.slice(..cut)))
        }
        _ => {
            // Malformed JSON: a 200 whose body stops in the middle.
            let cut = if bytes.len() > 2 {
                bytes.slice(..bytes.len() / 2)
            } else {
                Bytes::from_static(b"{\"errors\":[")
            };
            parts.status = StatusCode::OK;
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Response::from_parts(parts, Body::from(cut))
        }
    }
}

/// Query string with repeated keys and comma-separated lists, as Amazon accepts them.
#[derive(Debug, Default)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        Query {
            pairs: raw
                .map(|r| {
                    form_urlencoded::parse(r.as_bytes())
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// A single-valued parameter (empty string = absent).
    pub fn one(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// A list parameter: every occurrence, each split on commas.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// Names of the parameters present.
    pub fn names(&self) -> Vec<&str> {
        let mut n: Vec<&str> = self
            .pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, _)| k.as_str())
            .collect();
        n.sort_unstable();
        n.dedup();
        n
    }
}

/// Parses an ISO 8601 timestamp (with offset, UTC without offset, or a date).
pub(crate) fn parse_time(name: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(value, fmt) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc());
    }
    Err(ApiError::invalid(format!(
        "Invalid {name}: '{value}' is not a valid ISO 8601 date-time."
    )))
}

/// Parses a JSON request body into a value, or Amazon's 400.
pub(crate) fn parse_json_body(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::invalid("Request body is missing."));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid("Request body is not valid JSON.").with_details(e.to_string())
    })
}

/// The public base URL for links (presigned URLs): from `Host`, else the bound address.
pub(crate) fn base_url(sim: &Sim, headers: &HeaderMap) -> String {
    if let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        return format!("http://{host}");
    }
    sim.base_url()
        .unwrap_or_else(|| "http://127.0.0.1:8700".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_lists_accept_csv_and_repeats() {
        let q = Query::parse(Some("a=1,2&a=3&b=&c=x%2Cy"));
        assert_eq!(q.list("a"), vec!["1", "2", "3"]);
        assert_eq!(q.one("b"), None);
        assert_eq!(q.list("c"), vec!["x", "y"]);
    }

    #[test]
    fn times_parse() {
        assert!(parse_time("x", "2026-01-01T00:00:00Z").is_ok());
        assert!(parse_time("x", "2026-01-01T09:00:00+09:00").is_ok());
        assert!(parse_time("x", "2026-01-01").is_ok());
        assert!(parse_time("x", "yesterday").is_err());
    }
}

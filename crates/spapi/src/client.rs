//! The client: one [`SpApi`] per process (HTTP connection pool, limiter, stats, token caches),
//! one cheap [`Shop`] handle per tenant through which operations are called.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use sqlx::PgPool;
use tracing::Instrument;

use crate::auth::TokenCache;
use crate::config::{ClientConfig, ShopConfig};
use crate::error::{ApiError, Error, Result, TransportKind};
use crate::limiter::RateLimiter;
use crate::operation::Operation;
use crate::stats::{CallStats, Outcome, StatsRecorder};

/// Header carrying the LWA access token.
const ACCESS_TOKEN_HEADER: &str = "x-amz-access-token";
/// Header carrying the applied rate (requests per second).
pub(crate) const RATE_LIMIT_HEADER: &str = "x-amzn-RateLimit-Limit";
const REQUEST_ID_HEADER: &str = "x-amzn-RequestId";

/// A request body.
pub(crate) enum Body {
    None,
    Json(serde_json::Value),
}

/// The SP-API client of a process. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct SpApi {
    inner: Arc<Inner>,
}

/// Token caches kept before unused ones are forgotten (one per shop credentials in practice).
const MAX_TOKEN_CACHES: usize = 4096;

struct Inner {
    http: reqwest::Client,
    documents: reqwest::Client,
    config: ClientConfig,
    limiter: RateLimiter,
    stats: StatsRecorder,
    /// Access-token caches by credentials. Kept for the life of the client (one entry per set of
    /// credentials), so consecutive messages for a shop reuse the token until it expires.
    tokens: Mutex<HashMap<u64, Arc<TokenCache>>>,
    known_rates: Mutex<HashMap<(String, Operation), f64>>,
}

impl std::fmt::Debug for SpApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpApi")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl SpApi {
    /// A client whose rate buckets live in `pool`'s database.
    pub fn new(pool: PgPool, config: ClientConfig) -> Result<Self> {
        let build = |timeout: Duration| {
            reqwest::Client::builder()
                .user_agent(config.user_agent.clone())
                .connect_timeout(config.connect_timeout)
                .timeout(timeout)
                .build()
                .map_err(|e| Error::Config(format!("HTTP client: {e}")))
        };
        let limiter = RateLimiter::new(pool)
            .with_rate_scale(config.rate_scale)
            .with_burst_reserve(config.burst_reserve);
        Ok(Self {
            inner: Arc::new(Inner {
                http: build(config.request_timeout)?,
                documents: build(config.document_timeout)?,
                limiter,
                stats: StatsRecorder::default(),
                tokens: Mutex::new(HashMap::new()),
                known_rates: Mutex::new(HashMap::new()),
                config,
            }),
        })
    }

    /// A handle for one shop. Handles for the same credentials share one access-token cache (and
    /// so one refresh at a time), also across messages: the cache outlives the handle. Changed
    /// credentials get a new cache. Handles of the same application (client id and secrets)
    /// also share one grantless token cache (`client_credentials`, for grantless operations).
    pub fn shop(&self, shop: ShopConfig) -> Shop {
        let hash_app = |h: &mut std::hash::DefaultHasher| {
            shop.endpoints.lwa.as_str().hash(h);
            shop.credentials.client_id.hash(h);
            shop.credentials.client_secret.expose_secret().hash(h);
            if let Some(next) = &shop.credentials.client_secret_next {
                next.expose_secret().hash(h);
            }
        };
        let key = {
            let mut h = std::hash::DefaultHasher::new();
            hash_app(&mut h);
            shop.credentials.refresh_token.expose_secret().hash(&mut h);
            h.finish()
        };
        // The application's grantless token: shared by every shop of the same app.
        let grantless_key = {
            let mut h = std::hash::DefaultHasher::new();
            hash_app(&mut h);
            crate::auth::NOTIFICATIONS_SCOPE.hash(&mut h);
            h.finish()
        };
        let mut caches = self.inner.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if caches.len() >= MAX_TOKEN_CACHES
            && !(caches.contains_key(&key) && caches.contains_key(&grantless_key))
        {
            // Bounded: forget caches no live handle uses (e.g. rotated credentials).
            caches.retain(|_, cache| Arc::strong_count(cache) > 1);
        }
        let tokens = caches
            .entry(key)
            .or_insert_with(|| {
                Arc::new(TokenCache::new(
                    shop.endpoints.lwa.clone(),
                    shop.credentials.clone(),
                ))
            })
            .clone();
        let grantless = caches
            .entry(grantless_key)
            .or_insert_with(|| {
                Arc::new(TokenCache::grantless(
                    shop.endpoints.lwa.clone(),
                    shop.credentials.clone(),
                    crate::auth::NOTIFICATIONS_SCOPE,
                ))
            })
            .clone();
        drop(caches);
        Shop {
            api: self.clone(),
            config: Arc::new(shop),
            tokens,
            grantless,
            stats: Arc::new(StatsRecorder::default()),
        }
    }

    /// The shared rate limiter.
    pub fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Calls per operation since the client was created (or since the last
    /// [`SpApi::take_stats`]).
    pub fn stats(&self) -> CallStats {
        self.inner.stats.snapshot()
    }

    /// Returns the counters and resets them (e.g. at the end of a run).
    pub fn take_stats(&self) -> CallStats {
        self.inner.stats.take()
    }

    pub(crate) fn http_documents(&self) -> &reqwest::Client {
        &self.inner.documents
    }

    /// Adopts `x-amzn-RateLimit-Limit` into the shared bucket when it differs from what this
    /// process last saw.
    async fn observe_rate(&self, seller_key: &str, op: Operation, headers: &HeaderMap) {
        if !self.inner.config.adapt_to_rate_limit_header {
            return;
        }
        let Some(rate) = headers
            .get(RATE_LIMIT_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|r| r.is_finite() && *r > 0.0)
        else {
            return;
        };
        // The header states the plan's rate; a scaled endpoint (the simulator) enforces it
        // multiplied by the same factor as the documented defaults.
        let rate = rate * self.inner.config.rate_scale;
        let key = (seller_key.to_owned(), op);
        {
            let known = self
                .inner
                .known_rates
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if known
                .get(&key)
                .is_some_and(|k| (k - rate).abs() <= rate * 0.001)
            {
                return;
            }
        }
        match self.inner.limiter.set_rate(seller_key, op, rate).await {
            Ok(changed) => {
                if changed {
                    tracing::info!(
                        operation = op.name(),
                        rate,
                        "adopted x-amzn-RateLimit-Limit"
                    );
                }
                self.inner
                    .known_rates
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, rate);
            }
            Err(e) => {
                tracing::warn!(operation = op.name(), error = %e, "could not adopt rate limit header")
            }
        }
    }
}

/// One SP-API request, built by the operation methods.
pub(crate) struct ApiRequest {
    pub(crate) op: Operation,
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) query: Vec<(&'static str, String)>,
    pub(crate) body: Body,
    /// Additional quotas to acquire before `op`'s own (e.g. JSON_LISTINGS_FEED submissions).
    pub(crate) extra_quota: Option<Operation>,
}

impl ApiRequest {
    pub(crate) fn new(op: Operation, method: Method, path: String) -> Self {
        Self {
            op,
            method,
            path,
            query: Vec::new(),
            body: Body::None,
            extra_quota: None,
        }
    }

    pub(crate) fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    pub(crate) fn query_opt(self, key: &'static str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(v) => self.query(key, v),
            None => self,
        }
    }

    /// A comma-separated list parameter (the models' default `collectionFormat: csv`); omitted
    /// when empty.
    pub(crate) fn query_csv<S: AsRef<str>>(self, key: &'static str, values: &[S]) -> Self {
        if values.is_empty() {
            return self;
        }
        let joined = values
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(",");
        self.query(key, joined)
    }

    pub(crate) fn json<T: serde::Serialize>(mut self, body: &T) -> Result<Self> {
        self.body = Body::Json(
            serde_json::to_value(body).map_err(|e| Error::InvalidRequest(e.to_string()))?,
        );
        Ok(self)
    }
}

/// What a response's body is turned into.
pub(crate) enum Expect<T> {
    Json(fn(&[u8]) -> serde_json::Result<T>),
    Empty(fn() -> T),
}

/// A handle for one shop: all SP-API operations are methods of it (see the `orders`, `feeds`
/// and `listings` modules). Cheap to clone.
#[derive(Clone)]
pub struct Shop {
    api: SpApi,
    config: Arc<ShopConfig>,
    tokens: Arc<TokenCache>,
    /// The application's token for grantless operations ([`Operation::is_grantless`]).
    grantless: Arc<TokenCache>,
    stats: Arc<StatsRecorder>,
}

impl std::fmt::Debug for Shop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shop")
            .field("seller_id", &self.config.seller_id)
            .field("seller_key", &self.config.seller_key)
            .finish_non_exhaustive()
    }
}

enum Attempt<T> {
    Done(Result<T>),
    /// Retry after a backoff (counts against `max_retries`).
    Retry(Error),
    /// Retry right away with a fresh token (once per call).
    RefreshToken(u64),
    /// Amazon throttled: drain the shared bucket and retry (counts against `max_retries`).
    Throttled,
}

impl Shop {
    /// The shop's configuration.
    pub fn config(&self) -> &ShopConfig {
        &self.config
    }

    /// Amazon selling partner id.
    pub fn seller_id(&self) -> &str {
        &self.config.seller_id
    }

    /// The client this handle belongs to.
    pub fn api(&self) -> &SpApi {
        &self.api
    }

    /// Calls made through this handle (and its clones) only: for the ledger of one run.
    /// [`SpApi::stats`] counts every handle of the process.
    pub fn stats(&self) -> CallStats {
        self.stats.snapshot()
    }

    /// Returns this handle's counters and resets them.
    pub fn take_stats(&self) -> CallStats {
        self.stats.take()
    }

    pub(crate) fn record_call(&self, operation: &str, retry: bool, outcome: Outcome) {
        self.api.inner.stats.record_call(operation, retry, outcome);
        self.stats.record_call(operation, retry, outcome);
        StatsRecorder::record_process_call(&self.config.seller_key, operation, retry, outcome);
    }

    pub(crate) fn record_wait(&self, operation: &str, waited: Duration) {
        self.api.inner.stats.record_wait(operation, waited);
        self.stats.record_wait(operation, waited);
        StatsRecorder::record_process_wait(&self.config.seller_key, operation, waited);
    }

    /// How many access tokens this shop's cache has obtained from LWA so far.
    pub fn token_refreshes(&self) -> u64 {
        self.tokens.refreshes()
    }

    /// How many grantless (application) tokens the cache of this shop's application has
    /// obtained from LWA so far.
    pub fn grantless_token_refreshes(&self) -> u64 {
        self.grantless.refreshes()
    }

    /// The token cache of `op`: the application's for grantless operations, else the seller's.
    fn tokens_for(&self, op: Operation) -> &TokenCache {
        if op.is_grantless() {
            &self.grantless
        } else {
            &self.tokens
        }
    }

    /// The key of `op`'s rate bucket: Amazon meters grantless operations per application,
    /// the others per selling partner.
    fn bucket_key(&self, op: Operation) -> std::borrow::Cow<'_, str> {
        if op.is_grantless() {
            format!("app:{}", self.config.credentials.client_id).into()
        } else {
            self.config.seller_key.as_str().into()
        }
    }

    /// Whether LWA accepted only the staged next client secret for this shop: Amazon switched
    /// and the rotation should be promoted (`store::shops::promote_client_secret`).
    pub fn uses_next_secret(&self) -> bool {
        self.tokens.uses_next_secret()
    }

    /// Obtains (or reuses) an access token now: checks the credentials without calling
    /// SP-API. Fails with [`Error::Authorization`] when LWA refuses them.
    pub async fn authorize(&self) -> Result<()> {
        let cfg = &self.api.inner.config;
        self.tokens
            .get(&self.api.inner.http, cfg.token_refresh_margin, &cfg.retry)
            .await
            .map(|_| ())
    }

    /// Sends `req` through the limiter with retries, and turns the response into `T`.
    pub(crate) async fn execute<T>(&self, req: ApiRequest, expect: Expect<T>) -> Result<T> {
        let op = req.op;
        let span = tracing::info_span!(
            "spapi.call",
            operation = op.name(),
            seller = %self.config.seller_key,
            status = tracing::field::Empty,
            attempts = tracing::field::Empty,
            limiter_wait_ms = tracing::field::Empty,
            request_id = tracing::field::Empty,
        );
        self.execute_inner(req, expect).instrument(span).await
    }

    async fn execute_inner<T>(&self, req: ApiRequest, expect: Expect<T>) -> Result<T> {
        let cfg = &self.api.inner.config;
        let op = req.op;
        let url = self.config.endpoints.api_url(&req.path)?;
        let mut retries = 0u32;
        let mut refreshed = false;
        let mut waited = Duration::ZERO;
        let mut attempts = 0u32;
        let span = tracing::Span::current();
        loop {
            // 1. The access token (first, so that a refused authorization costs no quota).
            let token = self
                .tokens_for(op)
                .get(&self.api.inner.http, cfg.token_refresh_margin, &cfg.retry)
                .await?;
            // 2. The shared quota (every replica of every service).
            for bucket in req.extra_quota.into_iter().chain([op]) {
                let remaining = cfg.max_limiter_wait.saturating_sub(waited);
                let w = self
                    .api
                    .inner
                    .limiter
                    .acquire_within(&self.bucket_key(bucket), bucket, remaining)
                    .await?;
                waited += w;
                self.record_wait(op.name(), w);
            }
            span.record("limiter_wait_ms", waited.as_millis() as u64);
            // 3. The request.
            attempts += 1;
            span.record("attempts", attempts);
            let mut builder = self
                .api
                .inner
                .http
                .request(req.method.clone(), url.clone())
                .header(ACCESS_TOKEN_HEADER, token.value.expose_secret());
            if !req.query.is_empty() {
                builder = builder.query(&req.query);
            }
            if let Body::Json(body) = &req.body {
                builder = builder.json(body);
            }
            let is_retry = attempts > 1;
            let outcome = match builder.send().await {
                Err(e) => self.transport_failure(op, e, is_retry),
                Ok(response) => {
                    self.handle_response(
                        op,
                        response,
                        &expect,
                        token.generation,
                        refreshed,
                        is_retry,
                    )
                    .await
                }
            };
            match outcome {
                Attempt::Done(result) => return result,
                Attempt::RefreshToken(generation) => {
                    tracing::info!("access token refused, refreshing once");
                    refreshed = true;
                    self.tokens_for(op).invalidate(generation).await;
                }
                Attempt::Throttled => {
                    if let Err(e) = self.api.inner.limiter.drain(&self.bucket_key(op), op).await {
                        tracing::warn!(error = %e, "could not drain rate bucket");
                    }
                    if retries >= cfg.retry.max_retries {
                        let quota = self.api.inner.limiter.initial_quota(op);
                        let retry_at = Utc::now()
                            + chrono::Duration::from_std(Duration::from_secs_f64(1.0 / quota.rate))
                                .unwrap_or_default();
                        return Err(Error::Throttled {
                            operation: op.name(),
                            retry_at,
                        });
                    }
                    retries += 1;
                }
                Attempt::Retry(err) => {
                    if retries >= cfg.retry.max_retries {
                        return Err(err);
                    }
                    let delay = cfg.retry.backoff(retries);
                    retries += 1;
                    tracing::warn!(error = %err, retry = retries, delay_ms = delay.as_millis() as u64, "retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    fn transport_failure<T>(&self, op: Operation, e: reqwest::Error, is_retry: bool) -> Attempt<T> {
        self.record_call(op.name(), is_retry, Outcome::Error);
        let kind = if e.is_timeout() {
            TransportKind::Timeout
        } else if e.is_connect() {
            TransportKind::Connect
        } else {
            TransportKind::Other
        };
        let message = e.without_url().to_string();
        // A request that never connected cannot have been applied.
        if op.is_idempotent() || kind == TransportKind::Connect {
            Attempt::Retry(Error::Transport {
                operation: op.name(),
                kind,
                message,
            })
        } else {
            Attempt::Done(Err(Error::UnknownOutcome {
                operation: op.name(),
                reason: format!("{kind:?}: {message}"),
            }))
        }
    }

    async fn handle_response<T>(
        &self,
        op: Operation,
        response: reqwest::Response,
        expect: &Expect<T>,
        generation: u64,
        refreshed: bool,
        is_retry: bool,
    ) -> Attempt<T> {
        let span = tracing::Span::current();
        let status = response.status();
        span.record("status", status.as_u16());
        let request_id = response
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Some(id) = &request_id {
            span.record("request_id", id.as_str());
        }
        self.api
            .observe_rate(&self.bucket_key(op), op, response.headers())
            .await;
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return self.transport_failure(op, e, is_retry),
        };

        if status.is_success() {
            let parsed = match expect {
                Expect::Empty(make) => Ok(make()),
                Expect::Json(parse) => parse(&body),
            };
            return match parsed {
                Ok(value) => {
                    self.record_call(op.name(), is_retry, Outcome::Ok);
                    Attempt::Done(Ok(value))
                }
                Err(e) => {
                    self.record_call(op.name(), is_retry, Outcome::Error);
                    tracing::warn!(error = %e, "unreadable response body");
                    if op.is_idempotent() {
                        Attempt::Retry(Error::InvalidResponse {
                            operation: op.name(),
                            status: status.as_u16(),
                            message: e.to_string(),
                        })
                    } else {
                        Attempt::Done(Err(Error::UnknownOutcome {
                            operation: op.name(),
                            reason: format!("HTTP {status} with an unreadable body: {e}"),
                        }))
                    }
                }
            };
        }

        let errors = parse_error_body(&body);
        let api_error = Error::Api {
            operation: op.name(),
            status: status.as_u16(),
            request_id,
            errors,
        };
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.record_call(op.name(), is_retry, Outcome::Throttled);
            tracing::warn!("throttled by Amazon (429)");
            return Attempt::Throttled;
        }
        self.record_call(op.name(), is_retry, Outcome::Error);
        if (status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN) && !refreshed {
            // Expired or revoked access token: Amazon refused the request, it had no effect.
            return Attempt::RefreshToken(generation);
        }
        if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
            return if op.is_idempotent() {
                Attempt::Retry(api_error)
            } else {
                Attempt::Done(Err(Error::UnknownOutcome {
                    operation: op.name(),
                    reason: api_error.to_string(),
                }))
            };
        }
        Attempt::Done(Err(api_error))
    }
}

/// Parses Amazon's error body: a bare `ErrorList` (`{"errors":[...]}`), also used by v0
/// operations' response wrappers. Anything else gives an empty list.
pub fn parse_error_body(body: &[u8]) -> Vec<ApiError> {
    #[derive(serde::Deserialize)]
    struct ErrorList {
        #[serde(default)]
        errors: Vec<ApiError>,
    }
    serde_json::from_slice::<ErrorList>(body)
        .map(|l| l.errors)
        .unwrap_or_default()
}

pub(crate) fn json<T: DeserializeOwned>(body: &[u8]) -> serde_json::Result<T> {
    serde_json::from_slice(body)
}

/// Percent-encodes one path segment (order ids, SKUs, feed ids).
pub(crate) fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) fn content_type_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("503-1234567-1234567"), "503-1234567-1234567");
        assert_eq!(segment("SKU 1/ä"), "SKU%201%2F%C3%A4");
    }

    #[test]
    fn error_bodies() {
        let errors = parse_error_body(
            br#"{"errors":[{"code":"QuotaExceeded","message":"You exceeded your quota for the requested resource.","details":""}]}"#,
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].code, "QuotaExceeded");
        assert_eq!(errors[0].details.as_deref(), Some(""));
        assert!(parse_error_body(b"<html>bad gateway</html>").is_empty());
    }
}

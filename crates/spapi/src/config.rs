//! Configuration: endpoints and credentials per shop, tuning of the client.

use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;

use crate::error::{Error, Result};

/// Far East SP-API production host (JP, AU, SG).
pub const FAR_EAST_SP_API: &str = "https://sellingpartnerapi-fe.amazon.com";
/// Login with Amazon token endpoint used by SP-API apps.
pub const LWA_TOKEN_URL: &str = "https://api.amazon.com/auth/o2/token";

/// Where a shop's requests go. Hosts are configuration, never constants in callers: the
/// simulator is just another endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// SP-API base URL (scheme + host, optional path prefix), e.g.
    /// `https://sellingpartnerapi-fe.amazon.com`.
    pub sp_api: Url,
    /// LWA token URL, e.g. `https://api.amazon.com/auth/o2/token`.
    pub lwa: Url,
}

impl Endpoints {
    /// Far East production (the default).
    pub fn far_east() -> Self {
        Self {
            sp_api: Url::parse(FAR_EAST_SP_API).expect("valid constant URL"),
            lwa: Url::parse(LWA_TOKEN_URL).expect("valid constant URL"),
        }
    }

    /// Endpoints from two URL strings.
    pub fn new(sp_api: &str, lwa: &str) -> Result<Self> {
        let parse = |s: &str| Url::parse(s).map_err(|e| Error::Config(format!("bad URL {s}: {e}")));
        Ok(Self {
            sp_api: parse(sp_api)?,
            lwa: parse(lwa)?,
        })
    }

    /// A simulator (or any host serving both APIs) at `base_url`: SP-API at the base, LWA at
    /// `{base_url}/auth/o2/token`.
    pub fn simulator(base_url: &str) -> Result<Self> {
        let base = base_url.trim_end_matches('/');
        Self::new(base, &format!("{base}/auth/o2/token"))
    }

    /// Builds the URL of an SP-API path (which starts with `/`), keeping any path prefix of
    /// the configured base.
    pub(crate) fn api_url(&self, path: &str) -> Result<Url> {
        let base = self.sp_api.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}{path}")).map_err(|e| Error::Config(format!("bad URL: {e}")))
    }
}

impl Default for Endpoints {
    fn default() -> Self {
        Self::far_east()
    }
}

/// LWA credentials of one shop. `Debug` redacts the secrets; they are never logged.
#[derive(Clone)]
pub struct Credentials {
    /// LWA client identifier of the app (`amzn1.application-oa2-client.…`).
    pub client_id: String,
    /// LWA client secret of the app.
    pub client_secret: SecretString,
    /// The app's next client secret, staged during a rotation: used when LWA answers
    /// `invalid_client` to the current one (Amazon switched), and from then on.
    pub client_secret_next: Option<SecretString>,
    /// The seller's refresh token (`Atzr|…`).
    pub refresh_token: SecretString,
}

impl Credentials {
    /// Credentials from plain strings (which are moved into secret boxes).
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        refresh_token: impl Into<String>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: SecretString::from(client_secret.into()),
            client_secret_next: None,
            refresh_token: SecretString::from(refresh_token.into()),
        }
    }

    /// With a staged next client secret (see [`Credentials::client_secret_next`]).
    pub fn with_next_secret(mut self, next: Option<SecretString>) -> Self {
        self.client_secret_next = next;
        self
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field(
                "client_secret_next",
                &self.client_secret_next.as_ref().map(|_| "[REDACTED]"),
            )
            .field("refresh_token", &"[REDACTED]")
            .finish()
    }
}

/// One tenant: a seller account in one region.
#[derive(Debug, Clone)]
pub struct ShopConfig {
    /// Amazon selling partner id (merchant token), used in Listings paths and feed headers.
    pub seller_id: String,
    /// Key of the shared rate buckets (`rate_buckets.seller_key`). Amazon's quota is per
    /// selling partner and application, across every replica: every process calling for this
    /// seller must use the same key. Defaults to `seller_id`.
    pub seller_key: String,
    /// SP-API and LWA endpoints.
    pub endpoints: Endpoints,
    /// LWA credentials.
    pub credentials: Credentials,
}

impl ShopConfig {
    /// A shop on the Far East production endpoints, rate-limited under `seller_id`.
    pub fn new(seller_id: impl Into<String>, credentials: Credentials) -> Self {
        let seller_id = seller_id.into();
        Self {
            seller_key: seller_id.clone(),
            seller_id,
            endpoints: Endpoints::far_east(),
            credentials,
        }
    }

    /// Replaces the endpoints.
    pub fn with_endpoints(mut self, endpoints: Endpoints) -> Self {
        self.endpoints = endpoints;
        self
    }

    /// Replaces the rate-limit key.
    pub fn with_seller_key(mut self, seller_key: impl Into<String>) -> Self {
        self.seller_key = seller_key.into();
        self
    }
}

/// Bounded retries with full jitter.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so at most `max_retries + 1` requests per call).
    pub max_retries: u32,
    /// Backoff before the first retry (doubled each retry, randomized with full jitter).
    pub base_delay: Duration,
    /// Upper bound of one backoff.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The jittered delay before retry number `retry` (0-based).
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX));
        let cap = exp.min(self.max_delay);
        if cap.is_zero() {
            return cap;
        }
        let millis = cap.as_millis().max(1) as u64;
        // Full jitter, but never less than a tenth of the cap.
        let low = millis / 10;
        Duration::from_millis(rand::random_range(low..=millis))
    }
}

/// Tuning of the client (shared by all shops).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Multiplies every documented rate (not burst) when initialising rate buckets, and every
    /// rate adopted from `x-amzn-RateLimit-Limit`. Set it to the simulator's `--rate-scale`;
    /// 1.0 for Amazon.
    pub rate_scale: f64,
    /// Buckets start from the documented burst minus this many tokens (at least 1 remains).
    /// The spare token absorbs the jitter between the moment a token is taken in Postgres and
    /// the moment Amazon receives the request, so sequences admitted by the shared bucket are
    /// also admitted by Amazon's.
    pub burst_reserve: f64,
    /// Longest total time one call may sleep in the limiter; beyond it the call returns
    /// [`Error::Throttled`] so the caller can persist its cursor.
    pub max_limiter_wait: Duration,
    /// Retries of idempotent operations (and of 429s for all operations).
    pub retry: RetryPolicy,
    /// Whole-request timeout of SP-API and LWA calls.
    pub request_timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Timeout of presigned document uploads and downloads (documents can be large).
    pub document_timeout: Duration,
    /// An access token is refreshed this long before it expires.
    pub token_refresh_margin: Duration,
    /// Adopt the rate Amazon reports in `x-amzn-RateLimit-Limit` into the shared bucket.
    pub adapt_to_rate_limit_header: bool,
    /// `User-Agent` sent with every request (Amazon asks for `AppName/Version (Language=…)`).
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            rate_scale: 1.0,
            burst_reserve: 1.0,
            max_limiter_wait: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            document_timeout: Duration::from_secs(300),
            token_refresh_margin: Duration::from_secs(300),
            adapt_to_rate_limit_header: true,
            user_agent: concat!(
                "warehouse-connector/",
                env!("CARGO_PKG_VERSION"),
                " (Language=Rust)"
            )
            .to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_debug_redacts_secrets() {
        let c = Credentials::new("amzn1.application-oa2-client.x", "s3cr3t", "Atzr|refresh");
        let dbg = format!("{c:?}");
        assert!(dbg.contains("amzn1.application-oa2-client.x"));
        assert!(!dbg.contains("s3cr3t"));
        assert!(!dbg.contains("Atzr|refresh"));
        let shop = ShopConfig::new("A1SELLER", c);
        let dbg = format!("{shop:?}");
        assert!(!dbg.contains("s3cr3t") && !dbg.contains("Atzr|refresh"));
    }

    #[test]
    fn endpoints() {
        let fe = Endpoints::default();
        assert_eq!(
            fe.sp_api.as_str(),
            "https://sellingpartnerapi-fe.amazon.com/"
        );
        assert_eq!(fe.lwa.as_str(), "https://api.amazon.com/auth/o2/token");
        let sim = Endpoints::simulator("http://127.0.0.1:4000/").unwrap();
        assert_eq!(sim.lwa.as_str(), "http://127.0.0.1:4000/auth/o2/token");
        assert_eq!(
            sim.api_url("/orders/2026-01-01/orders").unwrap().as_str(),
            "http://127.0.0.1:4000/orders/2026-01-01/orders"
        );
        let prefixed = Endpoints::new("http://h/prefix/", "http://h/t").unwrap();
        assert_eq!(
            prefixed
                .api_url("/feeds/2021-06-30/feeds")
                .unwrap()
                .as_str(),
            "http://h/prefix/feeds/2021-06-30/feeds"
        );
    }

    #[test]
    fn backoff_is_bounded() {
        let p = RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        for retry in 0..40 {
            let d = p.backoff(retry);
            assert!(d <= Duration::from_millis(500), "{d:?}");
        }
    }
}

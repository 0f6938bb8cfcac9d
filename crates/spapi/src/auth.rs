//! Login with Amazon: exchanging a shop's refresh token for access tokens.
//!
//! One [`TokenCache`] per shop holds the current access token. It is refreshed a margin before
//! it expires, and only one refresh per shop runs at a time: concurrent callers wait on the
//! shop's mutex and then reuse the token the first one fetched (no stampede on LWA).
//!
//! Grantless operations (the Notifications API's destinations and deletions) use an
//! application token instead: `grant_type=client_credentials` with a scope. It is cached the
//! same way, one cache per application credentials and scope.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Client, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;
use tracing::Instrument;

use crate::config::{Credentials, RetryPolicy};
use crate::error::{AuthorizationKind, Error, Result, TransportKind};

/// LWA scope of the grantless Notifications operations (Amazon's `SCOPE_NOTIFICATIONS_API`).
pub(crate) const NOTIFICATIONS_SCOPE: &str = "sellingpartnerapi::notifications";

/// An access token with its identity in the cache.
#[derive(Clone)]
pub(crate) struct AccessToken {
    pub(crate) value: SecretString,
    pub(crate) generation: u64,
    /// When the cache fetches a new one: the expiry minus the refresh margin (or half the
    /// lifetime for tokens that live shorter than twice the margin).
    refresh_after: Instant,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"[REDACTED]")
            .field("generation", &self.generation)
            .finish()
    }
}

/// The access-token cache of one shop.
pub(crate) struct TokenCache {
    lwa: Url,
    credentials: Credentials,
    current: Mutex<Option<AccessToken>>,
    generation: AtomicU64,
    refreshes: AtomicU64,
    /// LWA refused the current client secret and accepted the staged one: use that from now on.
    next_secret: AtomicBool,
    /// `Some(scope)`: an application (grantless) token from `client_credentials`; `None`: the
    /// seller's token from its refresh token.
    scope: Option<&'static str>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl TokenCache {
    pub(crate) fn new(lwa: Url, credentials: Credentials) -> Self {
        Self {
            lwa,
            credentials,
            current: Mutex::new(None),
            generation: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            next_secret: AtomicBool::new(false),
            scope: None,
        }
    }

    /// The cache of the application's grantless token for `scope` (the refresh token of
    /// `credentials` is not used).
    pub(crate) fn grantless(lwa: Url, credentials: Credentials, scope: &'static str) -> Self {
        Self {
            scope: Some(scope),
            ..Self::new(lwa, credentials)
        }
    }

    /// Whether LWA accepted only the staged next client secret (the rotation should be promoted).
    pub(crate) fn uses_next_secret(&self) -> bool {
        self.next_secret.load(Ordering::Relaxed)
    }

    /// How many times this cache called LWA successfully.
    pub(crate) fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// A valid access token: the cached one unless it expires within `margin`.
    pub(crate) async fn get(
        &self,
        http: &Client,
        margin: Duration,
        retry: &RetryPolicy,
    ) -> Result<AccessToken> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref()
            && token.refresh_after > Instant::now()
        {
            return Ok(token.clone());
        }
        let token = self.fetch(http, margin, retry).await?;
        *current = Some(token.clone());
        Ok(token)
    }

    /// Forgets the token of `generation` (Amazon said it is expired or invalid). A token
    /// refreshed meanwhile by another task is kept.
    pub(crate) async fn invalidate(&self, generation: u64) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|t| t.generation == generation) {
            *current = None;
        }
    }

    async fn fetch(
        &self,
        http: &Client,
        margin: Duration,
        retry: &RetryPolicy,
    ) -> Result<AccessToken> {
        let span = tracing::info_span!("lwa.refresh", status = tracing::field::Empty);
        async {
            let mut attempt = 0;
            loop {
                match self.fetch_rotating(http, margin).await {
                    Ok(token) => return Ok(token),
                    Err(err @ Error::Authorization { .. }) => return Err(err),
                    Err(err) if attempt < retry.max_retries && err.is_retryable() => {
                        let delay = retry.backoff(attempt);
                        tracing::warn!(error = %err, attempt, delay_ms = delay.as_millis() as u64, "LWA refresh failed, retrying");
                        attempt += 1;
                        tokio::time::sleep(delay).await;
                    }
                    Err(err) => return Err(err),
                }
            }
        }
        .instrument(span)
        .await
    }

    /// One token request with the secret in use; when LWA answers `invalid_client` and a next
    /// secret is staged, one more with that (Amazon switched to it), which then stays in use.
    async fn fetch_rotating(&self, http: &Client, margin: Duration) -> Result<AccessToken> {
        let next = self.credentials.client_secret_next.as_ref();
        let current = match next {
            Some(next) if self.next_secret.load(Ordering::Relaxed) => next,
            _ => &self.credentials.client_secret,
        };
        match self.fetch_once(http, margin, current).await {
            Err(Error::Authorization {
                kind: AuthorizationKind::InvalidClient,
                ..
            }) if next.is_some() && !self.next_secret.load(Ordering::Relaxed) => {
                let token = self
                    .fetch_once(http, margin, next.expect("checked"))
                    .await?;
                self.next_secret.store(true, Ordering::Relaxed);
                tracing::warn!(
                    client_id = %self.credentials.client_id,
                    "LWA refused the current client secret and accepted the staged one; promote it (ctl shop promote-secret)"
                );
                Ok(token)
            }
            other => other,
        }
    }

    async fn fetch_once(
        &self,
        http: &Client,
        margin: Duration,
        client_secret: &SecretString,
    ) -> Result<AccessToken> {
        let form = match self.scope {
            None => [
                ("grant_type", "refresh_token"),
                (
                    "refresh_token",
                    self.credentials.refresh_token.expose_secret(),
                ),
                ("client_id", self.credentials.client_id.as_str()),
                ("client_secret", client_secret.expose_secret()),
            ],
            Some(scope) => [
                ("grant_type", "client_credentials"),
                ("scope", scope),
                ("client_id", self.credentials.client_id.as_str()),
                ("client_secret", client_secret.expose_secret()),
            ],
        };
        let transport = |e: reqwest::Error| Error::Transport {
            operation: "lwa",
            kind: if e.is_timeout() {
                TransportKind::Timeout
            } else if e.is_connect() {
                TransportKind::Connect
            } else {
                TransportKind::Other
            },
            // reqwest errors carry the URL (no secrets: the form is in the body).
            message: e.without_url().to_string(),
        };
        let response = http
            .post(self.lwa.clone())
            .form(&form)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        tracing::Span::current().record("status", status.as_u16());
        let body = response.bytes().await.map_err(transport)?;
        if status.is_success() {
            let parsed: TokenResponse =
                serde_json::from_slice(&body).map_err(|e| Error::InvalidResponse {
                    operation: "lwa",
                    status: status.as_u16(),
                    message: e.to_string(),
                })?;
            // LWA tokens live 3600 s. Never let the margin swallow the whole lifetime.
            let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(3600));
            let usable = if lifetime > margin * 2 {
                lifetime - margin
            } else {
                lifetime / 2
            };
            let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
            self.refreshes.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                generation,
                expires_in = lifetime.as_secs(),
                "LWA access token refreshed"
            );
            return Ok(AccessToken {
                value: SecretString::from(parsed.access_token),
                generation,
                refresh_after: Instant::now() + usable,
            });
        }
        if let Ok(oauth) = serde_json::from_slice::<OAuthError>(&body)
            && (status.is_client_error() && status.as_u16() != 429)
        {
            return Err(Error::Authorization {
                kind: AuthorizationKind::from_code(&oauth.error),
                message: oauth.error_description.unwrap_or_default(),
            });
        }
        if status.is_client_error() && status.as_u16() != 429 {
            return Err(Error::Authorization {
                kind: AuthorizationKind::Other(format!("http_{}", status.as_u16())),
                message: "LWA refused the token request".to_owned(),
            });
        }
        Err(Error::Api {
            operation: "lwa",
            status: status.as_u16(),
            request_id: None,
            errors: vec![],
        })
    }
}

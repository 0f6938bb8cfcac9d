//! Typed errors of the SP-API client.
//!
//! Every error can be classified ([`Error::class`]) so that callers (the consumer driver, the
//! services) decide uniformly whether to retry later, persist a cursor, ask the operator to
//! re-authorize the shop, reconcile an unknown outcome, or give up.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Convenient result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One entry of Amazon's `{"errors":[...]}` body (the `Error` definition of every SP-API model).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// An error code that identifies the type of error that occurred (e.g. `InvalidInput`).
    pub code: String,
    /// A message that describes the error condition.
    pub message: String,
    /// Additional details that can help the caller understand or fix the issue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

/// Why Login with Amazon refused to issue an access token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthorizationKind {
    /// `invalid_grant`: the refresh token was revoked or expired (the seller de-authorized the
    /// app). The shop must be re-authorized.
    InvalidGrant,
    /// `invalid_client`: the client id/secret is wrong (for example the secret was rotated).
    InvalidClient,
    /// `unauthorized_client`: the app may not use this grant.
    UnauthorizedClient,
    /// Any other OAuth error code LWA returned (kept verbatim).
    Other(String),
}

impl AuthorizationKind {
    /// Maps an OAuth 2 `error` code to a kind.
    pub fn from_code(code: &str) -> Self {
        match code {
            "invalid_grant" => Self::InvalidGrant,
            "invalid_client" => Self::InvalidClient,
            "unauthorized_client" => Self::UnauthorizedClient,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The OAuth 2 `error` code.
    pub fn code(&self) -> &str {
        match self {
            Self::InvalidGrant => "invalid_grant",
            Self::InvalidClient => "invalid_client",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::Other(code) => code,
        }
    }
}

impl std::fmt::Display for AuthorizationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// What went wrong at the transport level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportKind {
    /// The request or response timed out.
    Timeout,
    /// No connection could be established (the request never reached Amazon).
    Connect,
    /// The connection broke while sending the request or reading the response.
    Other,
}

/// How a caller should react to an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorClass {
    /// Transient (network, 5xx, garbage body after the client's own bounded retries): try the
    /// whole step again later.
    Transient,
    /// Amazon's quota is exhausted for a while: persist the cursor and continue at `retry_at`.
    Throttled,
    /// The shop's authorization is gone (`invalid_grant`/`invalid_client`): show "shop needs
    /// re-authorization", never retry in a loop.
    Reauthorize,
    /// The request may or may not have taken effect (`createFeed`, `confirmShipment`): look up
    /// what happened before sending again.
    Reconcile,
    /// The request is wrong or refused (4xx, validation): retrying the same request won't help.
    Permanent,
}

/// Errors returned by the SP-API client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// LWA refused the refresh token or the client credentials. Never retried.
    #[error("LWA authorization failed ({kind}): {message}")]
    Authorization {
        /// The OAuth error.
        kind: AuthorizationKind,
        /// LWA's `error_description`.
        message: String,
    },

    /// Amazon answered with an error status and (usually) an `{"errors":[...]}` body.
    #[error("{operation}: HTTP {status}: {}", summarize(errors))]
    Api {
        /// SP-API operation name (e.g. `searchOrders`).
        operation: &'static str,
        /// HTTP status code.
        status: u16,
        /// `x-amzn-RequestId`, useful when contacting Amazon support.
        request_id: Option<String>,
        /// The parsed error list (empty when the body had none).
        errors: Vec<ApiError>,
    },

    /// The shared rate limiter would have to wait longer than the configured maximum (or Amazon
    /// kept answering 429): continue at `retry_at` instead of sleeping.
    #[error("{operation}: throttled until {retry_at}")]
    Throttled {
        /// SP-API operation name.
        operation: &'static str,
        /// Earliest time a request is expected to be admitted.
        retry_at: DateTime<Utc>,
    },

    /// A non-idempotent request (`createFeed`, `confirmShipment`) may or may not have been
    /// applied by Amazon; it is never re-sent blindly. The caller reconciles (e.g. `getFeeds`).
    #[error("{operation}: outcome unknown ({reason}); reconcile before retrying")]
    UnknownOutcome {
        /// SP-API operation name.
        operation: &'static str,
        /// What happened (timeout, 5xx status, unreadable body...).
        reason: String,
    },

    /// The network failed and the bounded retries were exhausted (or not allowed).
    #[error("{operation}: transport error ({kind:?}): {message}")]
    Transport {
        /// SP-API operation name (or `lwa`/`uploadFeedDocument`/`downloadDocument`).
        operation: &'static str,
        /// Timeout, connection or other.
        kind: TransportKind,
        /// Description (never contains tokens or bodies).
        message: String,
    },

    /// A success status came with a body this client could not parse (after bounded retries).
    #[error("{operation}: invalid response (HTTP {status}): {message}")]
    InvalidResponse {
        /// SP-API operation name.
        operation: &'static str,
        /// HTTP status code.
        status: u16,
        /// Parser message.
        message: String,
    },

    /// A request was rejected before sending because it breaks Amazon's documented rules.
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// A downloaded document could not be decompressed, decoded or parsed.
    #[error("document error: {0}")]
    Document(String),

    /// The shared rate limiter's database failed.
    #[error("rate limiter database error: {0}")]
    Database(#[from] sqlx::Error),

    /// The client is misconfigured (bad URL, HTTP client construction).
    #[error("configuration error: {0}")]
    Config(String),
}

fn summarize(errors: &[ApiError]) -> String {
    if errors.is_empty() {
        return "no error body".to_owned();
    }
    errors
        .iter()
        .map(|e| format!("{}: {}", e.code, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// How the caller should react.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Authorization { .. } => ErrorClass::Reauthorize,
            Error::Api { status, .. } => match *status {
                429 => ErrorClass::Throttled,
                408 | 500..=599 => ErrorClass::Transient,
                _ => ErrorClass::Permanent,
            },
            Error::Throttled { .. } => ErrorClass::Throttled,
            Error::UnknownOutcome { .. } => ErrorClass::Reconcile,
            Error::Transport { .. } | Error::InvalidResponse { .. } | Error::Database(_) => {
                ErrorClass::Transient
            }
            Error::InvalidRequest(_) | Error::Document(_) | Error::Config(_) => {
                ErrorClass::Permanent
            }
        }
    }

    /// True when trying the same step again later can succeed (transient or throttled).
    /// Authorization failures, unknown outcomes and 4xx errors are not retryable.
    pub fn is_retryable(&self) -> bool {
        matches!(self.class(), ErrorClass::Transient | ErrorClass::Throttled)
    }

    /// True when the shop must be re-authorized by the seller (LWA `invalid_grant` or
    /// `invalid_client`).
    pub fn needs_reauthorization(&self) -> bool {
        matches!(
            self,
            Error::Authorization {
                kind: AuthorizationKind::InvalidGrant | AuthorizationKind::InvalidClient,
                ..
            }
        )
    }

    /// The HTTP status when Amazon answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::InvalidResponse { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Amazon's error list (empty for non-API errors).
    pub fn api_errors(&self) -> &[ApiError] {
        match self {
            Error::Api { errors, .. } => errors,
            _ => &[],
        }
    }

    /// When a throttled caller should continue.
    pub fn retry_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Error::Throttled { retry_at, .. } => Some(*retry_at),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let auth = Error::Authorization {
            kind: AuthorizationKind::from_code("invalid_grant"),
            message: "revoked".into(),
        };
        assert_eq!(auth.class(), ErrorClass::Reauthorize);
        assert!(!auth.is_retryable());
        assert!(auth.needs_reauthorization());

        let api = |status| Error::Api {
            operation: "getOrder",
            status,
            request_id: None,
            errors: vec![],
        };
        assert!(api(503).is_retryable());
        assert!(api(429).is_retryable());
        assert!(!api(400).is_retryable());
        assert_eq!(api(404).class(), ErrorClass::Permanent);

        let unknown = Error::UnknownOutcome {
            operation: "createFeed",
            reason: "timeout".into(),
        };
        assert_eq!(unknown.class(), ErrorClass::Reconcile);
        assert!(!unknown.is_retryable());
        assert!(
            Error::Throttled {
                operation: "searchOrders",
                retry_at: Utc::now()
            }
            .retry_at()
            .is_some()
        );
    }

    #[test]
    fn display_keeps_code_and_message() {
        let e = Error::Api {
            operation: "createFeed",
            status: 400,
            request_id: Some("r1".into()),
            errors: vec![ApiError {
                code: "InvalidInput".into(),
                message: "Invalid input".into(),
                details: None,
            }],
        };
        assert_eq!(
            e.to_string(),
            "createFeed: HTTP 400: InvalidInput: Invalid input"
        );
    }
}

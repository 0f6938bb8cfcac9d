//! Login with Amazon (`POST /auth/o2/token`) and the Tokens API (restricted data tokens).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use chrono::Duration;
use serde_json::json;

use super::http::{ApiError, call, json_response, parse_json_body};
use crate::config::DEFAULT_SELLER_ID;
use crate::ops::Op;
use crate::sim::Sim;
use crate::state::AccessToken;

/// Scopes of the client-credentials grant: the Notifications API's and the secret-rotation one.
pub(crate) const GRANTLESS_SCOPES: [&str; 2] = [
    "sellingpartnerapi::notifications",
    "sellingpartnerapi::client_credential:rotation",
];

/// An LWA error as Amazon's token endpoint returns it.
fn lwa_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut resp = json_response(
        status,
        &json!({"error_description": description, "error": error}),
    );
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    resp
}

fn missing(param: &str) -> Response {
    lwa_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        &format!("The request is missing a required parameter : {param}"),
    )
}

fn form_fields(headers: &HeaderMap, body: &[u8]) -> Option<Vec<(String, String)>> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ct.contains("json") {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        let obj = v.as_object()?;
        Some(
            obj.iter()
                .filter_map(|(k, v)| {
                    let s = match v {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Number(n) => n.to_string(),
                        _ => return None,
                    };
                    Some((k.clone(), s))
                })
                .collect(),
        )
    } else {
        Some(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
}

/// `POST /auth/o2/token`
pub(crate) async fn token(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let sim2 = sim.clone();
    let req_headers = headers.clone();
    call(&sim, Op::LwaToken, &headers, |_, _| async move {
        let headers = req_headers;
        let Some(fields) = form_fields(&headers, &body) else {
            return Ok(lwa_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The request has an invalid parameter : body",
            ));
        };
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.clone())
        };
        let Some(grant_type) = get("grant_type") else {
            return Ok(missing("grant_type"));
        };
        let client_id = get("client_id");
        let client_secret = get("client_secret");
        let (Some(client_id), Some(client_secret)) = (client_id, client_secret) else {
            return Ok(lwa_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client authentication failed",
            ));
        };
        let refresh_token = match grant_type.as_str() {
            "refresh_token" => match get("refresh_token") {
                Some(t) => Some(t),
                None => return Ok(missing("refresh_token")),
            },
            "client_credentials" => {
                let Some(scope) = get("scope") else {
                    return Ok(missing("scope"));
                };
                // Grantless scopes; only the Notifications API is simulated.
                if !scope
                    .split_whitespace()
                    .all(|s| GRANTLESS_SCOPES.contains(&s))
                {
                    return Ok(lwa_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_scope",
                        "An unknown scope was requested",
                    ));
                }
                None
            }
            _ => {
                return Ok(lwa_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "The authorization grant type is not supported by the authorization server",
                ));
            }
        };

        let mut st = sim2.lock();
        // Which seller? Registered credentials must match exactly; anything else maps to
        // the default seller.
        let by_client: Vec<_> = st
            .sellers
            .iter()
            .filter(|s| s.client_id == client_id)
            .cloned()
            .collect();
        let by_token = refresh_token
            .as_ref()
            .and_then(|t| st.sellers.iter().find(|s| &s.refresh_token == t).cloned());
        let seller_id = if !by_client.is_empty() {
            if !by_client.iter().any(|s| s.client_secret == client_secret) {
                return Ok(lwa_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "Client authentication failed",
                ));
            }
            match &refresh_token {
                Some(t) => match by_client
                    .iter()
                    .find(|s| &s.refresh_token == t && s.client_secret == client_secret)
                {
                    Some(s) => s.seller_id.clone(),
                    None => {
                        return Ok(lwa_error(
                            StatusCode::BAD_REQUEST,
                            "invalid_grant",
                            "The request has an invalid grant parameter : refresh_token",
                        ));
                    }
                },
                None => by_client[0].seller_id.clone(),
            }
        } else if by_token.is_some() {
            // A registered refresh token presented by another client.
            return Ok(lwa_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "The request has an invalid grant parameter : refresh_token",
            ));
        } else {
            DEFAULT_SELLER_ID.to_string()
        };

        let lifetime = st.token_lifetime_secs(sim2.config());
        let token = format!("Atza|{}", st.random_token(180));
        let expires_at = st.now() + Duration::milliseconds((lifetime * 1000.0) as i64);
        let grantless = refresh_token.is_none();
        st.tokens.insert(
            token.clone(),
            AccessToken {
                seller_id,
                client_id,
                grantless,
                expires_at,
                restricted: false,
            },
        );
        drop(st);
        tracing::debug!(grant_type = %grant_type, "issued LWA access token");
        let mut body = json!({
            "access_token": token,
            "token_type": "bearer",
            "expires_in": lifetime.round() as u64,
        });
        if let Some(rt) = refresh_token {
            body["refresh_token"] = json!(rt);
        }
        let mut resp = json_response(StatusCode::OK, &body);
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=UTF-8"),
        );
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(resp)
    })
    .await
}

/// `POST /tokens/2021-03-01/restrictedDataToken`
pub(crate) async fn create_restricted_data_token(
    State(sim): State<Sim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    call(
        &sim,
        Op::CreateRestrictedDataToken,
        &headers,
        |sim2, caller| async move {
            let v = parse_json_body(&body)?;
            let resources = v
                .get("restrictedResources")
                .and_then(|r| r.as_array())
                .ok_or_else(|| ApiError::invalid("restrictedResources is required."))?;
            if resources.is_empty() || resources.len() > 50 {
                return Err(ApiError::invalid(
                    "restrictedResources must contain 1 to 50 entries.",
                ));
            }
            for (i, r) in resources.iter().enumerate() {
                let method = r.get("method").and_then(|m| m.as_str()).unwrap_or("");
                let path = r.get("path").and_then(|m| m.as_str()).unwrap_or("");
                if !matches!(method, "GET" | "PUT" | "POST" | "DELETE") {
                    return Err(ApiError::invalid(format!(
                        "restrictedResources[{i}].method must be GET, PUT, POST or DELETE."
                    )));
                }
                if !path.starts_with('/') {
                    return Err(ApiError::invalid(format!(
                        "restrictedResources[{i}].path must be an SP-API path."
                    )));
                }
            }
            let mut st = sim2.lock();
            let lifetime = st.token_lifetime_secs(sim2.config());
            let token = format!("Atz.sprdt|{}", st.random_token(120));
            let expires_at = st.now() + Duration::milliseconds((lifetime * 1000.0) as i64);
            st.tokens.insert(
                token.clone(),
                AccessToken {
                    seller_id: caller.seller_id,
                    client_id: caller.client_id,
                    grantless: false,
                    expires_at,
                    restricted: true,
                },
            );
            Ok(json_response(
                StatusCode::OK,
                &json!({"restrictedDataToken": token, "expiresIn": lifetime.round() as u64}),
            ))
        },
    )
    .await
}

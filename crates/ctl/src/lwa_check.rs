//! `ctl shop add` asks LWA once whether the credentials work before it saves them.

use secrecy::ExposeSecret;
use spapi::{AuthorizationKind, ClientConfig, Credentials, Endpoints, ShopConfig};
use sqlx::PgPool;
use store::shops::NewShop;

/// One LWA token request with the new shop's credentials (no retries of a refusal). Amazon's
/// refusal becomes an error that names the credential to fix; nothing is saved then.
pub async fn check(pool: &PgPool, shop: &NewShop) -> anyhow::Result<()> {
    let endpoints = Endpoints::new(&shop.sp_api_endpoint, &shop.lwa_endpoint)
        .map_err(|e| anyhow::anyhow!("invalid endpoint: {e}"))?;
    let credentials = Credentials::new(
        shop.client_id.clone(),
        shop.client_secret.expose_secret(),
        shop.refresh_token.expose_secret(),
    );
    let api = spapi::SpApi::new(pool.clone(), ClientConfig::default())
        .map_err(|e| anyhow::anyhow!("cannot build the SP-API client: {e}"))?;
    let handle =
        api.shop(ShopConfig::new(shop.seller_id.clone(), credentials).with_endpoints(endpoints));
    match handle.authorize().await {
        Ok(()) => Ok(()),
        Err(spapi::Error::Authorization { kind, message }) => Err(anyhow::anyhow!(
            "{}; nothing was saved (LWA said {kind}: {message})",
            refusal(&kind)
        )),
        Err(e) => Err(anyhow::anyhow!(
            "could not check the credentials with LWA at {}: {e}; nothing was saved. \
             To register without the check (offline), add --skip-credential-check",
            shop.lwa_endpoint
        )),
    }
}

/// What to fix, by LWA's OAuth error code.
fn refusal(kind: &AuthorizationKind) -> String {
    match kind {
        AuthorizationKind::InvalidClient => format!(
            "LWA refused the app's client credentials: check {} (the client secret) and the client id \
             (--client-id / LWA_CLIENT_ID) against Seller Central's Developer Central",
            crate::shop::CLIENT_SECRET_VAR
        ),
        AuthorizationKind::InvalidGrant => format!(
            "LWA refused the refresh token: {} is wrong, expired or revoked, or belongs to another app; \
             have the seller authorize the app again and use the new token",
            crate::shop::REFRESH_TOKEN_VAR
        ),
        AuthorizationKind::UnauthorizedClient => format!(
            "LWA says this app may not use the refresh token in {}: check that the app is the one \
             the seller authorized",
            crate::shop::REFRESH_TOKEN_VAR
        ),
        other => format!("LWA refused the credentials ({other})"),
    }
}

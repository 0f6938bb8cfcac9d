//! The SP-API handle of a shop, built the same way by every service.

use sqlx::PgConnection;

/// The SP-API handle of `shop`: its endpoints and its credentials decrypted from the store,
/// with the staged next client secret during a rotation (the client switches to it when LWA
/// refuses the current one). Handles for the same credentials share one access-token cache.
///
/// Endpoints that do not parse are [`store::StoreError::Corrupt`] (they are validated when a
/// shop is registered).
pub async fn shop_api(
    conn: &mut PgConnection,
    keys: &crypto::Keyring,
    api: &spapi::SpApi,
    shop: &domain::shop::Shop,
) -> Result<spapi::Shop, store::StoreError> {
    let creds = store::shops::credentials(conn, keys, shop.id).await?;
    let endpoints = spapi::Endpoints::new(&shop.sp_api_endpoint, &shop.lwa_endpoint)
        .map_err(|e| store::StoreError::Corrupt(format!("shop {}: endpoints: {e}", shop.code)))?;
    let credentials = spapi::Credentials {
        client_id: creds.client_id,
        client_secret: creds.client_secret,
        client_secret_next: creds.client_secret_next,
        refresh_token: creds.refresh_token,
    };
    Ok(api.shop(
        spapi::ShopConfig::new(shop.seller_id.clone(), credentials).with_endpoints(endpoints),
    ))
}

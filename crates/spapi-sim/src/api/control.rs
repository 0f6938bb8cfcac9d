//! The `/_sim/` control API (never part of Amazon's surface).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::http::{Query, json_response};
use crate::config::DEFAULT_SELLER_ID;
use crate::model::{ListingSpec, MarketplaceMix, OrderSpec, StatusChange, fmt_time_ms};
use crate::sim::Sim;
use crate::state::{Fault, FaultTrigger, SimError, SimOptions};

pub(crate) fn router() -> Router<Sim> {
    Router::new()
        .route("/health", get(health))
        .route("/orders", post(create_order).get(list_orders))
        .route("/orders/generate", post(generate_orders))
        .route("/orders/{order_id}", get(get_order))
        .route("/orders/{order_id}/status", post(set_status))
        .route("/listings", get(list_listings))
        .route("/listings/{sku}", get(get_listing).put(put_listing))
        .route("/calls", get(calls))
        .route(
            "/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/reset", post(reset))
        .route("/sellers", post(register_seller))
        .route("/clock", get(clock))
        .route("/clock/advance", post(advance_clock))
        .route("/tokens/expire", post(expire_tokens))
        .route("/options", get(get_options).put(put_options))
        .route("/feeds", get(list_feeds))
        .route("/feeds/complete", post(complete_feeds))
        .route("/feeds/{feed_id}", get(get_feed))
        .route("/notifications", get(notifications))
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    json_response(status, &json!({"error": msg.into()}))
}

fn sim_error(e: SimError) -> Response {
    let status = match e {
        SimError::OrderNotFound(_) | SimError::ListingNotFound(_) | SimError::FeedNotFound(_) => {
            StatusCode::NOT_FOUND
        }
        SimError::OrderExists(_) | SimError::InvalidTransition { .. } => StatusCode::CONFLICT,
        SimError::UnknownOperation(_) | SimError::Invalid(_) => StatusCode::BAD_REQUEST,
    };
    error(status, e.to_string())
}

fn body<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, Box<Response>> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("invalid JSON body: {e}"),
        ))
    })
}

fn body_required<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(bytes).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("invalid JSON body: {e}"),
        ))
    })
}

fn ok<T: serde::Serialize>(status: StatusCode, v: &T) -> Response {
    match serde_json::to_value(v) {
        Ok(v) => json_response(status, &v),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn health() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

async fn create_order(State(sim): State<Sim>, bytes: Bytes) -> Response {
    let spec: OrderSpec = match body(&bytes) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match sim.create_order(spec) {
        Ok(o) => ok(StatusCode::CREATED, &o),
        Err(e) => sim_error(e),
    }
}

async fn list_orders(State(sim): State<Sim>) -> Response {
    ok(StatusCode::OK, &sim.orders())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct GenerateBody {
    count: usize,
    seed: Option<u64>,
    seller_id: Option<String>,
    mix: Option<MarketplaceMix>,
}

async fn generate_orders(State(sim): State<Sim>, bytes: Bytes) -> Response {
    let b: GenerateBody = match body(&bytes) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if b.count > 100_000 {
        return error(StatusCode::BAD_REQUEST, "count must be at most 100000");
    }
    let seed = b.seed.unwrap_or(sim.config().seed);
    let seller = b.seller_id.unwrap_or_else(|| DEFAULT_SELLER_ID.to_string());
    let orders = sim.generate_orders_for(&seller, b.count, seed, b.mix.unwrap_or_default());
    let ids: Vec<&str> = orders.iter().map(|o| o.order_id.as_str()).collect();
    json_response(StatusCode::CREATED, &json!({"orderIds": ids}))
}

async fn get_order(State(sim): State<Sim>, Path(order_id): Path<String>) -> Response {
    match sim.order(&order_id) {
        Some(o) => ok(StatusCode::OK, &o),
        None => sim_error(SimError::OrderNotFound(order_id)),
    }
}

async fn set_status(
    State(sim): State<Sim>,
    Path(order_id): Path<String>,
    bytes: Bytes,
) -> Response {
    let change: StatusChange = match body_required(&bytes) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match sim.set_order_status(&order_id, change) {
        Ok(o) => ok(StatusCode::OK, &o),
        Err(e) => sim_error(e),
    }
}

async fn list_listings(State(sim): State<Sim>) -> Response {
    ok(StatusCode::OK, &sim.listings())
}

async fn get_listing(
    State(sim): State<Sim>,
    Path(sku): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let seller = q.one("sellerId").unwrap_or(DEFAULT_SELLER_ID);
    match sim.listing_of(seller, &sku) {
        Some(l) => ok(StatusCode::OK, &l),
        None => sim_error(SimError::ListingNotFound(sku)),
    }
}

async fn put_listing(State(sim): State<Sim>, Path(sku): Path<String>, bytes: Bytes) -> Response {
    let spec: ListingSpec = match body(&bytes) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    ok(StatusCode::OK, &sim.put_listing_spec(&sku, spec))
}

async fn calls(State(sim): State<Sim>) -> Response {
    ok(StatusCode::OK, &sim.call_counts())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FaultBody {
    operation: String,
    fault: Fault,
    count: Option<u32>,
    probability: Option<f64>,
}

async fn add_fault(State(sim): State<Sim>, bytes: Bytes) -> Response {
    let b: FaultBody = match body_required(&bytes) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let trigger = match (b.count, b.probability) {
        (Some(n), None) => FaultTrigger::Count(n),
        (None, Some(p)) => FaultTrigger::Probability(p),
        (None, None) => FaultTrigger::Count(1),
        (Some(_), Some(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "give either count or probability, not both",
            );
        }
    };
    match sim.inject_fault(&b.operation, b.fault, trigger) {
        Ok(()) => json_response(StatusCode::CREATED, &json!({"status": "injected"})),
        Err(e) => sim_error(e),
    }
}

async fn list_faults(State(sim): State<Sim>) -> Response {
    let faults = sim.lock().faults.clone();
    ok(StatusCode::OK, &faults)
}

async fn clear_faults(State(sim): State<Sim>) -> Response {
    sim.clear_faults();
    json_response(StatusCode::OK, &json!({"status": "cleared"}))
}

async fn reset(State(sim): State<Sim>) -> Response {
    sim.reset();
    json_response(StatusCode::OK, &json!({"status": "reset"}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SellerBody {
    client_id: String,
    client_secret: String,
    refresh_token: String,
    seller_id: String,
}

async fn register_seller(State(sim): State<Sim>, bytes: Bytes) -> Response {
    let b: SellerBody = match body_required(&bytes) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    sim.register_seller(
        &b.client_id,
        &b.client_secret,
        &b.refresh_token,
        &b.seller_id,
    );
    json_response(StatusCode::CREATED, &json!({"sellerId": b.seller_id}))
}

async fn clock(State(sim): State<Sim>) -> Response {
    json_response(StatusCode::OK, &json!({"now": fmt_time_ms(sim.now())}))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AdvanceBody {
    seconds: f64,
}

async fn advance_clock(State(sim): State<Sim>, bytes: Bytes) -> Response {
    let b: AdvanceBody = match body(&bytes) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if !(b.seconds >= 0.0 && b.seconds.is_finite()) {
        return error(
            StatusCode::BAD_REQUEST,
            "seconds must be a non-negative number",
        );
    }
    sim.advance_clock(std::time::Duration::from_secs_f64(b.seconds));
    json_response(StatusCode::OK, &json!({"now": fmt_time_ms(sim.now())}))
}

async fn expire_tokens(State(sim): State<Sim>) -> Response {
    sim.expire_access_tokens();
    json_response(StatusCode::OK, &json!({"status": "expired"}))
}

async fn get_options(State(sim): State<Sim>) -> Response {
    ok(StatusCode::OK, &sim.options())
}

async fn put_options(State(sim): State<Sim>, bytes: Bytes) -> Response {
    // Partial update: fields not sent keep their current value.
    let patch: serde_json::Map<String, serde_json::Value> = match body(&bytes) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let mut current = match serde_json::to_value(sim.options()) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    current.extend(patch);
    let o: SimOptions = match serde_json::from_value(serde_json::Value::Object(current)) {
        Ok(o) => o,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid options: {e}")),
    };
    match sim.set_options(o) {
        Ok(()) => ok(StatusCode::OK, &sim.options()),
        Err(e) => sim_error(e),
    }
}

async fn list_feeds(State(sim): State<Sim>) -> Response {
    ok(StatusCode::OK, &sim.feeds())
}

async fn get_feed(State(sim): State<Sim>, Path(feed_id): Path<String>) -> Response {
    match sim.feed(&feed_id) {
        Some(f) => ok(StatusCode::OK, &f),
        None => sim_error(SimError::FeedNotFound(feed_id)),
    }
}

async fn complete_feeds(State(sim): State<Sim>) -> Response {
    sim.complete_feeds();
    json_response(StatusCode::OK, &json!({"status": "completed"}))
}

async fn notifications(State(sim): State<Sim>) -> Response {
    ok(StatusCode::OK, &sim.notification_counter())
}

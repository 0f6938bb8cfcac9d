//! The single-order import of `ctl import-order`: one order by id (`getOrder`), for the order
//! an operator knows is missing, recorded in the ledger as an order-ingest run of mode `single`.

use chrono::Utc;
use serde::Serialize;
use spapi::orders::FulfilledBy;
use sqlx::PgPool;
use store::{
    api_log, instructions,
    runs::{self, NewRun, RunStatus},
};
use uuid::Uuid;

use crate::{
    ACTION,
    apply::{Error, apply_orders},
    counts::Counts,
    included,
};

/// What `ctl import-order` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SingleImport {
    /// The ledger row of the import.
    pub run_id: Uuid,
    /// The order asked for.
    pub amazon_order_id: String,
    /// `new`, `updated`, `unchanged` or `refused`.
    pub result: String,
    /// The order's instruction, when it has one.
    pub instruction_id: Option<Uuid>,
    /// SKUs of the instruction's lines without a product.
    pub unmapped_skus: Vec<String>,
    /// What happened, for the operator.
    pub message: String,
}

/// Imports one order by id (getOrder): for the order an operator knows is missing. Only
/// merchant-fulfilled PENDING and UNSHIPPED orders are imported; the run is in the ledger.
///
/// `handle` is the shop's SP-API handle (`runtime::shop_api`); `events_exchange` the bus's
/// events exchange (`bus::Topology::events_exchange`).
pub async fn import_order(
    pool: &PgPool,
    keys: &crypto::Keyring,
    handle: &spapi::Shop,
    events_exchange: &str,
    shop_id: Uuid,
    amazon_order_id: &str,
    requested_by: &str,
) -> Result<SingleImport, Error> {
    let started = Utc::now();
    let order = handle.get_order(amazon_order_id, &included::IMPORT).await?;
    let mut tx = pool.begin().await?;
    let run_id = runs::insert(
        &mut tx,
        &NewRun {
            shop_id,
            action: ACTION,
            mode: Some("single"),
            status: RunStatus::Running,
            command_id: None,
            requested_by: Some(requested_by),
        },
    )
    .await?;
    let mut counts = Counts::default();
    counts.tally.call("getOrder");
    let status = order.fulfillment_status().map(|s| s.as_str().to_owned());
    let importable = matches!(status.as_deref(), Some("PENDING" | "UNSHIPPED"))
        && order
            .fulfillment
            .as_ref()
            .and_then(|f| f.fulfilled_by.as_ref())
            .is_none_or(|f| *f == FulfilledBy::Merchant);
    let mut single = SingleImport {
        run_id,
        amazon_order_id: amazon_order_id.to_owned(),
        result: "refused".into(),
        instruction_id: None,
        unmapped_skus: vec![],
        message: String::new(),
    };
    if !importable {
        single.message = format!(
            "order {amazon_order_id} is {} ({}): only merchant-fulfilled PENDING and UNSHIPPED orders are imported",
            status.as_deref().unwrap_or("of unknown status"),
            order
                .fulfillment
                .as_ref()
                .and_then(|f| f.fulfilled_by.as_ref())
                .map(|f| f.as_str().to_owned())
                .unwrap_or_else(|| "fulfiller unknown".into()),
        );
    } else {
        let before = counts.clone();
        apply_orders(
            &mut tx,
            keys,
            events_exchange,
            shop_id,
            Some(run_id),
            std::slice::from_ref(&order),
            &mut counts,
        )
        .await?;
        let existing = instructions::by_order(&mut tx, shop_id, amazon_order_id).await?;
        single.instruction_id = existing.map(|i| i.id);
        single.result = if counts.new > before.new {
            "new"
        } else if counts.updated > before.updated {
            "updated"
        } else if counts.failed > before.failed {
            "refused"
        } else {
            "unchanged"
        }
        .into();
        single.message = format!("order {amazon_order_id}: {}", single.result);
        single.unmapped_skus =
            instructions::lines(&mut tx, single.instruction_id.unwrap_or_default())
                .await?
                .into_iter()
                .filter(|l| l.product_id.is_none())
                .map(|l| l.sku)
                .collect();
    }
    counts.tally.duration_ms = Some((Utc::now() - started).num_milliseconds());
    runs::finish(
        &mut tx,
        run_id,
        RunStatus::Succeeded,
        None,
        &serde_json::to_value(&counts).unwrap_or_default(),
        1,
        None,
    )
    .await?;
    api_log::write(
        &mut tx,
        &api_log::Entry {
            run_id: Some(run_id),
            amazon_order_id: Some(amazon_order_id),
            code: Some("import_order"),
            ..api_log::Entry::new(Some(shop_id), ACTION, api_log::Level::Info, &single.message)
        },
    )
    .await?;
    tx.commit().await?;
    Ok(single)
}

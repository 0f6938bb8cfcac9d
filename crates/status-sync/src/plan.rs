//! Plan: the mode from the command (`orders`: the announced order ids); in `changes` mode the lower bound of the query from the
//! ledger (the last watermark minus a small overlap; first run: one week back).

use chrono::{DateTime, Utc};
use domain::messages::{Action, CommandParams, StatusSyncMode};
use domain::window::OVERLAP;
use job_api::{JobError, Planned};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use store::shops::ShopRecord;

use crate::{ACTION, FIRST_LOOKBACK};

/// What a run checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub mode: StatusSyncMode,
    /// `changes`: `lastUpdatedAfter` of every page.
    pub last_updated_after: Option<DateTime<Utc>>,
    /// `orders`: the orders Amazon announced, sorted and without repeats (the run's mode is
    /// `orders`; `mode` is unused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orders: Option<Vec<String>>,
    /// `changes` while Amazon announces the shop's order changes: the sweep (cancellations from
    /// the mirror, then `getOrder` of the unpaid instructions; `domain::notifications`).
    #[serde(default)]
    pub sweep: bool,
}

/// Plans a run from the trigger's parameters.
pub(crate) async fn plan(
    conn: &mut PgConnection,
    shop: &ShopRecord,
    params: &CommandParams,
    now: DateTime<Utc>,
) -> Result<Planned<Plan>, JobError> {
    let mode = match params {
        CommandParams::StatusSync { mode } => *mode,
        CommandParams::StatusSyncOrders { order_ids } => {
            let mut orders = order_ids.clone();
            orders.sort();
            orders.dedup();
            return Ok(Planned::Run {
                plan: Plan {
                    mode: StatusSyncMode::Changes,
                    last_updated_after: None,
                    orders: Some(orders),
                    sweep: false,
                },
                mode: Some("orders".to_owned()),
            });
        }
        _ => return Ok(Planned::wrong_params(params, Action::StatusSync)),
    };
    let (name, last_updated_after, sweep) = match mode {
        StatusSyncMode::Changes => {
            let mark =
                store::runs::last_watermark(conn, shop.shop.id, ACTION, Some("changes")).await?;
            let after = mark.map_or(now - FIRST_LOOKBACK, |w| w - OVERLAP);
            let sweep = store::notifications::order_changes_announced(conn, shop.shop.id).await?;
            ("changes", Some(after), sweep)
        }
        StatusSyncMode::Reconcile => ("reconcile", None, false),
    };
    Ok(Planned::Run {
        plan: Plan {
            mode,
            last_updated_after,
            orders: None,
            sweep,
        },
        mode: Some(name.to_owned()),
    })
}

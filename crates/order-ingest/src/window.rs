//! Plan: the window of a run, from the command and the ledger (`domain::window`): differential
//! (from the last watermark, first run one week back), a range of at most one week, or the
//! last N hours.

use chrono::{DateTime, Utc};
use domain::messages::{Action, CommandParams};
use domain::window::{self, ImportMode};
use job_api::{JobError, Planned};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use store::shops::ShopRecord;

use crate::ACTION;

/// What a run imports: orders created in `[from, to)` (range and hours, and differential while
/// Amazon announces the shop's order changes), or, differential (`mirror`), what the shop's
/// order mirror holds that this import has not applied yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Differential: read the order mirror (`orders::mirror`) instead of a created-time window.
    #[serde(default)]
    pub mirror: bool,
}

/// Plans a run from the trigger's parameters; an impossible window refuses the trigger.
pub(crate) async fn plan(
    conn: &mut PgConnection,
    shop: &ShopRecord,
    params: &CommandParams,
    now: DateTime<Utc>,
) -> Result<Planned<Plan>, JobError> {
    let CommandParams::OrderIngest { mode } = *params else {
        return Ok(Planned::wrong_params(params, Action::OrderIngest));
    };
    // A differential run reads the order mirror; its window is what the ledger shows. The
    // mirror's watermark is Amazon's clock (`lastUpdatedBefore`), which may run ahead of ours:
    // never later than now, so the window is never empty. While Amazon announces the shop's
    // order changes, it asks for the orders created since the last run instead, with a shorter
    // overlap (`domain::notifications`): the notifications bring payments and cancellations.
    let differential = mode == ImportMode::Differential;
    let new_orders_only =
        differential && store::notifications::order_changes_announced(conn, shop.shop.id).await?;
    let watermark = if differential {
        store::runs::last_watermark(conn, shop.shop.id, ACTION, Some("differential"))
            .await?
            .map(|w| w.min(now - domain::window::OVERLAP))
    } else {
        None
    };
    // `window::plan` takes its overlap off the watermark: the new-orders poll's is shorter.
    let watermark = match watermark {
        Some(w) if new_orders_only => {
            Some(w + domain::window::OVERLAP - domain::notifications::NEW_ORDERS_OVERLAP)
        }
        w => w,
    };
    let name = Some(mode.name().to_owned());
    Ok(match window::plan(mode, watermark, now) {
        Ok(w) => Planned::Run {
            plan: Plan {
                from: w.from,
                to: w.to,
                mirror: differential && !new_orders_only,
            },
            mode: name,
        },
        Err(e) => Planned::Refuse {
            message: format!("trigger refused: {e}"),
            mode: name,
            details: serde_json::to_value(params).ok(),
        },
    })
}

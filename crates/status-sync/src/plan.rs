//! Plan: the mode from the command; in `changes` mode the lower bound of the query from the
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub mode: StatusSyncMode,
    /// `changes`: `lastUpdatedAfter` of every page.
    pub last_updated_after: Option<DateTime<Utc>>,
}

/// Plans a run from the trigger's parameters.
pub(crate) async fn plan(
    conn: &mut PgConnection,
    shop: &ShopRecord,
    params: &CommandParams,
    now: DateTime<Utc>,
) -> Result<Planned<Plan>, JobError> {
    let CommandParams::StatusSync { mode } = *params else {
        return Ok(Planned::wrong_params(params, Action::StatusSync));
    };
    let (name, last_updated_after) = match mode {
        StatusSyncMode::Changes => {
            let mark =
                store::runs::last_watermark(conn, shop.shop.id, ACTION, Some("changes")).await?;
            let after = mark.map_or(now - FIRST_LOOKBACK, |w| w - OVERLAP);
            ("changes", Some(after))
        }
        StatusSyncMode::Reconcile => ("reconcile", None),
    };
    Ok(Planned::Run {
        plan: Plan {
            mode,
            last_updated_after,
        },
        mode: Some(name.to_owned()),
    })
}

//! Shipment feedback over shipping instructions: the targets of a run and the API-status
//! transitions (印刷待ち → 印刷済み → 出荷済み / failed) made by shipment-feedback and by
//! feed-poller's shipment results.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use domain::eligibility::{order_today, today_in};
use sqlx::PgConnection;
use uuid::Uuid;

use domain::{ApiStatus, ApiTransition, InstructionStatus};

use crate::StoreError;

/// A shipping instruction that may be reported to Amazon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: Uuid,
    pub amazon_order_id: Option<String>,
    pub marketplace_id: Option<String>,
    pub tracking_numbers: Vec<String>,
    pub shipped_on: Option<NaiveDate>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub delivery_method_name: String,
    pub external_delivery_method: Option<String>,
    pub payment_method: String,
    pub resend_requested: bool,
}

impl Target {
    /// Problems found by the feed builder, as one operator-readable sentence.
    pub fn describe_problems(&self, problems: &[String]) -> String {
        format!("invalid shipment data: {}", problems.join("; "))
    }
}

/// The seed's targets (section 3): imported through the API, has a tracking number, API status
/// awaiting print, shipped, ship date = the order's today (in its marketplace's time zone,
/// `domain::eligibility::order_today`; `shop_tz` when unknown) or a resend requested by an
/// operator, and not part of a submission whose outcome is still unknown.
pub async fn targets(
    conn: &mut PgConnection,
    shop_id: Uuid,
    shop_tz: Tz,
    now: DateTime<Utc>,
) -> Result<Vec<Target>, StoreError> {
    let earliest = earliest_today(shop_tz, now);
    let rows = sqlx::query!(
        r#"SELECT si.id, si.amazon_order_id, si.marketplace_id, si.tracking_numbers, si.shipped_on, si.shipped_at,
                  si.delivery_method_name, dm.external_delivery_method AS "external_delivery_method?",
                  si.payment_method, si.source, si.status, si.api_status,
                  si.resend_requested_at IS NOT NULL AS "resend_requested!"
           FROM shipping_instructions si
           LEFT JOIN delivery_methods dm ON dm.id = si.delivery_method_id
           WHERE si.shop_id = $1 AND si.source = 'amazon_api' AND si.status = $4
             AND si.api_status = $3 AND cardinality(si.tracking_numbers) > 0
             AND (si.shipped_on >= $2 OR si.resend_requested_at IS NOT NULL)
             AND NOT EXISTS (SELECT 1 FROM feed_messages fm JOIN feed_submissions fs ON fs.id = fm.feed_submission_id
                             WHERE fm.instruction_id = si.id AND fs.state IN ('pending', 'in_flight'))
           ORDER BY si.shipped_at NULLS LAST, si.amazon_order_id"#,
        shop_id,
        earliest,
        ApiStatus::AwaitingPrint.as_str(),
        InstructionStatus::Shipped.as_str()
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|r| {
            // The domain's rule decides, on the order's own day; the query only narrows.
            let today = order_today(r.marketplace_id.as_deref(), shop_tz, now);
            let state = domain::eligibility::FeedbackState {
                imported_via_api: r.source == "amazon_api",
                tracking_numbers: &r.tracking_numbers,
                api_status: r.api_status.parse().unwrap_or(domain::ApiStatus::Printed),
                status: r.status.parse().unwrap_or(domain::InstructionStatus::Hold),
                shipped_on: if r.resend_requested {
                    Some(today)
                } else {
                    r.shipped_on
                },
            };
            domain::eligibility::feedback_eligible(&state, today)
        })
        .map(|r| Target {
            id: r.id,
            amazon_order_id: r.amazon_order_id,
            marketplace_id: r.marketplace_id,
            tracking_numbers: r.tracking_numbers,
            shipped_on: r.shipped_on,
            shipped_at: r.shipped_at,
            delivery_method_name: r.delivery_method_name,
            external_delivery_method: r.external_delivery_method,
            payment_method: r.payment_method,
            resend_requested: r.resend_requested,
        })
        .collect())
}

/// The earliest "today" over the marketplaces and `shop_tz` at `now` (a query narrows with it;
/// the order's own day decides).
fn earliest_today(shop_tz: Tz, now: DateTime<Utc>) -> NaiveDate {
    domain::Marketplace::ALL
        .iter()
        .map(|m| today_in(m.time_zone(), now))
        .fold(today_in(shop_tz, now), NaiveDate::min)
}

/// A shipment the automatic run will never send: shipped with a tracking number on an earlier
/// day than the order's today and still 印刷待ち, no resend asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateShipment {
    pub id: Uuid,
    pub shop_id: Uuid,
    pub amazon_order_id: String,
    pub shipped_on: NaiveDate,
    /// The first tracking number (what would be sent).
    pub tracking_number: String,
    /// When shipment-feedback raised its attention entry (once per instruction).
    pub noticed_at: Option<DateTime<Utc>>,
}

/// The late shipments of `shop_ids` at `now` ([`LateShipment`]); `shop_tz` gives each shop's
/// zone for orders without a known marketplace.
pub async fn late(
    conn: &mut PgConnection,
    shop_ids: &[Uuid],
    shop_tz: impl Fn(Uuid) -> Tz,
    now: DateTime<Utc>,
) -> Result<Vec<LateShipment>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT si.id, si.shop_id, si.amazon_order_id AS "amazon_order_id!", si.marketplace_id,
                  si.shipped_on AS "shipped_on!", si.tracking_numbers, si.late_noticed_at
           FROM shipping_instructions si
           WHERE si.shop_id = ANY($1) AND si.source = 'amazon_api' AND si.status = $2
             AND si.api_status = $3 AND cardinality(si.tracking_numbers) > 0
             AND si.amazon_order_id IS NOT NULL AND si.shipped_on IS NOT NULL
             AND si.shipped_on < $4 AND si.resend_requested_at IS NULL
           ORDER BY si.shipped_on, si.amazon_order_id"#,
        shop_ids,
        InstructionStatus::Shipped.as_str(),
        ApiStatus::AwaitingPrint.as_str(),
        // no zone's today is later than UTC's tomorrow; the order's own day decides below
        (now + chrono::Duration::days(1)).date_naive(),
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|r| {
            r.shipped_on < order_today(r.marketplace_id.as_deref(), shop_tz(r.shop_id), now)
        })
        .filter_map(|r| {
            let tracking = domain::eligibility::first_tracking_number(&r.tracking_numbers)?;
            Some(LateShipment {
                id: r.id,
                shop_id: r.shop_id,
                amazon_order_id: r.amazon_order_id,
                shipped_on: r.shipped_on,
                tracking_number: tracking.to_owned(),
                noticed_at: r.late_noticed_at,
            })
        })
        .collect())
}

/// Records that the attention entry of these late shipments was written.
pub async fn mark_late_noticed(conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE shipping_instructions SET late_noticed_at = now() WHERE id = ANY($1) AND late_noticed_at IS NULL",
        ids
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets (or clears) the operator-visible error of an instruction; the API status is unchanged.
pub async fn set_api_error(
    conn: &mut PgConnection,
    id: Uuid,
    error: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE shipping_instructions SET api_error = $2, updated_at = now() WHERE id = $1",
        id,
        error
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The feed was accepted ([`ApiTransition::FeedAccepted`]): its instructions → printed
/// (印刷済み), locked first in the shared order ([`crate::feeds::lock_instructions`]). Returns
/// how many.
pub async fn mark_printed(conn: &mut PgConnection, submission: Uuid) -> Result<u64, StoreError> {
    crate::feeds::lock_instructions(&mut *conn, submission).await?;
    crate::packages::mark_sent(&mut *conn, submission).await?;
    let t = ApiTransition::FeedAccepted;
    Ok(sqlx::query!(
        r#"UPDATE shipping_instructions SET api_status = $2, api_error = NULL, resend_requested_at = NULL,
                  updated_at = now()
           WHERE api_status = ANY($3)
             AND id IN (SELECT instruction_id FROM feed_messages WHERE feed_submission_id = $1)"#,
        submission,
        t.to().as_str(),
        &t.from_values()
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// confirmShipment succeeded ([`ApiTransition::ShipmentConfirmed`]): shipped (出荷済み) at once.
pub async fn mark_confirmed(conn: &mut PgConnection, id: Uuid) -> Result<(), StoreError> {
    let t = ApiTransition::ShipmentConfirmed;
    sqlx::query!(
        r#"UPDATE shipping_instructions SET api_status = $2, api_error = NULL, resend_requested_at = NULL,
                  updated_at = now()
           WHERE id = $1 AND api_status = ANY($3)"#,
        id,
        t.to().as_str(),
        &t.from_values()
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// confirmShipment was refused ([`ApiTransition::ShipmentRefused`]): failed, with Amazon's
/// message.
pub async fn mark_failed(conn: &mut PgConnection, id: Uuid, error: &str) -> Result<(), StoreError> {
    let t = ApiTransition::ShipmentRefused;
    sqlx::query!(
        r#"UPDATE shipping_instructions SET api_status = $3, api_error = $2, resend_requested_at = NULL,
                  updated_at = now()
           WHERE id = $1 AND api_status = ANY($4)"#,
        id,
        error,
        t.to().as_str(),
        &t.from_values()
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Amazon order item ids and quantities of an instruction (confirmShipment).
pub async fn lines(conn: &mut PgConnection, id: Uuid) -> Result<Vec<(String, i32)>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT amazon_order_item_id AS "item!", quantity FROM instruction_lines
           WHERE instruction_id = $1 AND amazon_order_item_id IS NOT NULL ORDER BY line_no"#,
        id
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.item, r.quantity)).collect())
}

/// A shipment result of a processed feed (feed-poller): shipped (出荷済み,
/// [`ApiTransition::FeedConfirmed`]), or failed with Amazon's message
/// ([`ApiTransition::FeedRefused`]). Only instructions still recorded as sent (印刷済み) change:
/// an operator's later resend is not overwritten.
///
/// When the messages carried packages (a shop that sends every package), each package takes its
/// own result first; the instruction is shipped only when it left whole and Amazon confirmed
/// every package, else partially shipped (一部出荷済み, [`ApiTransition::PartConfirmed`]) — and
/// back to 印刷待ち when the warehouse recorded more packages meanwhile.
pub async fn apply_feed_result(
    tx: &mut PgConnection,
    submission: Uuid,
    instruction: Uuid,
    failure: Option<&str>,
) -> Result<(), StoreError> {
    let packages =
        crate::packages::apply_feed_results(&mut *tx, submission, instruction, failure).await?;
    let t = if failure.is_some() {
        ApiTransition::FeedRefused
    } else if packages > 0 && !crate::packages::progress(&mut *tx, instruction).await?.0 {
        ApiTransition::PartConfirmed
    } else {
        ApiTransition::FeedConfirmed
    };
    transition(&mut *tx, instruction, t, &[ApiStatus::Printed], failure).await?;
    if t == ApiTransition::PartConfirmed {
        more_packages_waiting(tx, instruction).await?;
    }
    Ok(())
}

/// confirmShipment confirmed the packages it sent: shipped (出荷済み) when the instruction left
/// whole and every package is confirmed ([`mark_confirmed`]), else partially shipped (一部出荷済み,
/// [`ApiTransition::PartConfirmed`]).
pub async fn mark_packages_confirmed(conn: &mut PgConnection, id: Uuid) -> Result<(), StoreError> {
    if crate::packages::progress(&mut *conn, id).await?.0 {
        return mark_confirmed(conn, id).await;
    }
    let t = ApiTransition::PartConfirmed;
    transition(&mut *conn, id, t, &[ApiStatus::AwaitingPrint], None).await?;
    more_packages_waiting(conn, id).await
}

/// A partially shipped instruction with packages not sent yet waits again (印刷待ち,
/// [`ApiTransition::PackagesAdded`]).
pub async fn more_packages_waiting(conn: &mut PgConnection, id: Uuid) -> Result<(), StoreError> {
    if crate::packages::progress(&mut *conn, id).await?.1 {
        let t = ApiTransition::PackagesAdded;
        transition(conn, id, t, t.from(), None).await?;
    }
    Ok(())
}

/// `t` on instruction `id` when its API status is one of `from` (each one `t` may start from),
/// with `error` as the operator-visible error.
async fn transition(
    conn: &mut PgConnection,
    id: Uuid,
    t: ApiTransition,
    from: &[ApiStatus],
    error: Option<&str>,
) -> Result<(), StoreError> {
    let from: Vec<String> = from
        .iter()
        .filter(|s| t.from().contains(s))
        .map(|s| s.as_str().to_owned())
        .collect();
    sqlx::query!(
        r#"UPDATE shipping_instructions SET api_status = $2, api_error = $3, updated_at = now()
           WHERE id = $1 AND api_status = ANY($4)"#,
        id,
        t.to().as_str(),
        error,
        &from
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The partially shipped instructions of a shop that sends every package with packages to send:
/// API-imported, still allocated (引当済み: the rest of the order has not left), awaiting print,
/// some package not confirmed that left on the order's today (or a resend requested), and not
/// part of a submission whose outcome is still unknown. A target's ship date and time are its
/// latest unsent package's.
pub async fn partial_targets(
    conn: &mut PgConnection,
    shop_id: Uuid,
    shop_tz: Tz,
    now: DateTime<Utc>,
) -> Result<Vec<Target>, StoreError> {
    let earliest = earliest_today(shop_tz, now);
    let rows = sqlx::query!(
        r#"SELECT si.id, si.amazon_order_id, si.marketplace_id, si.tracking_numbers,
                  p.shipped_on AS "shipped_on?", p.shipped_at AS "shipped_at?",
                  si.delivery_method_name, dm.external_delivery_method AS "external_delivery_method?",
                  si.payment_method, si.resend_requested_at IS NOT NULL AS "resend_requested!"
           FROM shipping_instructions si
           JOIN shops sh ON sh.id = si.shop_id AND sh.send_every_package
           JOIN LATERAL (SELECT max(COALESCE(sp.shipped_on, si.shipped_on)) AS shipped_on, max(sp.created_at) AS shipped_at
                         FROM shipment_packages sp
                         WHERE sp.instruction_id = si.id AND sp.api_status IN ('awaiting_print', 'failed')) p ON true
           LEFT JOIN delivery_methods dm ON dm.id = si.delivery_method_id
           WHERE si.shop_id = $1 AND si.source = 'amazon_api' AND si.status = $4
             AND si.api_status = $3 AND cardinality(si.tracking_numbers) > 0
             AND (p.shipped_on >= $2 OR si.resend_requested_at IS NOT NULL)
             AND NOT EXISTS (SELECT 1 FROM feed_messages fm JOIN feed_submissions fs ON fs.id = fm.feed_submission_id
                             WHERE fm.instruction_id = si.id AND fs.state IN ('pending', 'in_flight'))
           ORDER BY p.shipped_at NULLS LAST, si.amazon_order_id"#,
        shop_id,
        earliest,
        ApiStatus::AwaitingPrint.as_str(),
        InstructionStatus::Allocated.as_str()
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|r| {
            let today = order_today(r.marketplace_id.as_deref(), shop_tz, now);
            r.resend_requested || r.shipped_on == Some(today)
        })
        .map(|r| Target {
            id: r.id,
            amazon_order_id: r.amazon_order_id,
            marketplace_id: r.marketplace_id,
            tracking_numbers: r.tracking_numbers,
            shipped_on: r.shipped_on,
            shipped_at: r.shipped_at,
            delivery_method_name: r.delivery_method_name,
            external_delivery_method: r.external_delivery_method,
            payment_method: r.payment_method,
            resend_requested: r.resend_requested,
        })
        .collect())
}

/// The API status of an instruction (`None`: no such instruction).
pub async fn api_status(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<ApiStatus>, StoreError> {
    let status = sqlx::query_scalar!(
        "SELECT api_status FROM shipping_instructions WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await?;
    status
        .map(|s| {
            s.parse()
                .map_err(|e| StoreError::Corrupt(format!("instruction {id}: {e}")))
        })
        .transpose()
}

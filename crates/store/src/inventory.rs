//! Inventory sync (在庫連携): operator stock changes, the external-product mapping as
//! inventory-sync needs it, the SKUs to push, and the per-SKU push state.
//!
//! "Changed since the last run" is per SKU: `stock.change_seq > external_products.pushed_change_seq`
//! (a trigger bumps `change_seq` on every change of free stock, whoever writes it), or never
//! pushed, or the last push failed, or the handling time differs from what was pushed. A run
//! reads the targets in one statement and records, per SKU, the `change_seq` it read: a stock
//! change that lands while the run builds its feed gets a higher `change_seq` and is picked up by
//! the next run.
//!
//! Push state of a SKU: `never` → `sent` (once Amazon accepted the feed) → `confirmed` or
//! `failed` (from the processing report, see [`apply_listing_results`]). `failed` SKUs are sent
//! again by the next run.

use chrono::{DateTime, Utc};
use domain::inventory::{HandlingDays, StockLevels};
use domain::stock::{Allotment, SafetyStock, SharePercent};
use serde::Serialize;
use sqlx::{Connection as _, PgConnection};
use uuid::Uuid;

use crate::Found as _;
use crate::StoreError;

/// Feed type of inventory pushes.
pub const JSON_LISTINGS_FEED: &str = "JSON_LISTINGS_FEED";

/// Why a stock change was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StockError {
    #[error("stock cannot be negative: {what} would make on hand {result} (product {product})")]
    Negative {
        what: &'static str,
        product: String,
        result: i64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for StockError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::Db(e))
    }
}

/// Stock levels after a change, with the change sequence inventory-sync compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StockAfter {
    pub levels: StockLevels,
    pub free: i32,
    pub change_seq: i64,
    pub changed_at: DateTime<Utc>,
}

async fn stock_after(conn: &mut PgConnection, product_id: Uuid) -> Result<StockAfter, StoreError> {
    let r = sqlx::query!(
        r#"SELECT on_hand, reserved, allocated, free AS "free!", change_seq, changed_at
           FROM stock WHERE product_id = $1"#,
        product_id
    )
    .fetch_one(conn)
    .await?;
    Ok(StockAfter {
        levels: StockLevels {
            on_hand: r.on_hand,
            reserved: r.reserved,
            allocated: r.allocated,
        },
        free: r.free,
        change_seq: r.change_seq,
        changed_at: r.changed_at,
    })
}

async fn record_change(
    conn: &mut PgConnection,
    shop_id: Uuid,
    product_id: Uuid,
    kind: &str,
    delta_on_hand: i32,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"INSERT INTO stock_changes (shop_id, product_id, kind, delta_on_hand, reason)
           VALUES ($1, $2, $3, $4, $5)"#,
        shop_id,
        product_id,
        kind,
        delta_on_hand,
        reason
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// An operator's stock count: sets on hand to `on_hand` (≥ 0) and records the change
/// (`stock_changes`, kind `set`, with when it happened).
pub async fn set_on_hand(
    conn: &mut PgConnection,
    shop_id: Uuid,
    product_id: Uuid,
    on_hand: i32,
    reason: Option<&str>,
) -> Result<StockAfter, StockError> {
    if on_hand < 0 {
        return Err(StockError::Negative {
            what: "setting",
            product: product_id.to_string(),
            result: i64::from(on_hand),
        });
    }
    let before = sqlx::query_scalar!(
        "SELECT on_hand FROM stock WHERE product_id = $1 FOR UPDATE",
        product_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .unwrap_or(0);
    // The trigger bumps change_seq when free stock changes; a count that confirms the same
    // figure still counts as a change (Amazon may have drifted), so bump explicitly too.
    sqlx::query!(
        r#"INSERT INTO stock (product_id, shop_id, on_hand) VALUES ($1, $2, $3)
           ON CONFLICT (product_id) DO UPDATE
              SET on_hand = EXCLUDED.on_hand, change_seq = nextval('stock_change_seq'), changed_at = now()"#,
        product_id,
        shop_id,
        on_hand
    )
    .execute(&mut *conn)
    .await?;
    record_change(conn, shop_id, product_id, "set", on_hand - before, reason).await?;
    Ok(stock_after(conn, product_id).await?)
}

/// An operator's adjustment: adds `delta` (may be negative) to on hand; refuses a result below
/// zero. Records the change (kind `adjust`).
pub async fn adjust_on_hand(
    conn: &mut PgConnection,
    shop_id: Uuid,
    product_id: Uuid,
    delta: i32,
    reason: Option<&str>,
) -> Result<StockAfter, StockError> {
    let before = sqlx::query_scalar!(
        "SELECT on_hand FROM stock WHERE product_id = $1 FOR UPDATE",
        product_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .unwrap_or(0);
    let result = i64::from(before) + i64::from(delta);
    let Ok(new) = i32::try_from(result) else {
        return Err(StockError::Negative {
            what: "adjusting",
            product: product_id.to_string(),
            result,
        });
    };
    if new < 0 {
        return Err(StockError::Negative {
            what: "adjusting",
            product: product_id.to_string(),
            result,
        });
    }
    sqlx::query!(
        r#"INSERT INTO stock (product_id, shop_id, on_hand) VALUES ($1, $2, $3)
           ON CONFLICT (product_id) DO UPDATE SET on_hand = EXCLUDED.on_hand"#,
        product_id,
        shop_id,
        new
    )
    .execute(&mut *conn)
    .await?;
    record_change(conn, shop_id, product_id, "adjust", delta, reason).await?;
    Ok(stock_after(conn, product_id).await?)
}

/// A mapping row as inventory-sync sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mapping {
    pub id: Uuid,
    pub sku: String,
    pub product_id: Uuid,
    pub handling_days: Option<i16>,
    pub push_state: String,
    pub push_error: Option<String>,
    pub pushed_quantity: Option<i32>,
    pub pushed_handling_days: Option<i16>,
    pub pushed_at: Option<DateTime<Utc>>,
    /// Share of the product's free stock in percent (none: not shared, the whole free stock).
    pub share_percent: Option<i16>,
    /// Units kept back from Amazon (see [`domain::stock::allocate`]).
    pub safety_stock: i32,
}

/// Maps an Amazon seller SKU to a product. Remapping a SKU to another product resets its push
/// state (it is pushed by the next run whatever the new product's change sequence) and its
/// share and safety stock (they were set for the old product, whose other sharing SKUs are made
/// due for a push again). The product may be another shop's: Japan, Australia and Singapore are
/// separate seller accounts that may sell one stock (see [`set_share`]).
/// `handling_days`: `Some` sets it, `None` keeps the current value.
pub async fn map_sku(
    conn: &mut PgConnection,
    shop_id: Uuid,
    sku: &str,
    product_id: Uuid,
    handling_days: Option<HandlingDays>,
) -> Result<Mapping, StoreError> {
    let days = handling_days.map(|d| i16::from(d.get()));
    let before = sqlx::query!(
        "SELECT product_id, share_percent FROM external_products WHERE shop_id = $1 AND sku = $2 FOR UPDATE",
        shop_id,
        sku
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(b) = before
        && b.product_id != product_id
        && b.share_percent.is_some()
    {
        bump_product(conn, b.product_id).await?;
    }
    Ok(sqlx::query_as!(
        Mapping,
        r#"INSERT INTO external_products (id, shop_id, sku, product_id, handling_days, handling_days_changed_at)
           VALUES ($1, $2, $3, $4, $5, CASE WHEN $5::smallint IS NOT NULL THEN now() END)
           ON CONFLICT (shop_id, sku) DO UPDATE
              SET product_id = EXCLUDED.product_id,
                  handling_days = COALESCE(EXCLUDED.handling_days, external_products.handling_days),
                  handling_days_changed_at = CASE WHEN EXCLUDED.handling_days IS NOT NULL
                      THEN now() ELSE external_products.handling_days_changed_at END,
                  push_state = CASE WHEN external_products.product_id <> EXCLUDED.product_id
                      THEN 'never' ELSE external_products.push_state END,
                  pushed_change_seq = CASE WHEN external_products.product_id <> EXCLUDED.product_id
                      THEN NULL ELSE external_products.pushed_change_seq END,
                  share_percent = CASE WHEN external_products.product_id <> EXCLUDED.product_id
                      THEN NULL ELSE external_products.share_percent END,
                  safety_stock = CASE WHEN external_products.product_id <> EXCLUDED.product_id
                      THEN 0 ELSE external_products.safety_stock END
           RETURNING id, sku, product_id, handling_days, push_state, push_error, pushed_quantity,
                     pushed_handling_days, pushed_at, share_percent, safety_stock"#,
        Uuid::now_v7(),
        shop_id,
        sku,
        product_id,
        days
    )
    .fetch_one(conn)
    .await?)
}

/// Removes a SKU from the mapping table. Returns whether it was mapped. Removing a SKU that
/// held a share of its product's stock makes the product's other SKUs due for a push (their
/// shares may be scaled differently now).
pub async fn unmap_sku(
    conn: &mut PgConnection,
    shop_id: Uuid,
    sku: &str,
) -> Result<bool, StoreError> {
    let gone = sqlx::query!(
        "DELETE FROM external_products WHERE shop_id = $1 AND sku = $2 RETURNING product_id, share_percent",
        shop_id,
        sku
    )
    .fetch_optional(&mut *conn)
    .await?;
    match gone {
        Some(g) => {
            if g.share_percent.is_some() {
                bump_product(conn, g.product_id).await?;
            }
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Makes every SKU mapped to the product (in every shop) due for a push: what each is sent
/// depends on its siblings' shares and safety stock, so a change of one is a change for all.
/// Bumps the product's `stock.change_seq`, as a stock change would.
async fn bump_product(conn: &mut PgConnection, product_id: Uuid) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE stock SET change_seq = nextval('stock_change_seq'), changed_at = now() WHERE product_id = $1",
        product_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets a mapped SKU's share of its product's free stock (`None`: not shared, the whole free
/// stock, the seed's behaviour) and, when `safety` is given, its safety stock (units kept back).
/// Every SKU mapped to the same product, in any shop, is made due for a push: the quantities are
/// recomputed together by [`domain::stock::allocate`].
pub async fn set_share(
    conn: &mut PgConnection,
    shop_id: Uuid,
    sku: &str,
    share: Option<SharePercent>,
    safety: Option<SafetyStock>,
) -> Result<Mapping, StoreError> {
    let share = share.map(|s| i16::from(s.get()));
    let safety = safety.map(SafetyStock::get);
    let m = sqlx::query_as!(
        Mapping,
        r#"UPDATE external_products SET share_percent = $3, safety_stock = COALESCE($4, safety_stock)
           WHERE shop_id = $1 AND sku = $2
           RETURNING id, sku, product_id, handling_days, push_state, push_error, pushed_quantity,
                     pushed_handling_days, pushed_at, share_percent, safety_stock"#,
        shop_id,
        sku,
        share,
        safety
    )
    .fetch_optional(&mut *conn)
    .await?
    .found("external product (SKU)", sku)?;
    bump_product(conn, m.product_id).await?;
    Ok(m)
}

/// The quantity to send for one mapping: [`domain::stock::allocate`] over the mapping and the
/// other SKUs holding a share of the same product (`sibling_shares`/`sibling_safety`, in any
/// shop). Values come from columns whose CHECKs match the domain's ranges.
pub(crate) fn allotted(
    free: i64,
    share: Option<i16>,
    safety: i32,
    sibling_shares: &[i16],
    sibling_safety: &[i32],
) -> i32 {
    let allotment = |share: Option<i16>, safety: i32| Allotment {
        share: share.and_then(|s| SharePercent::new(i64::from(s)).ok()),
        safety: SafetyStock::new(i64::from(safety))
            .unwrap_or(SafetyStock::new(i64::from(SafetyStock::MAX)).unwrap_or_default()),
    };
    let mut all = Vec::with_capacity(1 + sibling_shares.len());
    all.push(allotment(share, safety));
    all.extend(
        sibling_shares
            .iter()
            .zip(sibling_safety)
            .map(|(s, k)| allotment(Some(*s), *k)),
    );
    let q = domain::stock::allocate(free, &all);
    i32::try_from(q[0]).unwrap_or(i32::MAX)
}

/// Sets (or with `None` clears) the handling time of a mapped SKU. Clearing it stops sending
/// `lead_time_to_ship_max_days`; Amazon keeps the value it has (a `merge` cannot remove it).
pub async fn set_handling_days(
    conn: &mut PgConnection,
    shop_id: Uuid,
    sku: &str,
    handling_days: Option<HandlingDays>,
) -> Result<Mapping, StoreError> {
    let days = handling_days.map(|d| i16::from(d.get()));
    sqlx::query_as!(
        Mapping,
        r#"UPDATE external_products SET handling_days = $3, handling_days_changed_at = now()
           WHERE shop_id = $1 AND sku = $2
           RETURNING id, sku, product_id, handling_days, push_state, push_error, pushed_quantity,
                     pushed_handling_days, pushed_at, share_percent, safety_stock"#,
        shop_id,
        sku,
        days
    )
    .fetch_optional(conn)
    .await?
    .found("external product (SKU)", sku)
}

/// A mapped SKU by its SKU.
pub async fn mapping(
    conn: &mut PgConnection,
    shop_id: Uuid,
    sku: &str,
) -> Result<Mapping, StoreError> {
    sqlx::query_as!(
        Mapping,
        r#"SELECT id, sku, product_id, handling_days, push_state, push_error, pushed_quantity,
                  pushed_handling_days, pushed_at, share_percent, safety_stock
           FROM external_products WHERE shop_id = $1 AND sku = $2"#,
        shop_id,
        sku
    )
    .fetch_optional(conn)
    .await?
    .found("external product (SKU)", sku)
}

/// Why a SKU is pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Never,
    Failed,
    Stock,
    HandlingDays,
    Full,
}

/// One SKU to push: the free stock of its product and its handling time, read together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub external_product_id: Uuid,
    pub sku: String,
    /// What to send: free stock, never negative, or the SKU's part of it when it holds a share
    /// ([`domain::stock::allocate`] over the SKUs of the product in every shop).
    pub quantity: i32,
    pub handling_days: Option<i16>,
    /// `stock.change_seq` read with the quantity (0 when the product has no stock row).
    pub change_seq: i64,
    pub reason: Reason,
}

/// The SKUs to push for a shop, by SKU: every mapped SKU when `full`, otherwise the ones whose
/// free stock changed since their last push, whose handling time differs from what was pushed,
/// that were never pushed, or whose last push failed. One statement: one consistent snapshot.
///
/// Without JIT compilation: the sibling subqueries make the planner's estimate large enough
/// for PostgreSQL to compile the statement, which took longer than running it (about 0.3 s
/// more at 100,000 SKUs).
pub async fn targets(
    conn: &mut PgConnection,
    shop_id: Uuid,
    full: bool,
) -> Result<Vec<Target>, StoreError> {
    let mut tx = conn.begin().await?;
    sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
    let rows = sqlx::query!(
        r#"SELECT e.id, e.sku, COALESCE(s.free, 0) AS "free!", e.handling_days,
                  e.share_percent, e.safety_stock,
                  CASE WHEN e.share_percent IS NULL THEN '{}'::smallint[] ELSE ARRAY(
                      SELECT o.share_percent FROM external_products o
                      WHERE o.product_id = e.product_id AND o.id <> e.id AND o.share_percent IS NOT NULL
                      ORDER BY o.id) END AS "sibling_shares!: Vec<i16>",
                  CASE WHEN e.share_percent IS NULL THEN '{}'::integer[] ELSE ARRAY(
                      SELECT o.safety_stock FROM external_products o
                      WHERE o.product_id = e.product_id AND o.id <> e.id AND o.share_percent IS NOT NULL
                      ORDER BY o.id) END AS "sibling_safety!: Vec<i32>",
                  COALESCE(s.change_seq, 0) AS "change_seq!",
                  CASE WHEN e.push_state = 'never' OR e.pushed_change_seq IS NULL THEN 'never'
                       WHEN e.push_state = 'failed' THEN 'failed'
                       WHEN COALESCE(s.change_seq, 0) > e.pushed_change_seq THEN 'stock'
                       WHEN e.handling_days IS DISTINCT FROM e.pushed_handling_days THEN 'handling_days'
                       ELSE 'full' END AS "reason!"
           FROM external_products e LEFT JOIN stock s ON s.product_id = e.product_id
           WHERE e.shop_id = $1
             AND ($2 OR e.push_state IN ('never', 'failed') OR e.pushed_change_seq IS NULL
                  OR COALESCE(s.change_seq, 0) > e.pushed_change_seq
                  OR e.handling_days IS DISTINCT FROM e.pushed_handling_days)
           ORDER BY e.sku"#,
        shop_id,
        full
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|r| Target {
            external_product_id: r.id,
            sku: r.sku,
            quantity: allotted(
                i64::from(r.free),
                r.share_percent,
                r.safety_stock,
                &r.sibling_shares,
                &r.sibling_safety,
            ),
            handling_days: r.handling_days,
            change_seq: r.change_seq,
            reason: match r.reason.as_str() {
                "never" => Reason::Never,
                "failed" => Reason::Failed,
                "stock" => Reason::Stock,
                "handling_days" => Reason::HandlingDays,
                _ => Reason::Full,
            },
        })
        .collect())
}

/// One message of a listings feed, as recorded before Amazon is called.
#[derive(Debug, Clone, Copy)]
pub struct ListingMessage<'a> {
    pub message_id: i64,
    pub target: &'a Target,
}

/// Records a `JSON_LISTINGS_FEED` submission (state `pending`) and its messages (SKU, quantity
/// and handling days sent, change sequence, external product) in bulk: the intent, before any
/// call. The rest of the submission's life uses [`crate::feeds`].
pub async fn insert_listing_submission(
    conn: &mut PgConnection,
    shop_id: Uuid,
    run_id: Uuid,
    marketplace_id: &str,
    content_sha256: &str,
    messages: &[ListingMessage<'_>],
) -> Result<Uuid, StoreError> {
    let id = Uuid::now_v7();
    sqlx::query!(
        r#"INSERT INTO feed_submissions (id, shop_id, run_id, feed_type, marketplace_ids, state, content_sha256)
           VALUES ($1, $2, $3, $4, $5, 'pending', $6)"#,
        id,
        shop_id,
        run_id,
        JSON_LISTINGS_FEED,
        &[marketplace_id.to_owned()],
        content_sha256
    )
    .execute(&mut *conn)
    .await?;
    // Bulk insert in chunks (one statement per 5,000 messages).
    for chunk in messages.chunks(5_000) {
        let mut message_ids = Vec::with_capacity(chunk.len());
        let mut eps = Vec::with_capacity(chunk.len());
        let mut skus = Vec::with_capacity(chunk.len());
        let mut qtys = Vec::with_capacity(chunk.len());
        let mut days: Vec<Option<i16>> = Vec::with_capacity(chunk.len());
        let mut seqs = Vec::with_capacity(chunk.len());
        for m in chunk {
            message_ids.push(m.message_id);
            eps.push(m.target.external_product_id);
            skus.push(m.target.sku.clone());
            qtys.push(m.target.quantity);
            days.push(m.target.handling_days);
            seqs.push(m.target.change_seq);
        }
        sqlx::query!(
            r#"INSERT INTO feed_messages (feed_submission_id, message_id, external_product_id, sku, quantity,
                                          handling_days, change_seq)
               SELECT $1, * FROM UNNEST($2::bigint[], $3::uuid[], $4::text[], $5::int[], $6::smallint[], $7::bigint[])"#,
            id,
            &message_ids,
            &eps,
            &skus,
            &qtys,
            &days as &[Option<i16>],
            &seqs
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(id)
}

/// Amazon accepted the feed: every SKU of the submission is `sent` with what was sent
/// (quantity, handling days, change sequence) and this run as its latest push. Call in the
/// transaction that marks the submission submitted. Returns how many SKUs were updated.
pub async fn mark_skus_sent(
    conn: &mut PgConnection,
    submission_id: Uuid,
    run_id: Uuid,
) -> Result<u64, StoreError> {
    Ok(sqlx::query!(
        r#"UPDATE external_products e
              SET pushed_change_seq = m.change_seq, pushed_quantity = m.quantity,
                  pushed_handling_days = m.handling_days, pushed_at = now(), pushed_run_id = $2,
                  push_state = 'sent', push_error = NULL
             FROM feed_messages m
            WHERE m.feed_submission_id = $1 AND e.id = m.external_product_id"#,
        submission_id,
        run_id
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// The feed was never accepted (refused, throttled, outcome unknown) or not processed (FATAL):
/// its SKUs are `failed` with `error` and are sent again by the next run, unless another run
/// pushed them since. Returns how many SKUs were updated.
pub async fn mark_skus_not_sent(
    conn: &mut PgConnection,
    submission_id: Uuid,
    error: &str,
) -> Result<u64, StoreError> {
    Ok(sqlx::query!(
        r#"UPDATE external_products e SET push_state = 'failed', push_error = $2
             FROM feed_messages m JOIN feed_submissions s ON s.id = m.feed_submission_id
            WHERE m.feed_submission_id = $1 AND e.id = m.external_product_id
              AND NOT (e.pushed_run_id IS DISTINCT FROM s.run_id AND COALESCE(e.pushed_at > s.created_at, false))"#,
        submission_id,
        error
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// The outcome of one message of a `JSON_LISTINGS_FEED` processing report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageOutcome {
    pub message_id: i64,
    /// `success`, `warning` or `error` (the `feed_messages.result` values).
    pub result: &'static str,
    /// Amazon's code of the worst issue.
    pub code: Option<String>,
    /// Amazon's issue text (several issues joined).
    pub message: Option<String>,
}

/// What [`apply_listing_results`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AppliedResults {
    pub confirmed: u32,
    pub warnings: u32,
    pub failed: u32,
}

impl std::ops::AddAssign for AppliedResults {
    fn add_assign(&mut self, other: Self) {
        self.confirmed += other.confirmed;
        self.warnings += other.warnings;
        self.failed += other.failed;
    }
}

/// Applies the processing report of a `JSON_LISTINGS_FEED` submission: each message becomes
/// `success`, `warning` or `error` (with Amazon's code and text); its SKU becomes `confirmed`,
/// or `failed` with Amazon's issue text (sent again by the next run), and each failed SKU gets
/// an API-log entry of `action`. A SKU pushed again by a later run is left to that run's
/// results. This is the one place the results of inventory messages are applied (for
/// feed-poller); it does not change the submission's own state (see [`crate::feeds::finish`]).
pub async fn apply_listing_results(
    conn: &mut PgConnection,
    submission_id: Uuid,
    outcomes: &[MessageOutcome],
    action: &str,
) -> Result<AppliedResults, StoreError> {
    let sub = sqlx::query!(
        "SELECT shop_id, run_id FROM feed_submissions WHERE id = $1",
        submission_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .found("feed submission", submission_id)?;

    let mut ids = Vec::with_capacity(outcomes.len());
    let mut results = Vec::with_capacity(outcomes.len());
    let mut codes: Vec<Option<String>> = Vec::with_capacity(outcomes.len());
    let mut texts: Vec<Option<String>> = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        ids.push(o.message_id);
        results.push(o.result.to_owned());
        codes.push(o.code.clone());
        texts.push(o.message.clone());
    }
    sqlx::query!(
        r#"UPDATE feed_messages m SET result = u.result, result_code = u.code, result_message = u.text
             FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[]) AS u(message_id, result, code, text)
            WHERE m.feed_submission_id = $1 AND m.message_id = u.message_id"#,
        submission_id,
        &ids,
        &results,
        &codes as &[Option<String>],
        &texts as &[Option<String>]
    )
    .execute(&mut *conn)
    .await?;

    // Only SKUs whose latest push is this submission's run.
    let failed = sqlx::query!(
        r#"UPDATE external_products e
              SET push_state = 'failed', push_error = COALESCE(m.result_message, m.result_code, 'rejected by Amazon')
             FROM feed_messages m
            WHERE m.feed_submission_id = $1 AND m.result = 'error' AND e.id = m.external_product_id
              AND e.pushed_run_id IS NOT DISTINCT FROM $2
           RETURNING e.sku, m.message_id, m.result_code, m.result_message"#,
        submission_id,
        sub.run_id
    )
    .fetch_all(&mut *conn)
    .await?;
    // Another marketplace's feed of the same run may have failed the SKU: it stays `failed`.
    let confirmed = sqlx::query!(
        r#"UPDATE external_products e SET push_state = 'confirmed', push_error = NULL
             FROM feed_messages m
            WHERE m.feed_submission_id = $1 AND m.result IN ('success', 'warning')
              AND e.id = m.external_product_id
              AND e.pushed_run_id IS NOT DISTINCT FROM $2 AND e.push_state = 'sent'"#,
        submission_id,
        sub.run_id
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let warnings = results.iter().filter(|r| *r == "warning").count();

    for f in &failed {
        let text = f.result_message.as_deref().unwrap_or("rejected by Amazon");
        let message = format!("Amazon did not apply the stock update of this SKU: {text}");
        crate::api_log::write(
            conn,
            &crate::api_log::Entry {
                run_id: sub.run_id,
                sku: Some(&f.sku),
                code: f.result_code.as_deref(),
                details: Some(serde_json::json!({
                    "feed_submission_id": submission_id,
                    "message_id": f.message_id,
                    "retry": "next inventory-sync run",
                })),
                ..crate::api_log::Entry::new(
                    Some(sub.shop_id),
                    action,
                    crate::api_log::Level::Error,
                    &message,
                )
            },
        )
        .await?;
    }
    Ok(AppliedResults {
        confirmed: u32::try_from(confirmed).unwrap_or(u32::MAX),
        warnings: u32::try_from(warnings).unwrap_or(u32::MAX),
        failed: u32::try_from(failed.len()).unwrap_or(u32::MAX),
    })
}

/// Marks SKUs that this run could not send (e.g. Amazon's feed quota ran out) as `failed` with
/// `error`, so that the next run sends them. Returns how many were updated.
pub async fn mark_failed(
    conn: &mut PgConnection,
    external_product_ids: &[Uuid],
    error: &str,
) -> Result<u64, StoreError> {
    Ok(sqlx::query!(
        "UPDATE external_products SET push_state = 'failed', push_error = $2 WHERE id = ANY($1)",
        external_product_ids,
        error
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// Push-state counts of a shop's mapping table.
pub async fn push_state_counts(
    conn: &mut PgConnection,
    shop_id: Uuid,
) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(sqlx::query!(
        r#"SELECT push_state, count(*) AS "n!" FROM external_products WHERE shop_id = $1
           GROUP BY push_state ORDER BY push_state"#,
        shop_id
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|r| (r.push_state, r.n))
    .collect())
}

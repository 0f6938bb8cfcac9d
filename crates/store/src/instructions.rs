//! Shipping instructions (出荷指示) imported from Amazon, their lines and the stock they reserve.
//!
//! The repository offers mechanisms (insert, fill in paid data, cancel, reserve/release); the
//! services decide when each applies (`domain::eligibility`, order-ingest's upsert rules).
//! Business key: `(shop_id, amazon_order_id)`; lines are keyed by `amazon_order_item_id`, so a
//! re-import never duplicates an instruction or a line.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::{
    AmazonOrderStatus, HoldReason, InstructionStatus, PLACEHOLDER_DELIVERY_METHOD,
    PLACEHOLDER_REGISTRATION, PaymentMethod, PaymentStatus,
};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Found as _;
use crate::{StoreError, catalog, pii::PersonalData};
use crypto::Keyring;

/// Buyer data Amazon exposes once an order is paid (PII: never logged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuyerData {
    pub name: Option<String>,
    pub email: Option<String>,
    /// A business buyer's company.
    pub company_name: Option<String>,
    /// A business buyer's purchase order number.
    pub purchase_order_number: Option<String>,
}

/// Ship-to data Amazon exposes once an order is paid (PII: never logged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShipTo {
    pub name: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub state: Option<String>,
    pub city: Option<String>,
    /// Address lines joined with a space.
    pub address: Option<String>,
    pub phone: Option<String>,
}

/// One line of an Amazon order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmazonLine {
    pub order_item_id: String,
    pub sku: String,
    pub title: Option<String>,
    pub quantity: i32,
    pub unit_price: Option<Decimal>,
    /// 合計金額(明細): the item's own price × quantity, without shipping or COD fee.
    pub line_total: Option<Decimal>,
    /// The item is a gift (wrapped or with a message).
    pub is_gift: bool,
    /// Amazon's gift wrap level.
    pub gift_wrap_level: Option<String>,
    /// The buyer's gift message (PII: sealed with the buyer's data, never logged).
    pub gift_message: Option<String>,
    /// The item's own COD fee (Amazon's `COD_FEE` proceeds of the item).
    pub cod_fee: Option<Decimal>,
}

/// What the warehouse packs and ships by, in clear (nothing personal).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderDetails {
    /// Amazon Business order (`AMAZON_BUSINESS`).
    pub is_business: bool,
    /// Premium shipping (`PREMIUM`).
    pub is_premium: bool,
    /// Ship-by window (`shipByWindow`); the end is Amazon's `LatestShipDate`.
    pub earliest_ship_at: Option<DateTime<Utc>>,
    pub latest_ship_at: Option<DateTime<Utc>>,
    /// Deliver-by window (`deliverByWindow`).
    pub earliest_delivery_at: Option<DateTime<Utc>>,
    pub latest_delivery_at: Option<DateTime<Utc>>,
    /// The delivery window the buyer chose (the items' `scheduledDeliveryWindow`).
    pub scheduled_delivery_from: Option<DateTime<Utc>>,
    pub scheduled_delivery_to: Option<DateTime<Utc>>,
}

/// An Amazon order as the WMS stores it. `buyer`/`ship_to` are `None` while Amazon withholds
/// them (Pending): the placeholders are registered instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmazonOrder {
    pub amazon_order_id: String,
    pub marketplace_id: Option<String>,
    pub status: AmazonOrderStatus,
    pub last_updated_at: DateTime<Utc>,
    pub ordered_at: DateTime<Utc>,
    pub ship_service_level: Option<String>,
    pub is_prime: bool,
    pub currency: Option<String>,
    pub order_total: Option<Decimal>,
    /// Shipping charges of the whole order.
    pub shipping_total: Option<Decimal>,
    /// Cash-on-delivery fee of the whole order.
    pub cod_fee: Option<Decimal>,
    pub payment_method: PaymentMethod,
    pub buyer: Option<BuyerData>,
    pub ship_to: Option<ShipTo>,
    /// The buyer's delivery preference as text (PII: sealed, never logged).
    pub delivery_preference: Option<String>,
    pub details: OrderDetails,
    pub lines: Vec<AmazonLine>,
}

impl AmazonOrder {
    /// Whether any line is a gift.
    pub fn is_gift(&self) -> bool {
        self.lines.iter().any(|l| l.is_gift)
    }
}

/// A stored instruction (the fields the services decide on; buyer and ship-to data are sealed:
/// [`crate::pii::read`]).
#[derive(Debug, Clone, Serialize)]
pub struct Instruction {
    pub id: Uuid,
    pub shop_id: Uuid,
    pub source: String,
    pub amazon_order_id: Option<String>,
    pub marketplace_id: Option<String>,
    pub status: String,
    pub payment_status: String,
    pub amazon_status: Option<String>,
    pub amazon_last_updated_at: Option<DateTime<Utc>>,
    pub ordered_at: Option<DateTime<Utc>>,
    pub ship_to_country: Option<String>,
    pub payment_method: String,
    pub delivery_method_id: Option<Uuid>,
    pub delivery_method_name: String,
    pub ship_service_level: Option<String>,
    pub is_prime: bool,
    pub currency: Option<String>,
    pub order_total: Option<Decimal>,
    pub shipping_total: Option<Decimal>,
    pub cod_fee: Option<Decimal>,
    pub is_business: bool,
    pub is_premium: bool,
    pub is_gift: bool,
    pub latest_ship_at: Option<DateTime<Utc>>,
    pub scheduled_delivery_from: Option<DateTime<Utc>>,
    pub scheduled_delivery_to: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl Instruction {
    /// The instruction status, parsed.
    pub fn status(&self) -> Result<InstructionStatus, StoreError> {
        self.status
            .parse()
            .map_err(|e: domain::status::UnknownStatus| StoreError::Corrupt(e.to_string()))
    }

    /// The payment status, parsed.
    pub fn payment_status(&self) -> Result<PaymentStatus, StoreError> {
        self.payment_status
            .parse()
            .map_err(|e: domain::status::UnknownStatus| StoreError::Corrupt(e.to_string()))
    }

    /// Imported through the API (not entered by hand).
    pub fn imported_via_api(&self) -> bool {
        self.source == "amazon_api"
    }
}

/// A stored line.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub id: Uuid,
    pub line_no: i32,
    pub amazon_order_item_id: Option<String>,
    pub sku: String,
    pub product_id: Option<Uuid>,
    pub title: Option<String>,
    pub quantity: i32,
    pub unit_price: Option<Decimal>,
    pub line_total: Option<Decimal>,
    pub reserved_quantity: i32,
    pub is_gift: bool,
    pub gift_wrap_level: Option<String>,
    pub cod_fee: Option<Decimal>,
}

macro_rules! select_instruction {
    ($where:literal, $($arg:expr),*) => {
        sqlx::query_as!(
            Instruction,
            r#"SELECT id, shop_id, source, amazon_order_id, marketplace_id, status, payment_status, amazon_status,
                      amazon_last_updated_at, ordered_at, ship_to_country, payment_method,
                      delivery_method_id, delivery_method_name, ship_service_level, is_prime, currency, order_total,
                      shipping_total, cod_fee, is_business, is_premium, is_gift, latest_ship_at,
                      scheduled_delivery_from, scheduled_delivery_to, updated_at
               FROM shipping_instructions "# + $where,
            $($arg),*
        )
    };
}

/// The instruction of an Amazon order, locked for the caller's transaction (`FOR NO KEY
/// UPDATE`: other writers wait, inserts that only reference the row, such as a feed's
/// messages, do not). A transaction that locks several does so in Amazon order id order.
pub async fn lock_by_order(
    conn: &mut PgConnection,
    shop_id: Uuid,
    amazon_order_id: &str,
) -> Result<Option<Instruction>, StoreError> {
    Ok(select_instruction!(
        "WHERE shop_id = $1 AND amazon_order_id = $2 FOR NO KEY UPDATE",
        shop_id,
        amazon_order_id
    )
    .fetch_optional(conn)
    .await?)
}

/// The instruction of an Amazon order.
pub async fn by_order(
    conn: &mut PgConnection,
    shop_id: Uuid,
    amazon_order_id: &str,
) -> Result<Option<Instruction>, StoreError> {
    Ok(select_instruction!(
        "WHERE shop_id = $1 AND amazon_order_id = $2",
        shop_id,
        amazon_order_id
    )
    .fetch_optional(conn)
    .await?)
}

/// Up to `limit` order ids of the shop's open, unpaid API-imported instructions whose Amazon
/// state was last known (checked, changed or imported) before `before`, longest unknown first:
/// the sweep's `getOrder` check of payments a lost notification did not bring.
pub async fn unpaid_to_check(
    conn: &mut PgConnection,
    shop_id: Uuid,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT amazon_order_id AS "amazon_order_id!" FROM shipping_instructions
            WHERE shop_id = $1 AND source = 'amazon_api' AND payment_status = 'unpaid'
              AND status IN ('hold', 'awaiting_shipment') AND amazon_order_id IS NOT NULL
              AND COALESCE(amazon_checked_at, amazon_last_updated_at, created_at) < $2
            ORDER BY COALESCE(amazon_checked_at, amazon_last_updated_at, created_at), amazon_order_id
            LIMIT $3"#,
        shop_id,
        before,
        limit
    )
    .fetch_all(conn)
    .await?)
}

/// Records that the instructions of `amazon_order_ids` were checked at Amazon now.
pub async fn checked_at_amazon(
    conn: &mut PgConnection,
    shop_id: Uuid,
    amazon_order_ids: &[String],
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE shipping_instructions SET amazon_checked_at = now()
          WHERE shop_id = $1 AND amazon_order_id = ANY($2)",
        shop_id,
        amazon_order_ids
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Which of `amazon_order_ids` the shop has an instruction for (one statement).
pub async fn known_orders(
    conn: &mut PgConnection,
    shop_id: Uuid,
    amazon_order_ids: &[&str],
) -> Result<std::collections::HashSet<String>, StoreError> {
    let rows = sqlx::query_scalar!(
        r#"SELECT amazon_order_id AS "id!" FROM shipping_instructions
            WHERE shop_id = $1 AND amazon_order_id = ANY($2::text[])"#,
        shop_id,
        amazon_order_ids as &[&str]
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// An instruction by id.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Instruction, StoreError> {
    select_instruction!("WHERE id = $1", id)
        .fetch_optional(conn)
        .await?
        .found("instruction", id)
}

/// Every instruction of a shop, oldest order first.
pub async fn list(conn: &mut PgConnection, shop_id: Uuid) -> Result<Vec<Instruction>, StoreError> {
    Ok(select_instruction!(
        "WHERE shop_id = $1 ORDER BY ordered_at, amazon_order_id",
        shop_id
    )
    .fetch_all(conn)
    .await?)
}

/// Open (hold or awaiting shipment) API-imported instructions of a shop, by order id, after
/// `after_order_id` (keyset pagination for reconcile runs).
pub async fn open_imported(
    conn: &mut PgConnection,
    shop_id: Uuid,
    after_order_id: Option<&str>,
    limit: i64,
) -> Result<Vec<Instruction>, StoreError> {
    Ok(select_instruction!(
        "WHERE shop_id = $1 AND source = 'amazon_api' AND status IN ('hold', 'awaiting_shipment')
           AND amazon_order_id IS NOT NULL AND ($2::text IS NULL OR amazon_order_id > $2)
         ORDER BY amazon_order_id LIMIT $3",
        shop_id,
        after_order_id,
        limit
    )
    .fetch_all(conn)
    .await?)
}

/// Lines of an instruction, by line number.
pub async fn lines(conn: &mut PgConnection, instruction_id: Uuid) -> Result<Vec<Line>, StoreError> {
    Ok(sqlx::query_as!(
        Line,
        r#"SELECT id, line_no, amazon_order_item_id, sku, product_id, title, quantity, unit_price, line_total,
                  reserved_quantity, is_gift, gift_wrap_level, cod_fee
           FROM instruction_lines WHERE instruction_id = $1 ORDER BY line_no"#,
        instruction_id
    )
    .fetch_all(conn)
    .await?)
}

/// Where a new or changed instruction's delivery method comes from.
#[derive(Debug, Clone, Copy)]
pub enum Delivery<'a> {
    /// No rule matched: keep (or register) `Amazon 仮配送方法`.
    Placeholder,
    /// The first matching delivery rule's method.
    Method(&'a catalog::DeliveryMethod),
}

/// Result of inserting or extending lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinesOutcome {
    /// Lines inserted.
    pub inserted: u32,
    /// SKUs of inserted lines that have no mapping, in line order.
    pub unmapped_skus: Vec<String>,
    /// Lines inserted earlier that still have no mapping.
    pub still_unmapped: u32,
    /// Lines that got a product now (mapping added since the first import) and reserved stock.
    pub newly_mapped: u32,
}

/// Inserts a new API-imported instruction with its lines, reserving stock for mapped lines
/// ([`insert_imported_many`] for one order). An instruction the shop already has for the order
/// is [`StoreError::Duplicate`].
pub async fn insert_imported(
    conn: &mut PgConnection,
    keys: &Keyring,
    shop_id: Uuid,
    new: NewImported<'_>,
    products: &HashMap<String, Uuid>,
) -> Result<(Uuid, LinesOutcome), StoreError> {
    insert_imported_many(conn, keys, shop_id, &[new], products)
        .await?
        .pop()
        .flatten()
        .ok_or_else(|| StoreError::Duplicate {
            what: "instruction for Amazon order",
            key: new.order.amazon_order_id.clone(),
        })
}

/// One new instruction for [`insert_imported_many`].
#[derive(Debug, Clone, Copy)]
pub struct NewImported<'a> {
    pub order: &'a AmazonOrder,
    pub status: InstructionStatus,
    pub payment_status: PaymentStatus,
    pub delivery: Delivery<'a>,
}

/// [`insert_imported`] for many orders in a fixed number of statements (instructions, lines,
/// stock, stock changes) whatever their count. Orders the shop already has are skipped (`None`
/// in the result, which is in input order): the caller handles them one by one. All or nothing
/// on an error: the caller rolls back (a savepoint) and falls back to [`insert_imported`] order
/// by order, which isolates the order at fault.
pub async fn insert_imported_many(
    conn: &mut PgConnection,
    keys: &Keyring,
    shop_id: Uuid,
    orders: &[NewImported<'_>],
    products: &HashMap<String, Uuid>,
) -> Result<Vec<Option<(Uuid, LinesOutcome)>>, StoreError> {
    if orders.is_empty() {
        return Ok(Vec::new());
    }
    let n = orders.len();
    let mut ids = Vec::with_capacity(n);
    let (mut order_ids, mut marketplaces, mut statuses, mut payments, mut amazon_statuses) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut updated, mut ordered) = (vec![], vec![]);
    let (mut sealed, mut to_country, mut pay_methods) = (vec![], vec![], vec![]);
    let (mut dm_ids, mut dm_names, mut levels, mut primes, mut currencies, mut totals) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut shipping, mut cod_fees) = (vec![], vec![]);
    let (mut business, mut premium, mut gift) = (vec![], vec![], vec![]);
    let (mut ship_from, mut ship_by, mut deliver_from, mut deliver_by, mut slot_from, mut slot_to) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for o in orders {
        let (personal, country) = personal_data(o.order);
        let (dm_id, dm_name) = match o.delivery {
            Delivery::Placeholder => (None, PLACEHOLDER_DELIVERY_METHOD.to_owned()),
            Delivery::Method(m) => (Some(m.id), m.name.clone()),
        };
        let id = Uuid::now_v7();
        sealed.push(personal.seal(keys, shop_id, id));
        ids.push(id);
        order_ids.push(o.order.amazon_order_id.clone());
        marketplaces.push(o.order.marketplace_id.clone());
        statuses.push(o.status.as_str().to_owned());
        payments.push(o.payment_status.as_str().to_owned());
        amazon_statuses.push(o.order.status.as_str().to_owned());
        updated.push(o.order.last_updated_at);
        ordered.push(o.order.ordered_at);
        to_country.push(country);
        pay_methods.push(o.order.payment_method.as_str().to_owned());
        dm_ids.push(dm_id);
        dm_names.push(dm_name);
        levels.push(o.order.ship_service_level.clone());
        primes.push(o.order.is_prime);
        currencies.push(o.order.currency.clone());
        totals.push(o.order.order_total);
        shipping.push(o.order.shipping_total);
        cod_fees.push(o.order.cod_fee);
        let d = &o.order.details;
        business.push(d.is_business);
        premium.push(d.is_premium);
        gift.push(o.order.is_gift());
        ship_from.push(d.earliest_ship_at);
        ship_by.push(d.latest_ship_at);
        deliver_from.push(d.earliest_delivery_at);
        deliver_by.push(d.latest_delivery_at);
        slot_from.push(d.scheduled_delivery_from);
        slot_to.push(d.scheduled_delivery_to);
    }
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO shipping_instructions
             (id, shop_id, source, amazon_order_id, marketplace_id, status, payment_status, amazon_status,
              amazon_last_updated_at, ordered_at, pii_enc, ship_to_country, payment_method,
              delivery_method_id, delivery_method_name, ship_service_level, is_prime, currency, order_total,
              shipping_total, cod_fee, hold_reason, is_business, is_premium, is_gift, earliest_ship_at,
              latest_ship_at, earliest_delivery_at, latest_delivery_at, scheduled_delivery_from,
              scheduled_delivery_to)
           SELECT id, $2, 'amazon_api', oid, mp, st, ps, ast, upd, ord, pii, tc, pm,
                  dmi, dmn, lvl, prime, cur, tot, ship, cod,
                  -- the import holds an order only because it is not paid yet
                  CASE WHEN st = 'hold' THEN 'unpaid' END,
                  biz, prem, gift, esa, lsa, eda, lda, sdf, sdt
             FROM UNNEST($1::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::timestamptz[], $9::timestamptz[], $10::bytea[], $11::text[], $12::text[],
                         $13::uuid[], $14::text[], $15::text[], $16::bool[], $17::text[], $18::numeric[],
                         $19::numeric[], $20::numeric[], $21::bool[], $22::bool[], $23::bool[],
                         $24::timestamptz[], $25::timestamptz[], $26::timestamptz[], $27::timestamptz[],
                         $28::timestamptz[], $29::timestamptz[])
               AS t(id, oid, mp, st, ps, ast, upd, ord, pii, tc, pm,
                    dmi, dmn, lvl, prime, cur, tot, ship, cod, biz, prem, gift, esa, lsa, eda, lda, sdf, sdt)
           ON CONFLICT (shop_id, amazon_order_id) DO NOTHING
           RETURNING id"#,
        &ids,
        shop_id,
        &order_ids,
        &marketplaces as &[Option<String>],
        &statuses,
        &payments,
        &amazon_statuses,
        &updated,
        &ordered,
        &sealed,
        &to_country as &[Option<String>],
        &pay_methods,
        &dm_ids as &[Option<Uuid>],
        &dm_names,
        &levels as &[Option<String>],
        &primes,
        &currencies as &[Option<String>],
        &totals as &[Option<Decimal>],
        &shipping as &[Option<Decimal>],
        &cod_fees as &[Option<Decimal>],
        &business,
        &premium,
        &gift,
        &ship_from as &[Option<DateTime<Utc>>],
        &ship_by as &[Option<DateTime<Utc>>],
        &deliver_from as &[Option<DateTime<Utc>>],
        &deliver_by as &[Option<DateTime<Utc>>],
        &slot_from as &[Option<DateTime<Utc>>],
        &slot_to as &[Option<DateTime<Utc>>],
    )
    .fetch_all(&mut *conn)
    .await?;
    let inserted: std::collections::HashSet<Uuid> = inserted.into_iter().collect();

    let mut outcomes = Vec::with_capacity(n);
    let (mut line_ids, mut line_inst, mut line_no, mut item_ids, mut skus, mut line_products) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut titles, mut quantities, mut prices, mut line_totals, mut reserved) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut line_gifts, mut wraps, mut line_cods) = (vec![], vec![], vec![]);
    let mut reservations = Vec::new();
    for (o, id) in orders.iter().zip(&ids) {
        if !inserted.contains(id) {
            outcomes.push(None);
            continue;
        }
        let mut out = LinesOutcome::default();
        for (no, line) in o.order.lines.iter().enumerate() {
            let product = products.get(&line.sku).copied();
            let qty = if product.is_some() { line.quantity } else { 0 };
            line_ids.push(Uuid::now_v7());
            line_inst.push(*id);
            line_no.push(no as i32 + 1);
            item_ids.push(line.order_item_id.clone());
            skus.push(line.sku.clone());
            line_products.push(product);
            titles.push(line.title.clone());
            quantities.push(line.quantity);
            prices.push(line.unit_price);
            line_totals.push(line.line_total);
            reserved.push(qty);
            line_gifts.push(line.is_gift);
            wraps.push(line.gift_wrap_level.clone());
            line_cods.push(line.cod_fee);
            out.inserted += 1;
            match product {
                Some(p) => reservations.push(catalog::Reservation {
                    product_id: p,
                    quantity: qty,
                    reason: format!("amazon order {}", o.order.amazon_order_id),
                }),
                None => out.unmapped_skus.push(line.sku.clone()),
            }
        }
        outcomes.push(Some((*id, out)));
    }
    if !line_ids.is_empty() {
        sqlx::query!(
            r#"INSERT INTO instruction_lines
                 (id, instruction_id, shop_id, line_no, amazon_order_item_id, sku, product_id, title, quantity,
                  unit_price, line_total, reserved_quantity, is_gift, gift_wrap_level, cod_fee)
               SELECT id, iid, $3, no, item, sku, pid, title, qty, price, total, res, gift, wrap, cod
                 FROM UNNEST($1::uuid[], $2::uuid[], $4::int4[], $5::text[], $6::text[], $7::uuid[], $8::text[],
                             $9::int4[], $10::numeric[], $11::numeric[], $12::int4[], $13::bool[], $14::text[],
                             $15::numeric[])
                   AS t(id, iid, no, item, sku, pid, title, qty, price, total, res, gift, wrap, cod)"#,
            &line_ids,
            &line_inst,
            shop_id,
            &line_no,
            &item_ids,
            &skus,
            &line_products as &[Option<Uuid>],
            &titles as &[Option<String>],
            &quantities,
            &prices as &[Option<Decimal>],
            &line_totals as &[Option<Decimal>],
            &reserved,
            &line_gifts,
            &wraps as &[Option<String>],
            &line_cods as &[Option<Decimal>],
        )
        .execute(&mut *conn)
        .await?;
    }
    catalog::reserve_many(conn, shop_id, &reservations).await?;
    Ok(outcomes)
}

/// Buyer and ship-to to store: Amazon's data, or the placeholders while it withholds them.
/// The buyer and ship-to data to seal (the seed's placeholders while Amazon withholds them),
/// and the country, kept in clear.
fn personal_data(order: &AmazonOrder) -> (PersonalData, Option<String>) {
    let buyer = order.buyer.clone().unwrap_or_else(|| BuyerData {
        name: Some(PLACEHOLDER_REGISTRATION.to_owned()),
        ..BuyerData::default()
    });
    let ship_to = order.ship_to.clone().unwrap_or_else(|| ShipTo {
        name: Some(PLACEHOLDER_REGISTRATION.to_owned()),
        address: Some(PLACEHOLDER_REGISTRATION.to_owned()),
        ..ShipTo::default()
    });
    let personal = PersonalData {
        buyer_name: buyer.name,
        buyer_email: buyer.email,
        ship_to_name: ship_to.name,
        ship_to_postal_code: ship_to.postal_code,
        ship_to_state: ship_to.state,
        ship_to_city: ship_to.city,
        ship_to_address: ship_to.address,
        ship_to_phone: ship_to.phone,
        buyer_company: buyer.company_name,
        purchase_order_number: buyer.purchase_order_number,
        delivery_preference: order.delivery_preference.clone(),
        gift_messages: order
            .lines
            .iter()
            .filter_map(|l| Some((l.order_item_id.clone(), l.gift_message.clone()?)))
            .collect(),
    };
    (personal, ship_to.country)
}

/// Inserts the lines of `lines` the instruction does not have yet (by Amazon order item id);
/// mapped lines reserve their quantity when `reserve` is set. Lines kept unmapped earlier that
/// are mapped now get their product and reservation.
pub async fn add_missing_lines(
    conn: &mut PgConnection,
    shop_id: Uuid,
    instruction_id: Uuid,
    amazon_order_id: &str,
    lines: &[AmazonLine],
    products: &HashMap<String, Uuid>,
    reserve: bool,
) -> Result<LinesOutcome, StoreError> {
    let existing = self::lines(&mut *conn, instruction_id).await?;
    let mut next_no = existing.iter().map(|l| l.line_no).max().unwrap_or(0) + 1;
    let mut out = LinesOutcome::default();
    let reason = format!("amazon order {amazon_order_id}");
    for line in lines {
        let known = existing
            .iter()
            .find(|l| l.amazon_order_item_id.as_deref() == Some(line.order_item_id.as_str()));
        let product = products.get(&line.sku).copied();
        match known {
            Some(l) => {
                if l.product_id.is_none() {
                    match product {
                        Some(p) => {
                            let qty = if reserve { l.quantity } else { 0 };
                            sqlx::query!(
                                "UPDATE instruction_lines SET product_id = $2, reserved_quantity = $3 WHERE id = $1",
                                l.id,
                                p,
                                qty
                            )
                            .execute(&mut *conn)
                            .await?;
                            catalog::reserve(&mut *conn, shop_id, p, qty, &reason).await?;
                            out.newly_mapped += 1;
                        }
                        None => out.still_unmapped += 1,
                    }
                }
            }
            None => {
                let qty = if reserve && product.is_some() {
                    line.quantity
                } else {
                    0
                };
                sqlx::query!(
                    r#"INSERT INTO instruction_lines
                         (id, instruction_id, shop_id, line_no, amazon_order_item_id, sku, product_id, title, quantity,
                          unit_price, line_total, reserved_quantity, is_gift, gift_wrap_level, cod_fee)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"#,
                    Uuid::now_v7(),
                    instruction_id,
                    shop_id,
                    next_no,
                    line.order_item_id,
                    line.sku,
                    product,
                    line.title,
                    line.quantity,
                    line.unit_price,
                    line.line_total,
                    qty,
                    line.is_gift,
                    line.gift_wrap_level,
                    line.cod_fee
                )
                .execute(&mut *conn)
                .await?;
                next_no += 1;
                out.inserted += 1;
                match product {
                    Some(p) => catalog::reserve(&mut *conn, shop_id, p, qty, &reason).await?,
                    None => out.unmapped_skus.push(line.sku.clone()),
                }
            }
        }
    }
    Ok(out)
}

/// Fills in what Amazon exposes once an order is paid: payment status paid, buyer, ship-to,
/// payment method, the order details (business, gift, windows), prices and totals (line totals, order total, shipping and COD fee). A hold the import placed because the order was unpaid
/// (`hold_reason = 'unpaid'`) is released (awaiting shipment); any other hold stays. The
/// delivery method is replaced only while it is still the placeholder and a rule matched.
pub async fn apply_paid(
    conn: &mut PgConnection,
    keys: &Keyring,
    instruction: &Instruction,
    order: &AmazonOrder,
    delivery: Delivery<'_>,
) -> Result<(), StoreError> {
    let instruction_id = instruction.id;
    let (personal, country) = personal_data(order);
    let sealed = personal.seal(keys, instruction.shop_id, instruction_id);
    let (dm_id, dm_name) = match delivery {
        Delivery::Placeholder => (None, None),
        Delivery::Method(m) => (Some(m.id), Some(m.name.clone())),
    };
    sqlx::query!(
        r#"UPDATE shipping_instructions SET
              payment_status = 'paid',
              status = CASE WHEN status = 'hold' AND hold_reason = 'unpaid' THEN 'awaiting_shipment' ELSE status END,
              hold_reason = CASE WHEN status = 'hold' AND hold_reason = 'unpaid' THEN NULL ELSE hold_reason END,
              amazon_status = $2, amazon_last_updated_at = $3,
              pii_enc = $4, ship_to_country = $5,
              buyer_name = NULL, buyer_email = NULL, ship_to_name = NULL, ship_to_postal_code = NULL,
              ship_to_state = NULL, ship_to_city = NULL, ship_to_address = NULL, ship_to_phone = NULL,
              payment_method = $6, ship_service_level = COALESCE($7, ship_service_level), is_prime = $8,
              currency = COALESCE($9, currency), order_total = COALESCE($10, order_total),
              shipping_total = COALESCE($13, shipping_total), cod_fee = COALESCE($14, cod_fee),
              is_business = $15, is_premium = is_premium OR $16, is_gift = is_gift OR $17,
              earliest_ship_at = COALESCE($18, earliest_ship_at), latest_ship_at = COALESCE($19, latest_ship_at),
              earliest_delivery_at = COALESCE($20, earliest_delivery_at),
              latest_delivery_at = COALESCE($21, latest_delivery_at),
              scheduled_delivery_from = COALESCE($22, scheduled_delivery_from),
              scheduled_delivery_to = COALESCE($23, scheduled_delivery_to),
              delivery_method_id = CASE WHEN delivery_method_id IS NULL AND $11::uuid IS NOT NULL THEN $11 ELSE delivery_method_id END,
              delivery_method_name = CASE WHEN delivery_method_id IS NULL AND $11::uuid IS NOT NULL THEN $12 ELSE delivery_method_name END,
              updated_at = now()
           WHERE id = $1"#,
        instruction_id,
        order.status.as_str(),
        order.last_updated_at,
        sealed,
        country,
        order.payment_method.as_str(),
        order.ship_service_level,
        order.is_prime,
        order.currency,
        order.order_total,
        dm_id,
        dm_name,
        order.shipping_total,
        order.cod_fee,
        order.details.is_business,
        order.details.is_premium,
        order.is_gift(),
        order.details.earliest_ship_at,
        order.details.latest_ship_at,
        order.details.earliest_delivery_at,
        order.details.latest_delivery_at,
        order.details.scheduled_delivery_from,
        order.details.scheduled_delivery_to,
    )
    .execute(&mut *conn)
    .await?;
    for line in &order.lines {
        sqlx::query!(
            r#"UPDATE instruction_lines SET unit_price = COALESCE($3, unit_price), line_total = COALESCE($4, line_total),
                      is_gift = is_gift OR $5, gift_wrap_level = COALESCE($6, gift_wrap_level),
                      cod_fee = COALESCE($7, cod_fee)
               WHERE instruction_id = $1 AND amazon_order_item_id = $2"#,
            instruction_id,
            line.order_item_id,
            line.unit_price,
            line.line_total,
            line.is_gift,
            line.gift_wrap_level,
            line.cod_fee
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Records Amazon's status and update time unless the stored state is newer. Returns whether
/// anything changed.
pub async fn note_amazon_state(
    conn: &mut PgConnection,
    instruction_id: Uuid,
    status: AmazonOrderStatus,
    last_updated_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = sqlx::query!(
        r#"UPDATE shipping_instructions SET amazon_status = $2, amazon_last_updated_at = $3, updated_at = now()
           WHERE id = $1 AND (amazon_status IS DISTINCT FROM $2 OR amazon_last_updated_at IS DISTINCT FROM $3)
             AND (amazon_last_updated_at IS NULL OR amazon_last_updated_at <= $3)"#,
        instruction_id,
        status.as_str(),
        last_updated_at
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Cancels an instruction and releases the stock its lines reserved (free stock rises at
/// once). Returns the quantity released.
pub async fn cancel(
    conn: &mut PgConnection,
    instruction_id: Uuid,
    amazon_status: AmazonOrderStatus,
    last_updated_at: DateTime<Utc>,
    reason: &str,
) -> Result<i64, StoreError> {
    let shop_id = sqlx::query_scalar!(
        r#"UPDATE shipping_instructions SET status = 'canceled', amazon_status = $2, amazon_last_updated_at = $3,
                  updated_at = now()
           WHERE id = $1 RETURNING shop_id"#,
        instruction_id,
        amazon_status.as_str(),
        last_updated_at
    )
    .fetch_one(&mut *conn)
    .await?;
    let reserved = sqlx::query!(
        r#"UPDATE instruction_lines l SET reserved_quantity = 0
           FROM (SELECT id, reserved_quantity FROM instruction_lines
                 WHERE instruction_id = $1 AND reserved_quantity > 0 FOR UPDATE) old
           WHERE l.id = old.id
           RETURNING l.product_id, old.reserved_quantity"#,
        instruction_id
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut total = 0i64;
    for r in reserved {
        if let Some(p) = r.product_id {
            catalog::release(&mut *conn, shop_id, p, r.reserved_quantity, reason).await?;
            total += i64::from(r.reserved_quantity);
        }
    }
    Ok(total)
}

/// Sets the status of an instruction (WMS operations: allocation and the like; used by ctl
/// and tests). Allocation moves reserved stock to allocated.
pub async fn set_status(
    conn: &mut PgConnection,
    instruction_id: Uuid,
    status: InstructionStatus,
) -> Result<(), StoreError> {
    let shop_id = sqlx::query_scalar!(
        "UPDATE shipping_instructions SET status = $2, updated_at = now() WHERE id = $1 RETURNING shop_id",
        instruction_id,
        status.as_str()
    )
    .fetch_optional(&mut *conn)
    .await?
    .found("instruction", instruction_id)?;
    if status == InstructionStatus::Allocated {
        let moved = sqlx::query!(
            r#"UPDATE instruction_lines l SET reserved_quantity = 0
               FROM (SELECT id, reserved_quantity FROM instruction_lines
                     WHERE instruction_id = $1 AND reserved_quantity > 0 FOR UPDATE) old
               WHERE l.id = old.id
               RETURNING l.product_id, old.reserved_quantity"#,
            instruction_id
        )
        .fetch_all(&mut *conn)
        .await?;
        for m in moved {
            if let Some(p) = m.product_id {
                sqlx::query!(
                    r#"UPDATE stock SET reserved = GREATEST(0, reserved - $2), allocated = allocated + $2,
                              change_seq = nextval('stock_change_seq'), changed_at = now()
                       WHERE product_id = $1"#,
                    p,
                    m.reserved_quantity
                )
                .execute(&mut *conn)
                .await?;
                sqlx::query!(
                    r#"INSERT INTO stock_changes (shop_id, product_id, kind, delta_reserved, delta_allocated, reason)
                       VALUES ($1, $2, 'allocate', $3, $4, 'allocation')"#,
                    shop_id,
                    p,
                    -m.reserved_quantity,
                    m.reserved_quantity
                )
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    Ok(())
}

/// Puts the open instruction (保留 or 出荷待ち) of an Amazon order on hold for `reason`, or changes
/// the reason of its hold. Returns false when there is no open instruction of that order in the
/// shop (allocated, shipped and canceled ones are not held).
pub async fn place_hold(
    conn: &mut PgConnection,
    shop_id: Uuid,
    amazon_order_id: &str,
    reason: HoldReason,
) -> Result<bool, StoreError> {
    let n = sqlx::query!(
        r#"UPDATE shipping_instructions SET status = 'hold', hold_reason = $3, updated_at = now()
           WHERE shop_id = $1 AND amazon_order_id = $2 AND status IN ('hold', 'awaiting_shipment')"#,
        shop_id,
        amazon_order_id,
        reason.as_str()
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Releases the hold of an Amazon order's instruction (保留 → 出荷待ち) whatever its reason.
/// Returns false when it is not on hold (or there is no such order in the shop).
pub async fn release_hold(
    conn: &mut PgConnection,
    shop_id: Uuid,
    amazon_order_id: &str,
) -> Result<bool, StoreError> {
    let n = sqlx::query!(
        r#"UPDATE shipping_instructions SET status = 'awaiting_shipment', hold_reason = NULL, updated_at = now()
           WHERE shop_id = $1 AND amazon_order_id = $2 AND status = 'hold'"#,
        shop_id,
        amazon_order_id
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// The hold reason of an instruction (`None` when it is not on hold or has none recorded).
pub async fn hold_reason(
    conn: &mut PgConnection,
    instruction_id: Uuid,
) -> Result<Option<HoldReason>, StoreError> {
    let r = sqlx::query_scalar!(
        "SELECT hold_reason FROM shipping_instructions WHERE id = $1",
        instruction_id
    )
    .fetch_optional(conn)
    .await?
    .found("shipping instruction", instruction_id)?;
    Ok(r.and_then(|r| r.parse().ok()))
}

/// An open instruction whose ship-by time (`LatestShipDate`) is near or past.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipByDue {
    pub id: Uuid,
    pub amazon_order_id: String,
    pub status: String,
    pub latest_ship_at: DateTime<Utc>,
}

/// Open (hold, awaiting shipment, allocated) instructions of a shop whose ship-by time is after
/// `after` and at or before `until`, not noticed yet ([`mark_ship_by_noticed`]), earliest first.
pub async fn ship_by_due(
    conn: &mut PgConnection,
    shop_id: Uuid,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<ShipByDue>, StoreError> {
    Ok(sqlx::query_as!(
        ShipByDue,
        r#"SELECT id, amazon_order_id AS "amazon_order_id!", status, latest_ship_at AS "latest_ship_at!"
           FROM shipping_instructions
           WHERE shop_id = $1 AND status IN ('hold', 'awaiting_shipment', 'allocated')
             AND latest_ship_at > $2 AND latest_ship_at <= $3
             AND ship_by_noticed_at IS NULL AND amazon_order_id IS NOT NULL
           ORDER BY latest_ship_at, amazon_order_id"#,
        shop_id,
        after,
        until
    )
    .fetch_all(conn)
    .await?)
}

/// Records that the ship-by attention entry of these instructions was written.
pub async fn mark_ship_by_noticed(conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE shipping_instructions SET ship_by_noticed_at = now() WHERE id = ANY($1)",
        ids
    )
    .execute(conn)
    .await?;
    Ok(())
}

//! The invariant checker, run after every scenario once the system has drained:
//!
//! 1. every merchant-fulfilled order of each shop's seller at the simulator, created inside the
//!    window and not cancelled before it was seen, exists exactly once as a shipping
//!    instruction of that shop, with one line per order item (and no instruction exists for an
//!    order the simulator does not have);
//! 2. every shipment confirmed on the simulator is confirmed once (one package per order), and
//!    every instruction we consider sent (`printed`/`shipped`) has exactly that one package;
//! 3. no outbox row is left unsent;
//! 4. each dead-letter queue holds exactly the poison messages the scenario planted;
//! 5. each product's reserved stock equals the sum of the reserved quantities of the open lines
//!    (closed instructions hold no reservation);
//! 6. business keys: at most one successful shipment feed message per instruction.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use spapi_sim::{FulfilledBy, OrderStatus};
use uuid::Uuid;

use crate::harness::{Svc, System};

/// (amazon_order_id, line count, status, api_status, tracking numbers)
type InstructionRow = (String, i64, String, String, Vec<String>);

/// What a scenario expects beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// Orders created at the simulator from this time on are expected (default: all).
    pub window_from: Option<DateTime<Utc>>,
    /// Poison messages planted per service (their DLQ must hold exactly these many).
    pub poison: BTreeMap<Svc, u32>,
    /// Orders deliberately not importable (e.g. a 10 MB address): not required to exist.
    pub not_imported: Vec<String>,
    /// Shops to check (default: all of the system's shops).
    pub shops: Option<Vec<Uuid>>,
}

/// What the checker found.
#[derive(Debug, Default)]
pub struct Report {
    pub violations: Vec<String>,
    pub orders_expected: usize,
    pub instructions: usize,
    pub confirmed_on_amazon: usize,
}

impl Report {
    #[track_caller]
    pub fn assert_ok(&self) {
        assert!(
            self.violations.is_empty(),
            "{} invariant violation(s):\n{}",
            self.violations.len(),
            self.violations
                .iter()
                .take(40)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// Runs every check; see the module documentation.
pub async fn check(sys: &System, expect: &Expect) -> Report {
    let mut r = Report::default();
    let pool = &sys.pool;
    let sim_orders = sys.sim.sim().orders();
    for shop in &sys.shops {
        if let Some(only) = &expect.shops
            && !only.contains(&shop.id)
        {
            continue;
        }
        // instruction per order id, with its line count
        let rows: Vec<InstructionRow> = sqlx::query_as(
            r#"SELECT i.amazon_order_id, (SELECT count(*) FROM instruction_lines l WHERE l.instruction_id = i.id),
                      i.status, i.api_status, i.tracking_numbers
                 FROM shipping_instructions i WHERE i.shop_id = $1 AND i.source = 'amazon_api'"#,
        )
        .bind(shop.id)
        .fetch_all(pool)
        .await
        .unwrap();
        r.instructions += rows.len();
        let mut by_order: HashMap<&str, Vec<&InstructionRow>> = HashMap::new();
        for row in &rows {
            by_order.entry(row.0.as_str()).or_default().push(row);
        }
        let mine: Vec<&spapi_sim::Order> = sim_orders
            .iter()
            .filter(|o| o.seller_id == shop.seller_id)
            .collect();
        let known: HashMap<&str, &spapi_sim::Order> =
            mine.iter().map(|o| (o.order_id.as_str(), *o)).collect();
        for o in &mine {
            if o.fulfilled_by != FulfilledBy::Merchant
                || expect.window_from.is_some_and(|f| o.created_time < f)
                || expect.not_imported.contains(&o.order_id)
            {
                continue;
            }
            let found = by_order.get(o.order_id.as_str());
            if o.status == OrderStatus::Cancelled && found.is_none() {
                continue; // cancelled before any import saw it
            }
            r.orders_expected += 1;
            match found.map(|v| v.len()).unwrap_or(0) {
                0 => r
                    .violations
                    .push(format!("[{}] order {} missing", shop.code, o.order_id)),
                1 => {
                    let lines = found.unwrap()[0].1;
                    if lines != o.items.len() as i64 {
                        r.violations.push(format!(
                            "[{}] order {} has {lines} lines, Amazon {}",
                            shop.code,
                            o.order_id,
                            o.items.len()
                        ));
                    }
                }
                n => r.violations.push(format!(
                    "[{}] order {} imported {n} times",
                    shop.code, o.order_id
                )),
            }
            // 2. shipments
            let packages = o.packages.len();
            if packages > 0 {
                r.confirmed_on_amazon += 1;
            }
            if packages > 1 {
                r.violations.push(format!(
                    "[{}] order {} confirmed {packages} times on Amazon",
                    shop.code, o.order_id
                ));
            }
            if let Some(v) = found
                && let Some(row) = v.first()
            {
                let sent = row.3 == "printed" || row.3 == "shipped";
                if sent && packages != 1 {
                    r.violations.push(format!(
                        "[{}] order {} is {} here but has {packages} packages on Amazon",
                        shop.code, o.order_id, row.3
                    ));
                }
                if packages >= 1 && row.2 != "shipped" {
                    r.violations.push(format!(
                        "[{}] order {} confirmed on Amazon but instruction is {}",
                        shop.code, o.order_id, row.2
                    ));
                }
                if packages == 1 && !row.4.contains(&o.packages[0].tracking_number) {
                    r.violations.push(format!(
                        "[{}] order {} confirmed with tracking {} not ours {:?}",
                        shop.code, o.order_id, o.packages[0].tracking_number, row.4
                    ));
                }
            }
        }
        for (order_id, _) in by_order.iter() {
            if !known.contains_key(order_id) {
                r.violations.push(format!(
                    "[{}] instruction for order {order_id} which seller {} does not have",
                    shop.code, shop.seller_id
                ));
            }
        }
    }

    // 3. outbox
    let unsent: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        .fetch_one(pool)
        .await
        .unwrap();
    if unsent > 0 {
        r.violations
            .push(format!("{unsent} outbox row(s) unsent after the drain"));
    }

    // 4. DLQs
    for svc in Svc::ALL {
        let n = sys.queue_len(&sys.topology.dlq(svc.name())).await;
        let want = expect.poison.get(&svc).copied().unwrap_or(0);
        if n != want {
            let peek = bus::dlq_peek(&sys.amqp, &sys.topology.queue(svc.name()), 5)
                .await
                .map(|v| {
                    v.into_iter()
                        .map(|m| {
                            format!(
                                "{:?} {}",
                                m.reason,
                                String::from_utf8_lossy(&m.payload)
                                    .chars()
                                    .take(200)
                                    .collect::<String>()
                            )
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            r.violations.push(format!(
                "DLQ of {} holds {n} message(s), expected {want}: {peek:?}",
                svc.name()
            ));
        }
    }

    // 5. stock reservations
    let bad: Vec<(String, i32, i64, i64)> = sqlx::query_as(
        r#"SELECT p.code, s.reserved,
                  COALESCE((SELECT sum(l.reserved_quantity) FROM instruction_lines l JOIN shipping_instructions i ON i.id = l.instruction_id
                             WHERE l.product_id = p.id AND i.status IN ('hold', 'awaiting_shipment')), 0)::bigint,
                  COALESCE((SELECT sum(l.reserved_quantity) FROM instruction_lines l JOIN shipping_instructions i ON i.id = l.instruction_id
                             WHERE l.product_id = p.id AND i.status NOT IN ('hold', 'awaiting_shipment')), 0)::bigint
             FROM products p JOIN stock s ON s.product_id = p.id"#,
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (code, reserved, open, closed) in bad {
        if i64::from(reserved) != open || closed != 0 {
            r.violations.push(format!(
                "product {code}: stock.reserved {reserved}, open lines reserve {open}, closed lines still reserve {closed}"
            ));
        }
    }

    // 6. business keys
    let twice: i64 = sqlx::query_scalar(
        r#"SELECT count(*) FROM (SELECT m.instruction_id FROM feed_messages m JOIN feed_submissions f ON f.id = m.feed_submission_id
             WHERE m.instruction_id IS NOT NULL AND f.state NOT IN ('cancelled', 'failed') AND m.result IN ('success', 'warning', 'pending')
               AND f.feed_type = 'POST_ORDER_FULFILLMENT_DATA'
             GROUP BY m.instruction_id HAVING count(*) > 1) t"#,
    )
    .fetch_one(pool)
    .await
    .unwrap();
    if twice > 0 {
        r.violations.push(format!(
            "{twice} instruction(s) sent in more than one live shipment feed"
        ));
    }
    r
}

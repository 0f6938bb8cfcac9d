//! Shipping an order, as both the fulfillment feed and `confirmShipment` do it: the
//! tracking-number format of each carrier, checking a shipment against an order, and recording
//! it (package, shipped quantities, status).

use chrono::{DateTime, Utc};

use crate::generate::trunc_secs;
use crate::model::{Order, OrderStatus, Package, PackageItem};

/// Carrier families with a known tracking-number format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Yamato,
    Sagawa,
    JapanPost,
    Generic,
}

fn family(carrier_code: &str, carrier_name: Option<&str>) -> Family {
    let key = if carrier_code == "Other" {
        carrier_name.unwrap_or("")
    } else {
        carrier_code
    };
    let k: String = key
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '_' && *c != '-')
        .collect::<String>()
        .to_lowercase();
    match k.as_str() {
        "yamatotransport" | "yamato" | "ヤマト運輸" | "クロネコヤマト" => {
            Family::Yamato
        }
        "sagawaexpress" | "sagawa" | "佐川急便" => Family::Sagawa,
        "japanpost" | "jppost" | "yupack" | "日本郵便" | "ゆうパック" => Family::JapanPost,
        _ => Family::Generic,
    }
}

/// Whether `tracking` has the format the carrier uses.
/// Yamato and Sagawa: 12 digits (hyphens between 4-digit groups allowed);
/// Japan Post: 11–13 letters/digits; any other carrier: 1–50 of `[A-Za-z0-9-]`.
pub fn tracking_number_valid(
    carrier_code: &str,
    carrier_name: Option<&str>,
    tracking: &str,
) -> bool {
    let digits_12 = |t: &str| {
        let plain: String = t.chars().filter(|c| *c != '-').collect();
        let groups_ok = !t.contains('-') || t.split('-').all(|g| g.len() == 4);
        plain.len() == 12 && plain.bytes().all(|b| b.is_ascii_digit()) && groups_ok
    };
    match family(carrier_code, carrier_name) {
        Family::Yamato | Family::Sagawa => digits_12(tracking),
        Family::JapanPost => {
            (11..=13).contains(&tracking.len())
                && tracking.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        Family::Generic => {
            (1..=50).contains(&tracking.len())
                && tracking
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        }
    }
}

/// A validated shipment, ready to apply to an order.
#[derive(Debug, Clone)]
pub(crate) struct Shipment {
    pub package_reference_id: Option<String>,
    pub carrier_code: String,
    pub carrier_name: Option<String>,
    pub shipping_method: Option<String>,
    pub tracking_number: String,
    pub ship_time: DateTime<Utc>,
    /// Empty = every unshipped unit.
    pub items: Vec<(String, u32)>,
}

/// Why a shipment cannot be applied to an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ShipError {
    Pending,
    Cancelled,
    AlreadyShipped,
    UnknownItem(String),
    TooMany(String),
    BeforeOrderDate,
}

/// Checks a shipment against an order without changing it.
pub(crate) fn check_shipment(
    order: &Order,
    s: &Shipment,
    allow_reconfirm: bool,
) -> Result<(), ShipError> {
    match order.status {
        OrderStatus::Pending => return Err(ShipError::Pending),
        OrderStatus::Cancelled => return Err(ShipError::Cancelled),
        OrderStatus::Shipped if !allow_reconfirm => return Err(ShipError::AlreadyShipped),
        _ => {}
    }
    if s.ship_time < order.created_time {
        return Err(ShipError::BeforeOrderDate);
    }
    for (item_id, qty) in &s.items {
        let Some(item) = order.items.iter().find(|i| &i.order_item_id == item_id) else {
            return Err(ShipError::UnknownItem(item_id.clone()));
        };
        let reconfirm = allow_reconfirm
            && order.packages.iter().any(|p| {
                Some(&p.package_reference_id) == s.package_reference_id.as_ref()
                    && p.items.iter().any(|pi| &pi.order_item_id == item_id)
            });
        if *qty == 0
            || (!reconfirm && *qty > item.quantity_ordered.saturating_sub(item.quantity_shipped))
        {
            return Err(ShipError::TooMany(item_id.clone()));
        }
    }
    Ok(())
}

/// Records the shipment on the order (package, shipped quantities, status, lastUpdatedTime).
pub(crate) fn apply_shipment(order: &mut Order, s: &Shipment, source: &str, now: DateTime<Utc>) {
    let items: Vec<(String, u32)> = if s.items.is_empty() {
        order
            .items
            .iter()
            .map(|i| {
                (
                    i.order_item_id.clone(),
                    i.quantity_ordered.saturating_sub(i.quantity_shipped),
                )
            })
            .filter(|(_, q)| *q > 0)
            .collect()
    } else {
        s.items.clone()
    };
    let ref_id = s
        .package_reference_id
        .clone()
        .unwrap_or_else(|| (order.packages.len() + 1).to_string());
    // Same packageReferenceId again edits that package.
    if let Some(pos) = order
        .packages
        .iter()
        .position(|p| p.package_reference_id == ref_id)
    {
        let old = order.packages.remove(pos);
        for pi in &old.items {
            if let Some(it) = order
                .items
                .iter_mut()
                .find(|i| i.order_item_id == pi.order_item_id)
            {
                it.quantity_shipped = it.quantity_shipped.saturating_sub(pi.quantity);
            }
        }
    }
    for (id, qty) in &items {
        if let Some(it) = order.items.iter_mut().find(|i| &i.order_item_id == id) {
            it.quantity_shipped = (it.quantity_shipped + qty).min(it.quantity_ordered);
        }
    }
    order.packages.push(Package {
        package_reference_id: ref_id,
        carrier_code: s.carrier_code.clone(),
        carrier_name: s.carrier_name.clone(),
        shipping_method: s.shipping_method.clone(),
        tracking_number: s.tracking_number.clone(),
        ship_time: trunc_secs(s.ship_time),
        created_time: trunc_secs(now),
        items: items
            .into_iter()
            .map(|(order_item_id, quantity)| PackageItem {
                order_item_id,
                quantity,
            })
            .collect(),
        source: source.to_string(),
    });
    order.status = if order.items_unshipped() == 0 {
        OrderStatus::Shipped
    } else {
        OrderStatus::PartiallyShipped
    };
    order.last_updated_time = trunc_secs(now).max(order.last_updated_time);
}

//! The simulator's internal data model: orders, listings and the specs used to create them.
//!
//! These types are what the `/_sim/` control API and the in-process [`crate::Sim`] handle
//! expose. They are *not* Amazon's wire shapes: the `api` modules render them into the
//! shapes of each SP-API version.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Marketplace IDs the simulator knows (Far East region).
pub const MARKETPLACE_JP: &str = "A1VC38T7YXB528";
/// Amazon.com.au
pub const MARKETPLACE_AU: &str = "A39IBJ37TRP1C6";
/// Amazon.sg
pub const MARKETPLACE_SG: &str = "A19VAU5U5O7RUS";

/// Static facts about a marketplace.
#[derive(Debug, Clone, Copy)]
pub struct MarketplaceInfo {
    pub id: &'static str,
    pub name: &'static str,
    pub country: &'static str,
    pub currency: &'static str,
    /// Digits after the decimal point in amounts (JPY has none).
    pub scale: u32,
    /// Prefix used for generated order ids.
    pub order_prefix: &'static str,
}

pub const MARKETPLACES: [MarketplaceInfo; 3] = [
    MarketplaceInfo {
        id: MARKETPLACE_JP,
        name: "Amazon.co.jp",
        country: "JP",
        currency: "JPY",
        scale: 0,
        order_prefix: "503",
    },
    MarketplaceInfo {
        id: MARKETPLACE_AU,
        name: "Amazon.com.au",
        country: "AU",
        currency: "AUD",
        scale: 2,
        order_prefix: "249",
    },
    MarketplaceInfo {
        id: MARKETPLACE_SG,
        name: "Amazon.sg",
        country: "SG",
        currency: "SGD",
        scale: 2,
        order_prefix: "171",
    },
];

/// Looks up a marketplace the simulator serves.
pub fn marketplace(id: &str) -> Option<&'static MarketplaceInfo> {
    MARKETPLACES.iter().find(|m| m.id == id)
}

/// Order status, named as in Orders API v2026-01-01 (`FulfillmentStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Pending,
    Unshipped,
    PartiallyShipped,
    Shipped,
    Cancelled,
}

impl OrderStatus {
    /// The v2026-01-01 `FulfillmentStatus` value.
    pub fn as_2026(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Unshipped => "UNSHIPPED",
            OrderStatus::PartiallyShipped => "PARTIALLY_SHIPPED",
            OrderStatus::Shipped => "SHIPPED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    /// The Orders v0 `OrderStatus` value.
    pub fn as_v0(self) -> &'static str {
        match self {
            OrderStatus::Pending => "Pending",
            OrderStatus::Unshipped => "Unshipped",
            OrderStatus::PartiallyShipped => "PartiallyShipped",
            OrderStatus::Shipped => "Shipped",
            OrderStatus::Cancelled => "Canceled",
        }
    }

    /// Whether buyer/recipient PII and prices are visible (Amazon withholds them while
    /// the order is pending, and returns no address for cancelled orders).
    pub fn pii_visible(self) -> bool {
        matches!(
            self,
            OrderStatus::Unshipped | OrderStatus::PartiallyShipped | OrderStatus::Shipped
        )
    }
}

/// Who fulfils the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FulfilledBy {
    #[default]
    Merchant,
    Amazon,
}

impl FulfilledBy {
    pub fn as_2026(self) -> &'static str {
        match self {
            FulfilledBy::Merchant => "MERCHANT",
            FulfilledBy::Amazon => "AMAZON",
        }
    }
    pub fn as_v0(self) -> &'static str {
        match self {
            FulfilledBy::Merchant => "MFN",
            FulfilledBy::Amazon => "AFN",
        }
    }
}

/// Payment method of an order, named as v2026 `paymentExecutions[].paymentMethod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum PaymentMethod {
    #[default]
    CreditCard,
    CashOnDelivery,
    ConvenienceStore,
    GiftCertificate,
}

impl PaymentMethod {
    pub fn as_2026(self) -> &'static str {
        match self {
            PaymentMethod::CreditCard => "CreditCard",
            PaymentMethod::CashOnDelivery => "CashOnDelivery",
            PaymentMethod::ConvenienceStore => "ConvenienceStore",
            PaymentMethod::GiftCertificate => "GiftCertificate",
        }
    }
    /// v0 `PaymentMethod` (COD | CVS | Other).
    pub fn as_v0(self) -> &'static str {
        match self {
            PaymentMethod::CashOnDelivery => "COD",
            PaymentMethod::ConvenienceStore => "CVS",
            _ => "Other",
        }
    }
    /// v0 `PaymentMethodDetails` entry.
    pub fn v0_detail(self) -> &'static str {
        match self {
            PaymentMethod::CreditCard => "Standard",
            PaymentMethod::CashOnDelivery => "CashOnDelivery",
            PaymentMethod::ConvenienceStore => "ConvenienceStore",
            PaymentMethod::GiftCertificate => "GiftCertificate",
        }
    }
}

/// A delivery address. `state_or_region` holds the JP prefecture / AU state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Address {
    pub name: String,
    pub address_line1: String,
    pub address_line2: Option<String>,
    pub city: String,
    pub state_or_region: String,
    pub postal_code: String,
    pub country_code: String,
    pub phone: Option<String>,
}

/// The buyer of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Buyer {
    pub name: String,
    pub email: String,
}

/// A line of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    /// 14 digits.
    pub order_item_id: String,
    pub seller_sku: String,
    pub asin: String,
    pub title: String,
    pub quantity_ordered: u32,
    pub quantity_shipped: u32,
    /// Price of one unit, in the order's currency.
    pub unit_price: Decimal,
    /// Set when the buyer asked to cancel (reason).
    pub buyer_cancel_reason: Option<String>,
    pub buyer_requested_cancel: bool,
    /// The buyer's gift message (v2026 `packing.giftOption.giftMessage`).
    #[serde(default)]
    pub gift_message: Option<String>,
    /// Gift wrap level (v2026 `packing.giftOption.giftWrapLevel`).
    #[serde(default)]
    pub gift_wrap_level: Option<String>,
}

impl OrderItem {
    /// Whether the buyer chose gift options for this item.
    pub fn is_gift(&self) -> bool {
        self.gift_message.is_some() || self.gift_wrap_level.is_some()
    }
}

/// A business (Amazon Business) buyer's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct BusinessBuyer {
    pub company_name: Option<String>,
    pub purchase_order_number: Option<String>,
}

/// A delivery window the buyer chose (scheduled delivery).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// A shipment (package) recorded by confirmShipment or POST_ORDER_FULFILLMENT_DATA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    pub package_reference_id: String,
    pub carrier_code: String,
    pub carrier_name: Option<String>,
    pub shipping_method: Option<String>,
    pub tracking_number: String,
    pub ship_time: DateTime<Utc>,
    pub created_time: DateTime<Utc>,
    pub items: Vec<PackageItem>,
    /// `confirmShipment` or `feed:<feedId>`.
    pub source: String,
}

/// Quantity of one order item in a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageItem {
    pub order_item_id: String,
    pub quantity: u32,
}

/// A cancellation applied to the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cancellation {
    /// BUYER | MERCHANT | AMAZON
    pub cancelled_by: String,
    pub reason: Option<String>,
}

/// An order as the simulator holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// 3-7-7 digits.
    pub order_id: String,
    pub seller_id: String,
    pub marketplace_id: String,
    pub seller_order_id: Option<String>,
    pub created_time: DateTime<Utc>,
    pub last_updated_time: DateTime<Utc>,
    pub status: OrderStatus,
    pub fulfilled_by: FulfilledBy,
    /// e.g. STANDARD, EXPEDITED
    pub service_level: String,
    pub prime: bool,
    pub buyer: Buyer,
    pub address: Address,
    pub payment_method: PaymentMethod,
    pub currency: String,
    /// Shipping charge for the whole order.
    pub shipping_price: Decimal,
    /// Cash-on-delivery fee (JP COD orders).
    pub cod_fee: Decimal,
    pub items: Vec<OrderItem>,
    pub packages: Vec<Package>,
    pub cancellation: Option<Cancellation>,
    pub earliest_ship_date: DateTime<Utc>,
    pub latest_ship_date: DateTime<Utc>,
    pub earliest_delivery_date: DateTime<Utc>,
    pub latest_delivery_date: DateTime<Utc>,
    /// Amazon returns no buyer and no recipient for this order even once it is paid (the app
    /// lacks the PII role, or Amazon withholds the data): `Sim::withhold_order_pii`.
    #[serde(default)]
    pub pii_withheld: bool,
    /// Premium shipping (program `PREMIUM`).
    #[serde(default)]
    pub premium: bool,
    /// An Amazon Business order (program `AMAZON_BUSINESS`) and its buyer's company data.
    #[serde(default)]
    pub business: Option<BusinessBuyer>,
    /// The delivery window the buyer chose (every item's `scheduledDeliveryWindow`).
    #[serde(default)]
    pub scheduled_delivery: Option<DeliveryWindow>,
    /// The buyer's delivery preference (v2026 `recipient.deliveryPreference`), as sent.
    #[serde(default)]
    pub delivery_preference: Option<serde_json::Value>,
}

impl Order {
    /// Sum of unit price × quantity over all lines.
    pub fn items_total(&self) -> Decimal {
        self.items
            .iter()
            .map(|i| i.unit_price * Decimal::from(i.quantity_ordered))
            .sum()
    }

    /// Items total + shipping + COD fee.
    pub fn grand_total(&self) -> Decimal {
        self.items_total() + self.shipping_price + self.cod_fee
    }

    /// The shipping charge and COD fee attributed to the item at `idx`: the order's, on its
    /// first item (the item proceeds of both API versions carry them there).
    pub fn item_charges(&self, idx: usize) -> (Decimal, Decimal) {
        if idx == 0 {
            (self.shipping_price, self.cod_fee)
        } else {
            (Decimal::ZERO, Decimal::ZERO)
        }
    }

    pub fn items_shipped(&self) -> u32 {
        self.items.iter().map(|i| i.quantity_shipped).sum()
    }

    pub fn items_unshipped(&self) -> u32 {
        self.items
            .iter()
            .map(|i| i.quantity_ordered.saturating_sub(i.quantity_shipped))
            .sum()
    }
}

/// Formats an amount with the marketplace currency's number of decimals.
pub fn format_amount(amount: Decimal, currency: &str) -> String {
    let scale = MARKETPLACES
        .iter()
        .find(|m| m.currency == currency)
        .map(|m| m.scale)
        .unwrap_or(2);
    let mut a = amount.round_dp(scale);
    a.rescale(scale);
    a.to_string()
}

/// One line of an [`OrderSpec`].
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ItemSpec {
    pub seller_sku: Option<String>,
    pub quantity: Option<u32>,
    pub unit_price: Option<Decimal>,
    pub title: Option<String>,
    pub asin: Option<String>,
    pub order_item_id: Option<String>,
    pub gift_message: Option<String>,
    pub gift_wrap_level: Option<String>,
}

/// What to create with [`crate::Sim::create_order`] / `POST /_sim/orders`.
/// Every field is optional; missing ones are generated.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct OrderSpec {
    pub order_id: Option<String>,
    pub seller_id: Option<String>,
    /// Default: JP.
    pub marketplace_id: Option<String>,
    /// PENDING (default), UNSHIPPED, SHIPPED or CANCELLED.
    pub status: Option<OrderStatus>,
    /// Default: five minutes ago (so that a query that respects Amazon's
    /// "before must be two minutes in the past" rule sees it at once).
    pub created_time: Option<DateTime<Utc>>,
    pub fulfilled_by: Option<FulfilledBy>,
    pub prime: Option<bool>,
    pub payment_method: Option<PaymentMethod>,
    pub buyer: Option<Buyer>,
    pub address: Option<Address>,
    pub seller_order_id: Option<String>,
    pub service_level: Option<String>,
    /// Shipping charge of the whole order; default: free for about 60 % of the orders, a flat
    /// rate of the marketplace for the others. (The COD fee follows the payment method.)
    pub shipping_price: Option<Decimal>,
    pub items: Vec<ItemSpec>,
    /// Premium shipping (program `PREMIUM`).
    pub premium: Option<bool>,
    /// An Amazon Business order with this buyer's company data.
    pub business: Option<BusinessBuyer>,
    /// A delivery window the buyer chose; the service level defaults to `SCHEDULED`.
    pub scheduled_delivery: Option<DeliveryWindow>,
    /// The buyer's delivery preference, in the v2026 `DeliveryPreference` shape.
    pub delivery_preference: Option<serde_json::Value>,
    /// Ship-by time (`LatestShipDate`); default: one or two days after creation.
    pub latest_ship_date: Option<DateTime<Utc>>,
}

/// Relative weights of the marketplaces when generating orders.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MarketplaceMix {
    pub jp: u32,
    pub au: u32,
    pub sg: u32,
    /// Share (0..=1) of generated orders left PENDING; the others are UNSHIPPED.
    pub pending_ratio: f64,
}

impl Default for MarketplaceMix {
    fn default() -> Self {
        MarketplaceMix {
            jp: 6,
            au: 2,
            sg: 2,
            pending_ratio: 0.4,
        }
    }
}

/// A status change requested through [`crate::Sim::set_order_status`] or
/// `POST /_sim/orders/{orderId}/status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StatusChange {
    /// Payment authorised: PENDING → UNSHIPPED.
    Unshipped,
    /// Cancel the order (by BUYER, MERCHANT or AMAZON; default AMAZON).
    Cancelled {
        #[serde(default, rename = "cancelledBy")]
        cancelled_by: Option<String>,
        #[serde(default)]
        reason: Option<String>,
    },
    /// The buyer asks to cancel: sets `BuyerRequestedCancel` on every line; the order
    /// keeps its status until the seller cancels it.
    BuyerCancelRequested {
        #[serde(default)]
        reason: Option<String>,
    },
}

/// A listing (offer) of a seller's SKU, with its merchant-fulfilled availability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    pub seller_id: String,
    pub sku: String,
    pub asin: String,
    pub product_type: String,
    pub item_name: String,
    pub marketplace_ids: Vec<String>,
    /// MFN quantity (`fulfillment_availability[DEFAULT].quantity`).
    pub quantity: Option<u32>,
    /// Handling time (`lead_time_to_ship_max_days`); `None` = Amazon's default.
    pub lead_time_to_ship_max_days: Option<u32>,
    pub restock_date: Option<String>,
    /// Other attributes, as sent (JSON object of attribute name → array).
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub created_time: DateTime<Utc>,
    pub last_updated_time: DateTime<Utc>,
}

/// Body of `PUT /_sim/listings/{sku}`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ListingSpec {
    pub seller_id: Option<String>,
    pub quantity: Option<u32>,
    pub lead_time_to_ship_max_days: Option<u32>,
    pub item_name: Option<String>,
    pub marketplace_ids: Option<Vec<String>>,
}

/// `2026-01-01T00:00:00Z`
pub(crate) fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `2026-01-01T00:00:00.000Z`
pub(crate) fn fmt_time_ms(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Amazon order id: 3-7-7 digits.
pub fn is_order_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3
        && parts[0].len() == 3
        && parts[1].len() == 7
        && parts[2].len() == 7
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids() {
        assert!(is_order_id("503-1234567-1234567"));
        assert!(!is_order_id("503-123456-1234567"));
        assert!(!is_order_id("TEST_CASE_400"));
    }
}

//! The connector's domain: shops, marketplaces, stock, shipping instructions, their statuses, and
//! the seed's rules as pure functions. No IO lives here.

pub mod carrier;
pub mod delivery_rules;
pub mod eligibility;
pub mod feed_stuck;
pub mod inventory;
pub mod marketplace;
pub mod messages;
pub mod money;
pub mod notifications;
pub mod order_id;
pub mod packages;
pub mod schedule;
pub mod ship_by;
pub mod shop;
pub mod status;
pub mod stock;
pub mod tracking;
pub mod window;

pub use marketplace::Marketplace;
pub use money::{Currency, Money};
pub use order_id::is_amazon_order_id;
pub use status::{
    AmazonOrderStatus, ApiStatus, ApiTransition, HoldReason, InstructionStatus, PaymentMethod,
    PaymentStatus,
};

/// Buyer and ship-to value registered while Amazon still withholds them (Pending orders).
pub const PLACEHOLDER_REGISTRATION: &str = "Amazon 仮登録";
/// Payment method registered while Amazon still withholds it (Pending orders).
pub const PLACEHOLDER_PAYMENT_METHOD: &str = "Amazon 仮支払方法";
/// Delivery method registered by default: Amazon orders carry none; delivery rules set the real one.
pub const PLACEHOLDER_DELIVERY_METHOD: &str = "Amazon 仮配送方法";

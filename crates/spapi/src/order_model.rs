//! Orders API v2026-01-01 model: [`Order`] and its parts, and the enums of the API. Re-exported
//! by [`crate::orders`], which holds the operations.
//!
//! Models follow `orders_2026-01-01.json`. Unknown fields are ignored and unknown enum values
//! are kept as `Other(..)`, so Amazon adding data never breaks ingestion.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::types::{Money, string_enum};

string_enum! {
    /// `FulfillmentStatus` of an order.
    pub enum FulfillmentStatus {
        /// Not yet available for fulfillment.
        PendingAvailability = "PENDING_AVAILABILITY",
        /// Placed but payment not yet authorized.
        Pending = "PENDING",
        /// Ready to ship.
        Unshipped = "UNSHIPPED",
        /// Some items shipped.
        PartiallyShipped = "PARTIALLY_SHIPPED",
        /// All items shipped.
        Shipped = "SHIPPED",
        /// Cancelled.
        Cancelled = "CANCELLED",
        /// Cannot be fulfilled.
        Unfulfillable = "UNFULFILLABLE",
    }
}

string_enum! {
    /// Who fulfills the order (`fulfilledBy`).
    pub enum FulfilledBy {
        /// The seller (MFN).
        Merchant = "MERCHANT",
        /// Amazon (AFN / FBA).
        Amazon = "AMAZON",
    }
}

string_enum! {
    /// Optional data sets of `searchOrders`/`getOrder` (`includedData`).
    pub enum IncludedData {
        /// Buyer name, e-mail, company, purchase order number.
        Buyer = "BUYER",
        /// Delivery address and preferences.
        Recipient = "RECIPIENT",
        /// Proceeds (order and item totals).
        Proceeds = "PROCEEDS",
        /// Expenses (points).
        Expense = "EXPENSE",
        /// Promotions.
        Promotion = "PROMOTION",
        /// Cancellation requests and executions.
        Cancellation = "CANCELLATION",
        /// Fulfillment status and windows.
        Fulfillment = "FULFILLMENT",
        /// Packages (tracking).
        Packages = "PACKAGES",
        /// Tax data.
        Tax = "TAX",
        /// Payment executions.
        Payment = "PAYMENT",
        /// Fulfillment orders.
        FulfillmentOrders = "FULFILLMENT_ORDERS",
    }
}

string_enum! {
    /// A proceeds category (`type` of `OrderProceedsBreakdown` and `ItemProceedsBreakdown`).
    pub enum ProceedsType {
        /// The items' price (unit price × quantity).
        Item = "ITEM",
        /// Shipping charges.
        Shipping = "SHIPPING",
        /// Gift wrapping.
        GiftWrap = "GIFT_WRAP",
        /// Cash-on-delivery fee.
        CodFee = "COD_FEE",
        /// Tax.
        Tax = "TAX",
        /// Discounts.
        Discount = "DISCOUNT",
        /// A delivery tip (order level only, charged separately).
        DeliveryTip = "DELIVERY_TIP",
        /// Amazon's own "other" category (`OTHER`; the variant `Other(..)` holds values not
        /// documented yet).
        OtherCharges = "OTHER",
    }
}

string_enum! {
    /// Address type.
    pub enum AddressType {
        /// A home.
        Residential = "RESIDENTIAL",
        /// A business.
        Commercial = "COMMERCIAL",
        /// A pickup point.
        PickupPoint = "PICKUP_POINT",
    }
}

string_enum! {
    /// Status of a shipped package.
    pub enum PackageStatusCode {
        /// Not yet shipped.
        Pending = "PENDING",
        /// In transit.
        InTransit = "IN_TRANSIT",
        /// Shipped.
        Shipped = "SHIPPED",
        /// Delivered.
        Delivered = "DELIVERED",
        /// Cancelled.
        Cancelled = "CANCELLED",
        /// Could not be delivered.
        Undeliverable = "UNDELIVERABLE",
    }
}

/// An order (`Order`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// Amazon order id (3-7-7).
    pub order_id: String,
    /// Other ids of the order (e.g. `SELLER_ORDER_ID`).
    #[serde(default)]
    pub order_aliases: Vec<Alias>,
    /// Creation time.
    pub created_time: DateTime<Utc>,
    /// Last update time.
    pub last_updated_time: DateTime<Utc>,
    /// Programs (`PRIME`, `AMAZON_BUSINESS`, `PREMIUM`, `PREORDER`, ...).
    #[serde(default)]
    pub programs: Vec<String>,
    /// Related orders (replacements, exchanges).
    #[serde(default)]
    pub associated_orders: Vec<AssociatedOrder>,
    /// Where the order was placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sales_channel: Option<SalesChannel>,
    /// Buyer (`includedData=BUYER`). PII.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer: Option<Buyer>,
    /// Recipient (`includedData=RECIPIENT`). PII.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<Recipient>,
    /// Proceeds (`includedData=PROCEEDS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proceeds: Option<OrderProceeds>,
    /// Payment (`includedData=PAYMENT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<OrderPayment>,
    /// Tax data (`includedData=TAX`), kept as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax: Option<serde_json::Value>,
    /// Fulfillment (`includedData=FULFILLMENT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfillment: Option<OrderFulfillment>,
    /// Items (always included).
    #[serde(default)]
    pub order_items: Vec<OrderItem>,
    /// Packages (`includedData=PACKAGES`).
    #[serde(default)]
    pub packages: Vec<OrderPackage>,
    /// Fulfillment orders (`includedData=FULFILLMENT_ORDERS`).
    #[serde(default)]
    pub fulfillment_orders: Vec<FulfillmentOrder>,
}

impl Order {
    /// The order's fulfillment status, when `includedData=FULFILLMENT` was requested.
    pub fn fulfillment_status(&self) -> Option<&FulfillmentStatus> {
        self.fulfillment.as_ref().map(|f| &f.fulfillment_status)
    }

    /// The marketplace the order was placed in.
    pub fn marketplace_id(&self) -> Option<&str> {
        self.sales_channel.as_ref()?.marketplace_id.as_deref()
    }
}

/// An alternative order id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alias {
    /// The id.
    pub alias_id: String,
    /// Kind (`SELLER_ORDER_ID`).
    pub alias_type: String,
}

/// A related order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociatedOrder {
    /// Related order id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// Relation (e.g. `REPLACEMENT_ORIGINAL_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association_type: Option<String>,
}

/// Sales channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SalesChannel {
    /// Channel (`AMAZON`, `NON_AMAZON`).
    pub channel_name: String,
    /// Marketplace id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marketplace_id: Option<String>,
    /// Marketplace name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marketplace_name: Option<String>,
}

/// Buyer (PII).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Buyer {
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_name: Option<String>,
    /// Anonymized relay e-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_email: Option<String>,
    /// Company.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_company_name: Option<String>,
    /// Business purchase order number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_purchase_order_number: Option<String>,
}

/// Recipient (PII).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recipient {
    /// Delivery address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_address: Option<CustomerAddress>,
    /// Delivery preferences (drop-off place, instructions, preferred hours). PII.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_preference: Option<DeliveryPreference>,
}

/// The buyer's delivery instructions for the address (`DeliveryPreference`). PII.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryPreference {
    /// Where to leave the parcel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_off_location: Option<String>,
    /// Building instructions, landmarks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_instruction: Option<String>,
    /// Preferred days and hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_time: Option<PreferredDeliveryTime>,
    /// `HAS_ACCESS_POINT`, `PALLET_ENABLED`, `PALLET_DISABLED`.
    #[serde(default)]
    pub delivery_capabilities: Vec<String>,
}

/// Days and hours deliveries are preferred (`PreferredDeliveryTime`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreferredDeliveryTime {
    /// Opening hours by day.
    #[serde(default)]
    pub business_hours: Vec<BusinessHour>,
    /// Dates that differ (kept as raw JSON).
    #[serde(default)]
    pub exception_dates: Vec<serde_json::Value>,
}

/// Hours of one day (`BusinessHour`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BusinessHour {
    /// `SUN` .. `SAT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_of_week: Option<String>,
    /// Open intervals.
    #[serde(default)]
    pub time_windows: Vec<TimeWindow>,
}

/// A time interval (`TimeWindow`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeWindow {
    /// Start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<HourMinute>,
    /// End.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<HourMinute>,
}

/// A time of day (`HourMinute`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HourMinute {
    /// 0-23.
    #[serde(default)]
    pub hour: u32,
    /// 0-59.
    #[serde(default)]
    pub minute: u32,
}

/// A customer address (PII).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerAddress {
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Company.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    /// Line 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_line1: Option<String>,
    /// Line 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_line2: Option<String>,
    /// Line 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_line3: Option<String>,
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// District or county.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district_or_county: Option<String>,
    /// State, region or prefecture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_or_region: Option<String>,
    /// Municipality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub municipality: Option<String>,
    /// Postal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// ISO 3166 country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    /// Phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Address type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_type: Option<AddressType>,
}

/// Order proceeds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderProceeds {
    /// Grand total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grand_total: Option<Money>,
    /// Breakdown.
    #[serde(default)]
    pub breakdowns: Vec<ProceedsBreakdown>,
}

/// One proceeds breakdown line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProceedsBreakdown {
    /// Category.
    #[serde(rename = "type")]
    pub kind: ProceedsType,
    /// Status, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Amount.
    pub subtotal: Money,
    /// Detail lines (items only).
    #[serde(default)]
    pub detailed_breakdowns: Vec<DetailedBreakdown>,
}

/// One detail line of an item's proceeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetailedBreakdown {
    /// Kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtype: Option<String>,
    /// Amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Money>,
}

/// Payment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPayment {
    /// How the buyer paid.
    #[serde(default)]
    pub payment_executions: Vec<PaymentExecution>,
}

/// One payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentExecution {
    /// Method (`CashOnDelivery`, `ConvenienceStore`, `CreditCard`, `Invoice`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
    /// Amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_amount: Option<Money>,
}

/// A time window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DateTimeRange {
    /// Start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earliest_date_time: Option<DateTime<Utc>>,
    /// End.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_date_time: Option<DateTime<Utc>>,
}

/// Order-level fulfillment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderFulfillment {
    /// Status.
    pub fulfillment_status: FulfillmentStatus,
    /// Who fulfills.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfilled_by: Option<FulfilledBy>,
    /// Service level (`STANDARD`, `EXPEDITED`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfillment_service_level: Option<String>,
    /// Ship-by window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ship_by_window: Option<DateTimeRange>,
    /// Deliver-by window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_by_window: Option<DateTimeRange>,
    /// Label printing window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_printing_window: Option<DateTimeRange>,
}

/// An order item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    /// Item id (14 digits).
    pub order_item_id: String,
    /// Quantity ordered.
    pub quantity_ordered: u32,
    /// Item programs (`TRANSPARENCY`, ...).
    #[serde(default)]
    pub programs: Vec<String>,
    /// Product.
    #[serde(default)]
    pub product: ItemProduct,
    /// Proceeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proceeds: Option<ItemProceeds>,
    /// Expense (points), kept as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expense: Option<serde_json::Value>,
    /// Promotions, kept as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<serde_json::Value>,
    /// Cancellation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<ItemCancellation>,
    /// Fulfillment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfillment: Option<ItemFulfillment>,
}

/// The product of an item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemProduct {
    /// ASIN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asin: Option<String>,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Seller SKU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seller_sku: Option<String>,
    /// Condition, kept as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<serde_json::Value>,
    /// Price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<ItemPrice>,
    /// Serial numbers.
    #[serde(default)]
    pub serial_numbers: Vec<String>,
}

/// Item price.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemPrice {
    /// Price of one unit (v0's `ItemPrice` was the whole line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Money>,
    /// Price designation (`BUSINESS_PRICE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_designation: Option<String>,
}

/// Item proceeds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemProceeds {
    /// Total of the line: every category, shipping and COD fee included (the line's own
    /// price is the `ITEM` breakdown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proceeds_total: Option<Money>,
    /// Breakdown by category.
    #[serde(default)]
    pub breakdowns: Vec<ProceedsBreakdown>,
}

/// Item cancellation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemCancellation {
    /// A buyer's request to cancel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_request: Option<CancellationRequest>,
    /// An executed cancellation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_execution: Option<CancellationExecution>,
}

/// A cancellation request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancellationRequest {
    /// Requester (`BUYER`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<String>,
    /// Reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
}

/// An executed cancellation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancellationExecution {
    /// Who cancelled (`BUYER`, `MERCHANT`, `AMAZON`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_by: Option<String>,
    /// Reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
}

/// Item fulfillment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemFulfillment {
    /// Quantity shipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity_fulfilled: Option<u32>,
    /// Quantity not yet shipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity_unfulfilled: Option<u32>,
    /// Packing (gift options). May contain a gift message (PII).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packing: Option<ItemPacking>,
    /// Shipping (scheduled delivery, constraints such as `cashOnDelivery`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping: Option<ItemShipping>,
}

/// Packing of an item (`ItemPacking`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemPacking {
    /// Gift wrap and message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gift_option: Option<GiftOption>,
    /// Serial number requirement, kept as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number_requirement: Option<serde_json::Value>,
}

/// Gift options of an item (`GiftOption`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GiftOption {
    /// The buyer's message (PII).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gift_message: Option<String>,
    /// Wrapping level chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gift_wrap_level: Option<String>,
}

/// Shipping of an item (`ItemShipping`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemShipping {
    /// The delivery window the buyer chose (scheduled delivery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_delivery_window: Option<DateTimeRange>,
    /// Constraints (`cashOnDelivery`, `signatureConfirmation`, ...: `MANDATORY`), kept as raw
    /// JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_constraints: Option<serde_json::Value>,
    /// Cross-border data, kept as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub international_shipping: Option<serde_json::Value>,
}

/// A shipped package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPackage {
    /// The seller's package reference.
    pub package_reference_id: String,
    /// Creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<DateTime<Utc>>,
    /// Status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_status: Option<PackageStatus>,
    /// Carrier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    /// Ship time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ship_time: Option<DateTime<Utc>>,
    /// Shipping service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_service: Option<String>,
    /// Tracking number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    /// Items in the package.
    #[serde(default)]
    pub package_items: Vec<PackageItem>,
}

/// Package status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageStatus {
    /// Status.
    pub status: PackageStatusCode,
    /// Carrier's detailed status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detailed_status: Option<String>,
}

/// An item in a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageItem {
    /// Order item id.
    pub order_item_id: String,
    /// Quantity.
    pub quantity: u32,
    /// Transparency codes.
    #[serde(default)]
    pub transparency_codes: Vec<String>,
}

/// A fulfillment order reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FulfillmentOrder {
    /// Id.
    pub fulfillment_order_id: String,
}

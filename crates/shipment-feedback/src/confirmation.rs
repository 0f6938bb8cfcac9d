//! One shipment confirmation from a target: the parcel's date in the shop's time zone, the
//! carrier, the shipping method and the COD collection method.

use chrono::{DateTime, FixedOffset, NaiveTime, TimeZone, Utc};
use domain::shop::Shop;
use spapi::fulfillment_feed::{self, CodCollectionMethod, FulfillmentItem, ShipmentConfirmation};

use crate::validate::Parcel;
use store::shipments::Target;

/// The shop's UTC offset at `now`.
pub(crate) fn offset_of(shop: &Shop, now: DateTime<Utc>) -> FixedOffset {
    use chrono::Offset;
    shop.time_zone
        .offset_from_utc_datetime(&now.naive_utc())
        .fix()
}

/// When the parcel left: `shipped_at` when the WMS recorded it, else now for today's shipments,
/// else the ship date's evening in the shop's time zone (never in the future).
fn fulfillment_date(
    shop: &Shop,
    t: &Target,
    offset: FixedOffset,
    now: DateTime<Utc>,
) -> DateTime<FixedOffset> {
    let today = domain::eligibility::today_in(shop.time_zone, now);
    let at = match (t.shipped_at, t.shipped_on) {
        (Some(at), _) => at,
        (None, Some(day)) if day != today => shop
            .time_zone
            .from_local_datetime(
                &day.and_time(NaiveTime::from_hms_opt(18, 0, 0).unwrap_or_default()),
            )
            .earliest()
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or(now),
        _ => now,
    };
    at.min(now).with_timezone(&offset)
}

/// The confirmation of one parcel of a validated target: the whole order (the seed's rule), or
/// one package with its number as `MerchantFulfillmentID` and its items.
pub(crate) fn confirmation(
    shop: &Shop,
    t: &Target,
    parcel: &Parcel,
    offset: FixedOffset,
    now: DateTime<Utc>,
) -> ShipmentConfirmation {
    let c = &parcel.checked;
    let jp = t.marketplace_id.as_deref() == Some(domain::Marketplace::Japan.id());
    ShipmentConfirmation {
        amazon_order_id: t.amazon_order_id.clone().unwrap_or_default(),
        merchant_fulfillment_id: parcel.number.map(u64::from),
        fulfillment_date: fulfillment_date(shop, t, offset, now),
        carrier: c.carrier.clone(),
        shipping_method: Some(truncate_chars(
            &t.delivery_method_name,
            fulfillment_feed::MAX_STRING_LEN,
        )),
        tracking_number: c.tracking_number.clone(),
        cod_collection_method: (jp
            && t.payment_method == domain::PaymentMethod::CashOnDelivery.as_str())
        .then_some(CodCollectionMethod::DirectPayment),
        items: parcel
            .items
            .iter()
            .map(|i| FulfillmentItem {
                amazon_order_item_code: i.order_item_id.clone(),
                merchant_fulfillment_item_id: None,
                quantity: i.quantity,
                transparency_codes: Vec::new(),
            })
            .collect(),
    }
}

fn truncate_chars(s: &str, max: usize) -> String {
    s.trim().chars().take(max).collect()
}

//! Which instructions an action may touch, exactly under the seed's conditions (sections 2, 3).

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::status::{AmazonOrderStatus, ApiStatus, InstructionStatus, PaymentStatus};

/// The local facts about an instruction that the status-sync rules look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncState {
    /// Imported through the API (not entered by hand).
    pub imported_via_api: bool,
    pub status: InstructionStatus,
    pub payment_status: PaymentStatus,
}

/// What status sync does with an instruction, given Amazon's current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncDecision {
    /// Payment confirmed: fill in buyer, ship-to, payment method and prices; mark paid.
    MarkPaid,
    /// Amazon cancelled: cancel the instruction and release its reserved stock.
    Cancel,
    /// A condition the seed excludes, but an operator must see (e.g. a cancelled order that is
    /// already allocated: the parcel may be about to leave).
    NeedsAttention(String),
    /// Nothing to do (already applied, or not a case the seed covers).
    Nothing,
}

/// Seed 2, "to paid": imported through the API; between hold and awaiting shipment; payment
/// status not already paid; Amazon now Unshipped or later.
pub fn paid_eligible(state: SyncState, amazon: AmazonOrderStatus) -> bool {
    state.imported_via_api
        && state.status.is_open_for_sync()
        && state.payment_status != PaymentStatus::Paid
        && amazon.is_paid()
}

/// Seed 2, "to canceled": imported through the API; between hold and awaiting shipment; not
/// allocated; not already canceled; Amazon cancelled.
pub fn cancel_eligible(state: SyncState, amazon: AmazonOrderStatus) -> bool {
    state.imported_via_api
        && state.status.is_open_for_sync()
        && amazon == AmazonOrderStatus::Cancelled
}

/// The status-sync decision for one instruction.
pub fn decide(state: SyncState, amazon: AmazonOrderStatus) -> SyncDecision {
    if !state.imported_via_api {
        return SyncDecision::Nothing;
    }
    if cancel_eligible(state, amazon) {
        return SyncDecision::Cancel;
    }
    if amazon == AmazonOrderStatus::Cancelled {
        return match state.status {
            InstructionStatus::Allocated => SyncDecision::NeedsAttention(
                "Amazon cancelled this order but the instruction is already allocated (引当済み): it was not canceled; \
                 stop the parcel and cancel it by hand"
                    .into(),
            ),
            InstructionStatus::Shipped => SyncDecision::NeedsAttention(
                "Amazon cancelled this order but the instruction is already shipped (出荷済み): contact the buyer".into(),
            ),
            _ => SyncDecision::Nothing,
        };
    }
    if paid_eligible(state, amazon) {
        return SyncDecision::MarkPaid;
    }
    SyncDecision::Nothing
}

/// The local facts shipment feedback looks at (seed section 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackState<'a> {
    pub imported_via_api: bool,
    pub tracking_numbers: &'a [String],
    pub api_status: ApiStatus,
    pub status: InstructionStatus,
    pub shipped_on: Option<NaiveDate>,
}

/// The date "today" in a shop's time zone: the day the action runs, as the warehouse sees it.
pub fn today_in(tz: Tz, now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

/// The time zone an order's "today" is taken in: its marketplace's (JP Asia/Tokyo, AU
/// Australia/Sydney, SG Asia/Singapore), so a shop selling on several marketplaces sends each
/// order on its own day; the shop's zone when the marketplace is unknown or missing.
pub fn order_time_zone(marketplace_id: Option<&str>, shop_tz: Tz) -> Tz {
    marketplace_id
        .and_then(|m| crate::Marketplace::from_id(m).ok())
        .map_or(shop_tz, crate::Marketplace::time_zone)
}

/// "Today" of an order ([`order_time_zone`]).
pub fn order_today(marketplace_id: Option<&str>, shop_tz: Tz, now: DateTime<Utc>) -> NaiveDate {
    today_in(order_time_zone(marketplace_id, shop_tz), now)
}

/// Seed 3: imported through the API; has a tracking number; API status awaiting print;
/// shipped; ship date is the day the action runs (in the shop's time zone).
pub fn feedback_eligible(state: &FeedbackState<'_>, today: NaiveDate) -> bool {
    state.imported_via_api
        && state.tracking_numbers.iter().any(|t| !t.trim().is_empty())
        && state.api_status == ApiStatus::AwaitingPrint
        && state.status == InstructionStatus::Shipped
        && state.shipped_on == Some(today)
}

/// Only the first tracking number goes to Amazon (seed 3).
pub fn first_tracking_number(tracking_numbers: &[String]) -> Option<&str> {
    tracking_numbers
        .iter()
        .map(|t| t.trim())
        .find(|t| !t.is_empty())
}

#[cfg(test)]
mod today_tests {
    use super::*;
    use chrono::TimeZone;

    /// Issue 17, item 8: 2026-12-02 23:30 in Tokyo is already 2026-12-03 01:30 in Sydney and
    /// still 2026-12-02 22:30 in Singapore: each order's day is its marketplace's.
    #[test]
    fn today_per_marketplace() {
        let now = chrono_tz::Asia::Tokyo
            .with_ymd_and_hms(2026, 12, 2, 23, 30, 0)
            .unwrap()
            .with_timezone(&Utc);
        let shop = chrono_tz::Asia::Tokyo;
        let day = |d| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
        assert_eq!(order_today(Some("A1VC38T7YXB528"), shop, now), day(2));
        assert_eq!(order_today(Some("A39IBJ37TRP1C6"), shop, now), day(3));
        assert_eq!(order_today(Some("A19VAU5U5O7RUS"), shop, now), day(2));
        assert_eq!(order_today(None, shop, now), day(2));
        assert_eq!(
            order_today(Some("XXXX"), chrono_tz::Australia::Sydney, now),
            day(3)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InstructionStatus as S;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn st(status: S, pay: PaymentStatus) -> SyncState {
        SyncState {
            imported_via_api: true,
            status,
            payment_status: pay,
        }
    }

    #[test]
    fn paid_only_between_hold_and_awaiting() {
        use AmazonOrderStatus::*;
        assert_eq!(
            decide(st(S::Hold, PaymentStatus::Unpaid), Unshipped),
            SyncDecision::MarkPaid
        );
        assert_eq!(
            decide(st(S::AwaitingShipment, PaymentStatus::Unpaid), Shipped),
            SyncDecision::MarkPaid
        );
        assert_eq!(
            decide(st(S::Hold, PaymentStatus::Paid), Unshipped),
            SyncDecision::Nothing
        );
        assert_eq!(
            decide(st(S::Allocated, PaymentStatus::Unpaid), Unshipped),
            SyncDecision::Nothing
        );
        assert_eq!(
            decide(st(S::Hold, PaymentStatus::Unpaid), Pending),
            SyncDecision::Nothing
        );
        let manual = SyncState {
            imported_via_api: false,
            ..st(S::Hold, PaymentStatus::Unpaid)
        };
        assert_eq!(decide(manual, Unshipped), SyncDecision::Nothing);
    }

    #[test]
    fn cancel_rules() {
        use AmazonOrderStatus::Cancelled;
        assert_eq!(
            decide(st(S::Hold, PaymentStatus::Unpaid), Cancelled),
            SyncDecision::Cancel
        );
        assert_eq!(
            decide(st(S::AwaitingShipment, PaymentStatus::Paid), Cancelled),
            SyncDecision::Cancel
        );
        assert!(matches!(
            decide(st(S::Allocated, PaymentStatus::Paid), Cancelled),
            SyncDecision::NeedsAttention(_)
        ));
        assert!(matches!(
            decide(st(S::Shipped, PaymentStatus::Paid), Cancelled),
            SyncDecision::NeedsAttention(_)
        ));
        assert_eq!(
            decide(st(S::Canceled, PaymentStatus::Unpaid), Cancelled),
            SyncDecision::Nothing
        );
    }

    proptest! {
        /// An allocated, shipped or canceled instruction is never canceled or marked paid by sync.
        #[test]
        fn closed_instructions_are_never_changed(
            status in prop::sample::select(vec![S::Allocated, S::Shipped, S::Canceled]),
            paid in any::<bool>(),
            amazon in prop::sample::select(vec![
                AmazonOrderStatus::Pending, AmazonOrderStatus::Unshipped, AmazonOrderStatus::Shipped,
                AmazonOrderStatus::Cancelled, AmazonOrderStatus::PartiallyShipped]),
        ) {
            let pay = if paid { PaymentStatus::Paid } else { PaymentStatus::Unpaid };
            let d = decide(st(status, pay), amazon);
            prop_assert!(!matches!(d, SyncDecision::Cancel | SyncDecision::MarkPaid));
        }
    }

    #[test]
    fn today_is_the_shops_day() {
        // 2026-11-28 16:30 UTC is already 2026-11-29 in Tokyo and Sydney, still the 29th 00:30 in Singapore.
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 16, 30, 0).unwrap();
        assert_eq!(
            today_in(chrono_tz::Asia::Tokyo, now),
            NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
        );
        assert_eq!(
            today_in(chrono_tz::Asia::Singapore, now),
            NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
        );
        assert_eq!(
            today_in(chrono_tz::UTC, now),
            NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
        );
    }

    #[test]
    fn feedback_targets() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let tn = vec!["123456789012".to_string(), "999".to_string()];
        let ok = FeedbackState {
            imported_via_api: true,
            tracking_numbers: &tn,
            api_status: ApiStatus::AwaitingPrint,
            status: S::Shipped,
            shipped_on: Some(today),
        };
        assert!(feedback_eligible(&ok, today));
        assert!(!feedback_eligible(
            &FeedbackState {
                shipped_on: today.pred_opt(),
                ..ok.clone()
            },
            today
        ));
        assert!(!feedback_eligible(
            &FeedbackState {
                api_status: ApiStatus::Printed,
                ..ok.clone()
            },
            today
        ));
        assert!(!feedback_eligible(
            &FeedbackState {
                status: S::Allocated,
                ..ok.clone()
            },
            today
        ));
        assert!(!feedback_eligible(
            &FeedbackState {
                tracking_numbers: &[],
                ..ok.clone()
            },
            today
        ));
        assert_eq!(first_tracking_number(&tn), Some("123456789012"));
        assert_eq!(
            first_tracking_number(&[" ".into(), "A1".into()]),
            Some("A1")
        );
    }
}

//! Inventory sync rules (seed section 4): the quantity to push and handling time.

use serde::{Deserialize, Serialize};

/// Stock figures of one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StockLevels {
    pub on_hand: i32,
    /// 確保数: reserved by imported orders.
    pub reserved: i32,
    /// 引当済み: allocated to instructions about to ship.
    pub allocated: i32,
}

impl StockLevels {
    /// フリー在庫数: on hand − reserved − allocated (may be negative when oversold).
    pub fn free(self) -> i64 {
        i64::from(self.on_hand) - i64::from(self.reserved) - i64::from(self.allocated)
    }

    /// The quantity to push to Amazon: free stock, never negative.
    pub fn quantity_to_push(self) -> u32 {
        u32::try_from(self.free().max(0)).unwrap_or(u32::MAX)
    }
}

/// 出荷作業日数: handling time in days, 0–30 (`lead_time_to_ship_max_days`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct HandlingDays(u8);

/// A handling time outside 0–30 days.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("handling days {0} is out of range: Amazon accepts 0 to 30 days")]
pub struct HandlingDaysOutOfRange(pub i64);

impl HandlingDays {
    pub const MAX: u8 = 30;

    pub fn new(days: i64) -> Result<Self, HandlingDaysOutOfRange> {
        if (0..=i64::from(Self::MAX)).contains(&days) {
            Ok(Self(days as u8))
        } else {
            Err(HandlingDaysOutOfRange(days))
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for HandlingDays {
    type Error = HandlingDaysOutOfRange;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        Self::new(v)
    }
}

impl From<HandlingDays> for i64 {
    fn from(d: HandlingDays) -> i64 {
        i64::from(d.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn free_stock() {
        let s = StockLevels {
            on_hand: 10,
            reserved: 3,
            allocated: 2,
        };
        assert_eq!(s.free(), 5);
        assert_eq!(s.quantity_to_push(), 5);
        let oversold = StockLevels {
            on_hand: 1,
            reserved: 3,
            allocated: 0,
        };
        assert_eq!(oversold.free(), -2);
        assert_eq!(oversold.quantity_to_push(), 0);
    }

    #[test]
    fn handling_days_bounds() {
        assert_eq!(HandlingDays::new(0).unwrap().get(), 0);
        assert_eq!(HandlingDays::new(30).unwrap().get(), 30);
        let err = HandlingDays::new(45).unwrap_err();
        assert!(err.to_string().contains("0 to 30"));
        assert!(HandlingDays::new(-1).is_err());
        assert!(serde_json::from_str::<HandlingDays>("31").is_err());
    }

    proptest! {
        #[test]
        fn pushed_quantity_is_never_negative(on_hand in any::<i32>(), reserved in any::<i32>(), allocated in any::<i32>()) {
            let s = StockLevels { on_hand, reserved, allocated };
            let q = s.quantity_to_push();
            prop_assert!(i64::from(q) <= s.free().max(0));
            if s.free() >= 0 && s.free() <= i64::from(u32::MAX) { prop_assert_eq!(i64::from(q), s.free()); }
        }
    }
}

//! Stock shared by several shops (issue 21 item 3): Japan, Australia and Singapore are separate
//! seller accounts, so SKUs of several shops may map one product. Each such mapping may hold a
//! share of the product's free stock (percent) and a safety stock kept back; [`allocate`] turns
//! the product's free stock into the quantity each mapping is sent.
//!
//! The rule:
//! - A mapping **without** a share keeps the seed's behaviour: it is sent the whole free stock
//!   (less its own safety stock, 0 by default), whatever its siblings hold.
//! - The mappings **with** a share split `available = free − safety` (never below 0), where
//!   `safety` is the largest safety stock among them: each is sent
//!   `floor(available × share / max(100, Σ shares))`. Shares summing over 100 % are scaled down,
//!   so what is promised over the sharing mappings never exceeds `available`, hence never
//!   exceeds free stock; when free stock reaches the safety stock, every sharing mapping is sent 0.

use serde::{Deserialize, Serialize};

/// A share of free stock in percent, 1–100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct SharePercent(u8);

/// A share outside 1–100 %.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("share {0} % is out of range: a share is 1 to 100 %")]
pub struct ShareOutOfRange(pub i64);

impl SharePercent {
    pub const MAX: u8 = 100;

    pub fn new(percent: i64) -> Result<Self, ShareOutOfRange> {
        if (1..=i64::from(Self::MAX)).contains(&percent) {
            Ok(Self(percent as u8))
        } else {
            Err(ShareOutOfRange(percent))
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for SharePercent {
    type Error = ShareOutOfRange;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        Self::new(v)
    }
}

impl From<SharePercent> for i64 {
    fn from(s: SharePercent) -> i64 {
        i64::from(s.0)
    }
}

/// A safety stock (units kept back from Amazon), 0 to [`SafetyStock::MAX`].
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(try_from = "i64", into = "i64")]
pub struct SafetyStock(i32);

/// A safety stock below 0 or above [`SafetyStock::MAX`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("safety stock {0} is out of range: it is 0 to 1000000 units")]
pub struct SafetyOutOfRange(pub i64);

impl SafetyStock {
    pub const MAX: i32 = 1_000_000;

    pub fn new(units: i64) -> Result<Self, SafetyOutOfRange> {
        if (0..=i64::from(Self::MAX)).contains(&units) {
            Ok(Self(units as i32))
        } else {
            Err(SafetyOutOfRange(units))
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

impl TryFrom<i64> for SafetyStock {
    type Error = SafetyOutOfRange;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        Self::new(v)
    }
}

impl From<SafetyStock> for i64 {
    fn from(s: SafetyStock) -> i64 {
        i64::from(s.0)
    }
}

/// What one mapping (shop, SKU → product) holds of its product's free stock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allotment {
    /// `None`: not shared, the whole free stock (the seed's behaviour).
    pub share: Option<SharePercent>,
    pub safety: SafetyStock,
}

/// The quantity to send for each of a product's mappings (same order as `mappings`), from the
/// product's free stock (may be negative when oversold). See the module documentation.
pub fn allocate(free: i64, mappings: &[Allotment]) -> Vec<u32> {
    let free = free.max(0);
    let shared = mappings.iter().filter(|m| m.share.is_some());
    let kept = shared
        .clone()
        .map(|m| i64::from(m.safety.get()))
        .max()
        .unwrap_or(0);
    let total: i64 = shared
        .filter_map(|m| m.share)
        .map(|s| i64::from(s.get()))
        .sum();
    let available = (free - kept).max(0);
    let scale = total.max(100);
    mappings
        .iter()
        .map(|m| {
            let q = match m.share {
                // i64: available ≤ i32::MAX, share ≤ 100, no overflow; division floors (≥ 0).
                Some(s) => available * i64::from(s.get()) / scale,
                None => (free - i64::from(m.safety.get())).max(0),
            };
            u32::try_from(q).unwrap_or(u32::MAX)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn shared(percent: i64, safety: i64) -> Allotment {
        Allotment {
            share: Some(SharePercent::new(percent).unwrap()),
            safety: SafetyStock::new(safety).unwrap(),
        }
    }

    #[test]
    fn jp_70_au_30_safety_2_free_10() {
        // The example: JP 5, AU 2 (8 available, 7 promised).
        assert_eq!(allocate(10, &[shared(70, 2), shared(30, 2)]), vec![5, 2]);
        // Safety set on one mapping only is kept back from both.
        assert_eq!(allocate(10, &[shared(70, 2), shared(30, 0)]), vec![5, 2]);
    }

    #[test]
    fn unshared_mapping_is_sent_the_whole_free_stock() {
        assert_eq!(allocate(10, &[Allotment::default()]), vec![10]);
        assert_eq!(
            allocate(10, &[Allotment::default(), Allotment::default()]),
            vec![10, 10]
        );
        assert_eq!(allocate(-3, &[Allotment::default()]), vec![0]);
        assert_eq!(
            allocate(
                10,
                &[Allotment {
                    share: None,
                    safety: SafetyStock::new(4).unwrap()
                }]
            ),
            vec![6]
        );
    }

    #[test]
    fn shares_over_100_are_scaled_down() {
        // 80 + 80 = 160 %: each gets 80/160 of 10.
        assert_eq!(allocate(10, &[shared(80, 0), shared(80, 0)]), vec![5, 5]);
        assert_eq!(allocate(10, &[shared(100, 0), shared(50, 0)]), vec![6, 3]);
    }

    #[test]
    fn at_or_below_safety_every_shop_shows_0() {
        assert_eq!(allocate(2, &[shared(70, 2), shared(30, 2)]), vec![0, 0]);
        assert_eq!(allocate(1, &[shared(70, 2), shared(30, 2)]), vec![0, 0]);
        assert_eq!(allocate(3, &[shared(70, 2), shared(30, 2)]), vec![0, 0]);
        assert_eq!(allocate(4, &[shared(70, 2), shared(30, 2)]), vec![1, 0]);
    }

    #[test]
    fn bounds() {
        assert!(SharePercent::new(0).is_err());
        assert!(SharePercent::new(101).is_err());
        assert_eq!(SharePercent::new(100).unwrap().get(), 100);
        let e = SharePercent::new(150).unwrap_err().to_string();
        assert!(e.contains("150") && e.contains("1 to 100"), "{e}");
        assert!(SafetyStock::new(-1).is_err());
        assert_eq!(SafetyStock::new(0).unwrap().get(), 0);
        assert!(serde_json::from_str::<SharePercent>("0").is_err());
    }

    fn allotment() -> impl Strategy<Value = Allotment> {
        (prop::option::of(1i64..=100), 0i64..50).prop_map(|(share, safety)| Allotment {
            share: share.map(|s| SharePercent::new(s).unwrap()),
            safety: SafetyStock::new(safety).unwrap(),
        })
    }

    proptest! {
        /// What is promised over the sharing mappings never exceeds free stock less the safety
        /// stock, rounding down; free at or below the safety stock shows 0 everywhere.
        #[test]
        fn shared_total_never_exceeds_available(free in -100i64..100_000, ms in prop::collection::vec(allotment(), 0..8)) {
            let q = allocate(free, &ms);
            prop_assert_eq!(q.len(), ms.len());
            let kept = ms.iter().filter(|m| m.share.is_some()).map(|m| i64::from(m.safety.get())).max().unwrap_or(0);
            let available = (free.max(0) - kept).max(0);
            let total: i64 = q.iter().zip(&ms).filter(|(_, m)| m.share.is_some()).map(|(q, _)| i64::from(*q)).sum();
            prop_assert!(total <= available, "promised {} of {} available", total, available);
            prop_assert!(total <= free.max(0));
            if free <= kept {
                prop_assert!(q.iter().zip(&ms).filter(|(_, m)| m.share.is_some()).all(|(q, _)| *q == 0));
            }
            // Rounding down loses less than one unit per sharing mapping (shares up to 100 %).
            let shares: i64 = ms.iter().filter_map(|m| m.share).map(|s| i64::from(s.get())).sum();
            let n = ms.iter().filter(|m| m.share.is_some()).count() as i64;
            if shares >= 100 && n > 0 { prop_assert!(total > available - n, "promised {} of {}", total, available); }
        }

        /// More free stock never sends less to any mapping.
        #[test]
        fn monotone_in_free_stock(free in -100i64..100_000, more in 0i64..1000, ms in prop::collection::vec(allotment(), 1..8)) {
            let a = allocate(free, &ms);
            let b = allocate(free + more, &ms);
            for (x, y) in a.iter().zip(&b) { prop_assert!(x <= y); }
        }

        /// A mapping without a share is sent the whole free stock less its own safety stock,
        /// whatever the other mappings of the product hold (safety 0: today's behaviour).
        #[test]
        fn unshared_mapping_keeps_todays_behaviour(free in -100i64..100_000, ms in prop::collection::vec(allotment(), 1..8)) {
            let q = allocate(free, &ms);
            for (q, m) in q.iter().zip(&ms) {
                if m.share.is_none() {
                    prop_assert_eq!(i64::from(*q), (free.max(0) - i64::from(m.safety.get())).max(0));
                }
            }
            let plain: Vec<Allotment> = ms.iter().map(|_| Allotment::default()).collect();
            prop_assert!(allocate(free, &plain).iter().all(|q| i64::from(*q) == free.max(0)));
        }

        /// The JP 70 % / AU 30 % / safety 2 pair over any sequence of stock changes: never
        /// more than free − 2 together, and 5 / 2 whenever free stock is 10.
        #[test]
        fn jp_70_au_30_over_any_sequence(start in 0i64..50, changes in prop::collection::vec(-20i64..20, 0..40)) {
            let ms = [shared(70, 2), shared(30, 2)];
            let mut free = start;
            for d in std::iter::once(0).chain(changes) {
                free += d;
                let q = allocate(free, &ms);
                prop_assert!(i64::from(q[0] + q[1]) <= (free - 2).max(0));
                if free == 10 { prop_assert_eq!(&q, &vec![5, 2]); }
            }
        }
    }
}

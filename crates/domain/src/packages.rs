//! Packages of a shipment (issue 21 item 2).
//!
//! The seed sends only the first tracking number (「先頭の1つのみを返します」), and that stays the
//! default. A shop may send every package instead: each with its own tracking number, carrier and
//! the order items and quantities in it. Before anything is sent, the packages must add up to no
//! more than what was ordered.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Most packages one shipment records (Amazon's order has no stated limit; a parcel per unit of
/// a large order stays well below this).
pub const MAX_PACKAGES: usize = 99;

/// One package as the warehouse packed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// 1, 2, … in the order the warehouse gave them; Amazon's package reference.
    pub number: u16,
    pub tracking_number: String,
    /// Its own carrier (external delivery method, 外部連携先配送方法); `None`: the instruction's.
    pub external_delivery_method: Option<String>,
    pub items: Vec<PackageItem>,
}

/// Quantity of one order item in a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageItem {
    /// Amazon's order item id.
    pub order_item_id: String,
    pub quantity: u32,
}

/// A package written as the warehouse's tools pass it:
/// `TRACKING[@EXTERNAL_DELIVERY_METHOD]:ORDER_ITEM_ID=QTY[,ORDER_ITEM_ID=QTY…]`,
/// e.g. `400012345678:11111111111111=2,22222222222222=1` or `123456789012@sagawa:33333333333333=1`.
pub fn parse(number: u16, spec: &str) -> Result<Package, String> {
    let bad = |why: &str| {
        format!(
            "package {number} {spec:?}: {why}; expected TRACKING[@CARRIER]:ORDER_ITEM_ID=QTY[,ORDER_ITEM_ID=QTY…], \
             e.g. 400012345678:11111111111111=2"
        )
    };
    let (head, items) = spec
        .split_once(':')
        .ok_or_else(|| bad("no ':' before the items"))?;
    let (tracking, carrier) = match head.split_once('@') {
        Some((t, c)) => (t.trim(), Some(c.trim())),
        None => (head.trim(), None),
    };
    if tracking.is_empty() {
        return Err(bad("the tracking number is empty"));
    }
    if carrier.is_some_and(str::is_empty) {
        return Err(bad("the carrier after '@' is empty"));
    }
    let items = items
        .split(',')
        .map(|i| {
            let (id, qty) = i
                .split_once('=')
                .ok_or_else(|| bad(&format!("item {i:?} has no '=QTY'")))?;
            let quantity: u32 = qty
                .trim()
                .parse()
                .map_err(|_| bad(&format!("quantity {qty:?} is not a whole number")))?;
            Ok(PackageItem {
                order_item_id: id.trim().to_owned(),
                quantity,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Package {
        number,
        tracking_number: tracking.to_owned(),
        external_delivery_method: carrier.map(str::to_owned),
        items,
    })
}

/// What is wrong with `packages` against the order's lines (`ordered`: order item id →
/// quantity), every problem in one sentence each: no package, too many, a package without items,
/// a zero quantity, an item not on the order, or more of an item over all packages than was
/// ordered. Fewer than ordered is fine (the rest ships later).
pub fn problems(packages: &[Package], ordered: &[(String, u32)]) -> Vec<String> {
    let mut out = Vec::new();
    if packages.is_empty() {
        out.push("no package".to_owned());
    }
    if packages.len() > MAX_PACKAGES {
        out.push(format!(
            "{} packages; at most {MAX_PACKAGES}",
            packages.len()
        ));
    }
    let ordered = ordered_map(ordered);
    each_package(packages, &ordered, &mut out);
    for (id, n) in packed(packages) {
        if let Some(&q) = ordered.get(id)
            && n > q
        {
            out.push(format!(
                "item {id}: {n} packed over all packages, {q} ordered"
            ));
        }
    }
    out
}

/// What is wrong with adding `new` packages to the `earlier` ones of a partially shipped order
/// (the packages that left on an earlier day): each new package's own problems as in
/// [`problems`], nothing left to ship when the earlier packages cover the order, and for an item
/// packed beyond what remains, how much remains of what was ordered and which earlier packages
/// hold the rest. With no earlier package this is [`problems`].
pub fn problems_adding(
    earlier: &[Package],
    new: &[Package],
    ordered: &[(String, u32)],
) -> Vec<String> {
    if earlier.is_empty() {
        return problems(new, ordered);
    }
    let mut out = Vec::new();
    let numbers = |ps: &[&Package]| {
        ps.iter()
            .map(|p| p.number.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if covers(earlier, ordered) {
        out.push(format!(
            "the packages already recorded ({}) cover the whole order: nothing is left to ship",
            numbers(&earlier.iter().collect::<Vec<_>>())
        ));
        return out;
    }
    if new.is_empty() {
        out.push("no new package".to_owned());
    }
    let total = earlier.len() + new.len();
    if total > MAX_PACKAGES {
        out.push(format!(
            "{total} packages with the {} already recorded; at most {MAX_PACKAGES}",
            earlier.len()
        ));
    }
    let ordered = ordered_map(ordered);
    each_package(new, &ordered, &mut out);
    let before = packed(earlier);
    for (id, n) in packed(new) {
        let Some(&q) = ordered.get(id) else { continue };
        let already = before.get(id).copied().unwrap_or(0);
        if already + n > q {
            let holding: Vec<&Package> = earlier
                .iter()
                .filter(|p| p.items.iter().any(|i| i.order_item_id == id))
                .collect();
            out.push(format!(
                "item {id}: {n} more packed, only {} of the {q} ordered remain{}",
                q.saturating_sub(already),
                if holding.is_empty() {
                    String::new()
                } else {
                    format!(" ({already} already in package {})", numbers(&holding))
                }
            ));
        }
    }
    out
}

/// Whether `packages` hold every unit that was `ordered` (the order has left whole).
pub fn covers(packages: &[Package], ordered: &[(String, u32)]) -> bool {
    let packed = packed(packages);
    ordered
        .iter()
        .all(|(id, q)| packed.get(id.as_str()).copied().unwrap_or(0) >= *q)
}

/// What of the order is not in `packages` yet: order item id → quantity, for items with some
/// left (empty when the packages cover the order).
pub fn remaining(packages: &[Package], ordered: &[(String, u32)]) -> Vec<(String, u32)> {
    let packed = packed(packages);
    ordered
        .iter()
        .map(|(id, q)| {
            let left = q.saturating_sub(packed.get(id.as_str()).copied().unwrap_or(0));
            (id.clone(), left)
        })
        .filter(|(_, left)| *left > 0)
        .collect()
}

fn ordered_map(ordered: &[(String, u32)]) -> BTreeMap<&str, u32> {
    ordered.iter().map(|(id, q)| (id.as_str(), *q)).collect()
}

/// Quantity of each item over `packages`.
fn packed(packages: &[Package]) -> BTreeMap<&str, u32> {
    let mut packed: BTreeMap<&str, u32> = BTreeMap::new();
    for p in packages {
        for i in &p.items {
            *packed.entry(i.order_item_id.as_str()).or_default() += i.quantity;
        }
    }
    packed
}

/// Each package's own problems: no items, a zero quantity, an item not on the order.
fn each_package(packages: &[Package], ordered: &BTreeMap<&str, u32>, out: &mut Vec<String>) {
    for p in packages {
        if p.items.is_empty() {
            out.push(format!("package {} has no items", p.number));
        }
        for i in &p.items {
            if i.quantity == 0 {
                out.push(format!(
                    "package {}: item {} has quantity 0",
                    p.number, i.order_item_id
                ));
            }
            if !ordered.contains_key(i.order_item_id.as_str()) {
                out.push(format!(
                    "package {}: item {} is not on the order (its items: {})",
                    p.number,
                    i.order_item_id,
                    ordered.keys().copied().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ordered() -> Vec<(String, u32)> {
        vec![("11111111111111".into(), 3), ("22222222222222".into(), 1)]
    }

    #[test]
    fn parses_tracking_carrier_and_items() {
        let p = parse(
            2,
            " 123456789012@sagawa : 11111111111111=2, 22222222222222=1",
        )
        .unwrap();
        assert_eq!(p.number, 2);
        assert_eq!(p.tracking_number, "123456789012");
        assert_eq!(p.external_delivery_method.as_deref(), Some("sagawa"));
        assert_eq!(
            p.items,
            vec![
                PackageItem {
                    order_item_id: "11111111111111".into(),
                    quantity: 2
                },
                PackageItem {
                    order_item_id: "22222222222222".into(),
                    quantity: 1
                }
            ]
        );
        assert_eq!(parse(1, "4000:1=1").unwrap().external_delivery_method, None);
        for bad in [
            "4000",
            ":1=1",
            "4000@:1=1",
            "4000:1",
            "4000:1=x",
            "4000:1=-1",
        ] {
            let e = parse(1, bad).unwrap_err();
            assert!(e.contains("expected TRACKING"), "{bad}: {e}");
        }
    }

    #[test]
    fn quantities_add_up_to_no_more_than_ordered() {
        let p = pk;
        let ok = [
            p(1, &[("11111111111111", 1)]),
            p(2, &[("11111111111111", 2)]),
            p(3, &[("22222222222222", 1)]),
        ];
        assert!(problems(&ok, &ordered()).is_empty());
        // Partial: fewer than ordered.
        assert!(problems(&ok[..1], &ordered()).is_empty());
        let over = [
            p(1, &[("11111111111111", 2)]),
            p(2, &[("11111111111111", 2)]),
        ];
        assert_eq!(
            problems(&over, &ordered()),
            vec!["item 11111111111111: 4 packed over all packages, 3 ordered"]
        );
        let unknown = problems(&[p(1, &[("99999999999999", 1)])], &ordered());
        assert!(unknown[0].contains("not on the order"), "{unknown:?}");
        assert!(problems(&[p(1, &[])], &ordered())[0].contains("no items"));
        assert!(problems(&[p(1, &[("11111111111111", 0)])], &ordered())[0].contains("quantity 0"));
        assert_eq!(problems(&[], &ordered()), vec!["no package"]);
    }

    fn pk(n: u16, items: &[(&str, u32)]) -> Package {
        Package {
            number: n,
            tracking_number: format!("T{n}"),
            external_delivery_method: None,
            items: items
                .iter()
                .map(|(id, q)| PackageItem {
                    order_item_id: (*id).into(),
                    quantity: *q,
                })
                .collect(),
        }
    }

    #[test]
    fn later_packages_are_checked_with_the_earlier_ones() {
        let day1 = [pk(1, &[("11111111111111", 2)])];
        assert!(!covers(&day1, &ordered()));
        assert_eq!(
            remaining(&day1, &ordered()),
            vec![("11111111111111".into(), 1), ("22222222222222".into(), 1)]
        );
        // The rest: fits, and then the order is covered.
        let rest = [pk(2, &[("11111111111111", 1), ("22222222222222", 1)])];
        assert!(problems_adding(&day1, &rest, &ordered()).is_empty());
        let all: Vec<Package> = day1.iter().chain(&rest).cloned().collect();
        assert!(covers(&all, &ordered()));
        assert!(remaining(&all, &ordered()).is_empty());
        // More of A than remains: named with what remains and where the rest is.
        let over = [pk(2, &[("11111111111111", 2)])];
        assert_eq!(
            problems_adding(&day1, &over, &ordered()),
            vec![
                "item 11111111111111: 2 more packed, only 1 of the 3 ordered remain (2 already in package 1)"
            ]
        );
        // A new package's own problems are found as on the first day.
        let bad = problems_adding(
            &day1,
            &[pk(2, &[("99999999999999", 1)]), pk(3, &[])],
            &ordered(),
        );
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(
            bad[0].contains("package 2: item 99999999999999 is not on the order"),
            "{bad:?}"
        );
        assert!(bad[1].contains("package 3 has no items"), "{bad:?}");
        // Nothing left once the order is covered.
        let full = problems_adding(&all, &[pk(3, &[("22222222222222", 1)])], &ordered());
        assert_eq!(
            full,
            vec![
                "the packages already recorded (1, 2) cover the whole order: nothing is left to ship"
            ]
        );
        // Without earlier packages it is the first day's check.
        assert_eq!(
            problems_adding(&[], &over, &ordered()),
            problems(&over, &ordered())
        );
    }

    proptest! {
        /// Packages added day by day never ship more of an item than was ordered, and the
        /// order is covered exactly when every unit was packed.
        #[test]
        fn packages_added_later_never_exceed_the_order(
            split in proptest::collection::vec((0usize..2, 1u32..4), 1..8),
            at in 0usize..8,
        ) {
            let ids = ["11111111111111", "22222222222222"];
            let packages: Vec<Package> = split.iter().enumerate()
                .map(|(n, (i, q))| pk(n as u16 + 1, &[(ids[*i], *q)]))
                .collect();
            let at = at.min(packages.len());
            let (earlier, new) = packages.split_at(at);
            if problems(earlier, &ordered()).is_empty() && !new.is_empty() {
                let accepted = problems_adding(earlier, new, &ordered()).is_empty();
                let total = |id: &str| split.iter().filter(|(i, _)| ids[*i] == id).map(|(_, q)| q).sum::<u32>();
                prop_assert_eq!(
                    accepted,
                    total(ids[0]) <= 3 && total(ids[1]) <= 1 && !covers(earlier, &ordered())
                );
                if accepted {
                    prop_assert_eq!(covers(&packages, &ordered()), total(ids[0]) == 3 && total(ids[1]) == 1);
                }
            }
        }
    }

    proptest! {
        /// Accepted packages never ship more of an item than was ordered.
        #[test]
        fn accepted_packages_never_exceed_the_order(
            split in proptest::collection::vec((0usize..2, 1u32..4), 1..8)
        ) {
            let ids = ["11111111111111", "22222222222222"];
            let packages: Vec<Package> = split.iter().enumerate().map(|(n, (i, q))| Package {
                number: n as u16 + 1,
                tracking_number: format!("T{n}"),
                external_delivery_method: None,
                items: vec![PackageItem { order_item_id: ids[*i].into(), quantity: *q }],
            }).collect();
            let accepted = problems(&packages, &ordered()).is_empty();
            let total = |id: &str| split.iter().filter(|(i, _)| ids[*i] == id).map(|(_, q)| q).sum::<u32>();
            prop_assert_eq!(accepted, total(ids[0]) <= 3 && total(ids[1]) <= 1);
        }
    }
}

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
    let ordered: BTreeMap<&str, u32> = ordered.iter().map(|(id, q)| (id.as_str(), *q)).collect();
    let mut packed: BTreeMap<&str, u32> = BTreeMap::new();
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
            *packed.entry(i.order_item_id.as_str()).or_default() += i.quantity;
        }
    }
    for (id, n) in packed {
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
        let p = |n, items: &[(&str, u32)]| Package {
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
        };
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

//! Checks made before anything is sent: carrier mapping and tracking number.

use domain::carrier::AmazonCarrier;
use domain::packages::{Package, PackageItem};
use spapi::fulfillment_feed::{Carrier, MAX_STRING_LEN};
use store::carriers::{CarrierMapping, normalize_key};

use store::shipments::Target;

/// Why an instruction is not sent (it stays awaiting print).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Machine code for the API log (`no_carrier_mapping`, `invalid_tracking_number`...).
    pub code: String,
    /// What the operator must fix.
    pub message: String,
}

fn refusal(code: &str, message: String) -> Refusal {
    Refusal {
        code: code.to_owned(),
        message,
    }
}

/// What is sent for a valid instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub carrier: Carrier,
    /// Only the first tracking number (seed 3).
    pub tracking_number: String,
}

/// Checks a tracking number against the general rules (at most 50 characters, letters, digits
/// and hyphens) and the carrier's pattern when it has one.
pub fn validate_tracking(tracking: &str, pattern: Option<&str>) -> Result<(), String> {
    let len = tracking.chars().count();
    if len == 0 {
        return Err("the tracking number is empty".into());
    }
    if len > MAX_STRING_LEN {
        return Err(format!(
            "the tracking number has {len} characters; Amazon accepts at most {MAX_STRING_LEN}"
        ));
    }
    if !tracking
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(
            "the tracking number contains characters other than letters, digits and hyphens".into(),
        );
    }
    if let Some(p) = pattern.filter(|p| !p.trim().is_empty()) {
        let re = regex::Regex::new(p)
            .map_err(|e| format!("the carrier's tracking pattern {p:?} is invalid: {e}"))?;
        if !re.is_match(tracking) {
            return Err(format!(
                "the tracking number does not match the carrier's format ({p})"
            ));
        }
    }
    Ok(())
}

/// Checks one target against the shop's effective carrier mappings.
pub fn check(t: &Target, mappings: &[CarrierMapping]) -> Result<Checked, Refusal> {
    let order = t.amazon_order_id.as_deref().unwrap_or("");
    if !domain::is_amazon_order_id(order) {
        return Err(refusal(
            "invalid_order_id",
            "the instruction has no valid Amazon order id".into(),
        ));
    }
    let Some(external) = t
        .external_delivery_method
        .as_deref()
        .filter(|e| !e.trim().is_empty())
    else {
        return Err(refusal(
            "no_carrier_mapping",
            format!(
                "delivery method {:?} has no external delivery method (外部連携先配送方法), so Amazon's carrier is unknown; set it and map it with `ctl carrier add`",
                t.delivery_method_name
            ),
        ));
    };
    let Some(raw) = domain::eligibility::first_tracking_number(&t.tracking_numbers) else {
        return Err(refusal(
            "invalid_tracking_number",
            "the instruction has no tracking number".into(),
        ));
    };
    carrier_and_tracking(external, raw, mappings)
}

/// The carrier mapped from `external` and the tracking number `raw` made into what the carrier
/// expects and checked against its format.
fn carrier_and_tracking(
    external: &str,
    raw: &str,
    mappings: &[CarrierMapping],
) -> Result<Checked, Refusal> {
    let key = normalize_key(external);
    let Some(m) = mappings.iter().find(|m| m.external_delivery_method == key) else {
        return Err(refusal(
            "no_carrier_mapping",
            format!(
                "no carrier mapping for external delivery method {external:?}; add one with `ctl carrier add`"
            ),
        ));
    };
    // A code not on Amazon's list goes as Other with the carrier's name.
    let carrier = match m.amazon_carrier() {
        AmazonCarrier::Listed(code) => Carrier::Code(code.to_owned()),
        AmazonCarrier::Other(name) => Carrier::Other { name },
    };
    // Full-width characters, spaces and hyphens as printed on the label are the same number.
    let tracking = domain::tracking::normalize(raw);
    validate_tracking(&tracking, m.tracking_pattern.as_deref()).map_err(|e| {
        let expected = match m.tracking_pattern.as_deref().filter(|p| !p.trim().is_empty()) {
            Some(p) => format!("the carrier's format is {p}"),
            None => format!("at most {MAX_STRING_LEN} letters and digits"),
        };
        refusal(
            "invalid_tracking_number",
            format!(
                "tracking number {raw:?} (read as {tracking:?}) of carrier {external}: {e}; expected: {expected}. \
                 Correct it in the shipment and send it again (console: shipments to resend, or `ctl resend-shipment`)"
            ),
        )
    })?;
    Ok(Checked {
        carrier,
        tracking_number: tracking,
    })
}

/// One shipment confirmation to send for a target: the whole order with the first tracking
/// number (the seed's rule), or one package of a shop that sends every package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parcel {
    /// The package number (Amazon's package reference); `None`: the whole order, reference 1.
    pub number: Option<u16>,
    pub checked: Checked,
    /// The order items and quantities in it; empty: the whole order.
    pub items: Vec<PackageItem>,
}

impl Parcel {
    /// The seed's one confirmation per order.
    pub fn whole(checked: Checked) -> Self {
        Self {
            number: None,
            checked,
            items: Vec::new(),
        }
    }
}

/// Every package of a target (issue 21 item 2), each checked as [`check`] checks the first
/// tracking number, against its own carrier (the target's when it names none), and together
/// against the order's lines (`ordered`; the packages Amazon already confirmed count): a refusal
/// names the first problem found. The parcels are those of the packages numbered in `unsent`
/// only (a partial shipment's packages confirmed on an earlier day are not sent again).
pub fn check_packages(
    t: &Target,
    packages: &[Package],
    unsent: &[u16],
    ordered: &[(String, u32)],
    mappings: &[CarrierMapping],
) -> Result<Vec<Parcel>, Refusal> {
    let problems = domain::packages::problems(packages, ordered);
    if !problems.is_empty() {
        return Err(refusal(
            "invalid_packages",
            format!("the packages do not fit the order: {}", problems.join("; ")),
        ));
    }
    packages
        .iter()
        .filter(|p| unsent.contains(&p.number))
        .map(|p| {
            let external = p
                .external_delivery_method
                .as_deref()
                .or(t.external_delivery_method.as_deref())
                .unwrap_or_default();
            let checked =
                carrier_and_tracking(external, &p.tracking_number, mappings).map_err(|r| {
                    Refusal {
                        message: format!("package {}: {}", p.number, r.message),
                        ..r
                    }
                })?;
            Ok(Parcel {
                number: Some(p.number),
                checked,
                items: p.items.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_rules() {
        assert!(validate_tracking("123456789012", Some("^[0-9]{12}$")).is_ok());
        assert!(validate_tracking("12345678901", Some("^[0-9]{12}$")).is_err());
        assert!(validate_tracking("1234 5678 9012", None).is_err());
        assert!(validate_tracking("追跡123", None).is_err());
        assert!(
            validate_tracking(&"1".repeat(51), None)
                .unwrap_err()
                .contains("at most 50")
        );
        assert!(validate_tracking("AB-123", None).is_ok());
    }

    fn target(external: Option<&str>, tracking: &[&str]) -> Target {
        Target {
            id: uuid::Uuid::nil(),
            amazon_order_id: Some("503-1234567-1234567".into()),
            marketplace_id: Some("A1VC38T7YXB528".into()),
            tracking_numbers: tracking.iter().map(|s| s.to_string()).collect(),
            shipped_on: None,
            shipped_at: None,
            delivery_method_name: "宅急便".into(),
            external_delivery_method: external.map(Into::into),
            payment_method: "other".into(),
            resend_requested: false,
        }
    }

    #[test]
    fn mapping_and_first_tracking_number() {
        let maps = vec![
            CarrierMapping {
                id: uuid::Uuid::nil(),
                shop_id: None,
                external_delivery_method: "yamato".into(),
                carrier_code: "YamatoTransport".into(),
                carrier_name: None,
                tracking_pattern: Some("^[0-9]{12}$".into()),
                marketplaces: None,
            },
            CarrierMapping {
                id: uuid::Uuid::nil(),
                shop_id: None,
                external_delivery_method: "japan_post".into(),
                carrier_code: "Other".into(),
                carrier_name: Some("Japan Post".into()),
                tracking_pattern: None,
                marketplaces: None,
            },
            CarrierMapping {
                id: uuid::Uuid::nil(),
                shop_id: Some(uuid::Uuid::nil()),
                external_delivery_method: "ninja".into(),
                carrier_code: "Ninja Van".into(),
                carrier_name: None,
                tracking_pattern: None,
                marketplaces: None,
            },
            CarrierMapping {
                id: uuid::Uuid::nil(),
                shop_id: None,
                external_delivery_method: "sendle".into(),
                carrier_code: "sendle".into(),
                carrier_name: None,
                tracking_pattern: None,
                marketplaces: Some(vec!["AU".into()]),
            },
        ];
        let ok = check(
            &target(Some(" Yamato "), &["111122223333", "999988887777"]),
            &maps,
        )
        .unwrap();
        assert_eq!(ok.tracking_number, "111122223333");
        assert_eq!(ok.carrier, Carrier::Code("YamatoTransport".into()));
        let other = check(&target(Some("japan_post"), &["12345678901"]), &maps).unwrap();
        assert_eq!(
            other.carrier,
            Carrier::Other {
                name: "Japan Post".into()
            }
        );
        // A carrier not on Amazon's list goes as Other with its name; a listed one in Amazon's
        // spelling.
        assert_eq!(
            check(&target(Some("ninja"), &["NV123"]), &maps)
                .unwrap()
                .carrier,
            Carrier::Other {
                name: "Ninja Van".into()
            }
        );
        assert_eq!(
            check(&target(Some("sendle"), &["SND123"]), &maps)
                .unwrap()
                .carrier,
            Carrier::Code("Sendle".into())
        );
        assert_eq!(
            check(&target(Some("pigeon"), &["1"]), &maps)
                .unwrap_err()
                .code,
            "no_carrier_mapping"
        );
        assert_eq!(
            check(&target(None, &["1"]), &maps).unwrap_err().code,
            "no_carrier_mapping"
        );
        let refused = check(&target(Some("yamato"), &["12-34"]), &maps).unwrap_err();
        assert_eq!(refused.code, "invalid_tracking_number");
        assert!(refused.message.contains("\"12-34\""), "{}", refused.message);
        assert!(
            refused.message.contains("^[0-9]{12}$"),
            "{}",
            refused.message
        );
    }

    /// 「先頭の1つのみを返します」: the first number is sent as the carrier expects it, whatever
    /// width or separators the warehouse typed it with (issue 17, item 2).
    #[test]
    fn full_width_and_separated_numbers_are_sent_normalised() {
        let maps = vec![CarrierMapping {
            id: uuid::Uuid::nil(),
            shop_id: None,
            external_delivery_method: "yamato".into(),
            carrier_code: "YamatoTransport".into(),
            carrier_name: None,
            tracking_pattern: Some("^[0-9]{12}$".into()),
            marketplaces: None,
        }];
        for typed in [
            "４０００－１２３４－５６７８",
            "4000 1234 5678",
            "4000-1234-5678",
        ] {
            let ok = check(&target(Some("yamato"), &[typed, "999988887777"]), &maps)
                .unwrap_or_else(|r| panic!("{typed}: {r:?}"));
            assert_eq!(ok.tracking_number, "400012345678", "{typed}");
        }
    }
}

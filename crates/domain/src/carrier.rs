//! Amazon's carrier codes, and what a carrier Amazon does not list is sent as.
//!
//! Amazon requires `CarrierCode` in shipment confirmations (AU since 2022-07-25, SG since
//! 2022-08-15, JP since 2022-08-31) and says the value must match its list exactly; a carrier
//! that is not listed goes as `Other` with its name in `CarrierName`. The list here is the
//! `CarrierCode` enumeration of the fulfillment feed's XSD (`amzn-base.xsd`, release 4.1) and the
//! Australian carriers Seller Central lists beside it ("Australia Post-Consignment",
//! "Australia Post-ArticleId", "Couriers Please", "Sendle", "StarTrack").

/// Every carrier code the connector sends as a code; anything else is sent as `Other`.
pub const AMAZON_CARRIER_CODES: &[&str] = &[
    // amzn-base.xsd (release 4.1), CarrierCode.
    "USPS",
    "UPS",
    "UPSMI",
    "FedEx",
    "DHL",
    "Fastway",
    "GLS",
    "GO!",
    "Hermes Logistik Gruppe",
    "Royal Mail",
    "Parcelforce",
    "City Link",
    "TNT",
    "Target",
    "SagawaExpress",
    "NipponExpress",
    "YamatoTransport",
    "DHL Global Mail",
    "UPS Mail Innovations",
    "FedEx SmartPost",
    "OSM",
    "OnTrac",
    "Streamlite",
    "Newgistics",
    "Canada Post",
    "Blue Package",
    "Chronopost",
    "Deutsche Post",
    "DPD",
    "La Poste",
    "Parcelnet",
    "Poste Italiane",
    "SDA",
    "Smartmail",
    "FEDEX_JP",
    "JP_EXPRESS",
    "NITTSU",
    "SAGAWA",
    "YAMATO",
    "BlueDart",
    "AFL/Fedex",
    "Aramex",
    "India Post",
    "Professional",
    "DTDC",
    "Overnite Express",
    "First Flight",
    "Delhivery",
    "Lasership",
    "Yodel",
    "Other",
    "Amazon Shipping",
    "Seur",
    "Correos",
    "MRW",
    "Endopack",
    "Chrono Express",
    "Nacex",
    "Otro",
    "Correios",
    "Toll Global Express",
    "China Post",
    "AUSSIE_POST",
    "EUB",
    "Australia Post",
    "Yun Express",
    "4PX",
    "YANWEN",
    "SF Express",
    // Seller Central's Australian list.
    "Australia Post-Consignment",
    "Australia Post-ArticleId",
    "Couriers Please",
    "Sendle",
    "StarTrack",
];

/// The carrier as Amazon is told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmazonCarrier {
    /// A code from Amazon's list, spelt as Amazon spells it.
    Listed(&'static str),
    /// `CarrierCode=Other` with this `CarrierName` (empty when nothing names the carrier).
    Other(String),
}

impl AmazonCarrier {
    /// The `CarrierCode` sent.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Listed(c) => c,
            Self::Other(_) => "Other",
        }
    }
}

/// What a mapping's carrier code and name are sent as: a listed code (compared without regard to
/// case, sent in Amazon's spelling), or `Other` with the carrier's name — the name given, or the
/// unlisted code itself when no name is given.
pub fn amazon_carrier(code: &str, name: Option<&str>) -> AmazonCarrier {
    let code = code.trim();
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    match AMAZON_CARRIER_CODES
        .iter()
        .find(|c| c.eq_ignore_ascii_case(code))
    {
        Some(&"Other") | Some(&"Otro") => AmazonCarrier::Other(name.unwrap_or_default().to_owned()),
        Some(listed) => AmazonCarrier::Listed(listed),
        None => AmazonCarrier::Other(name.unwrap_or(code).to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_codes_keep_amazons_spelling() {
        assert_eq!(
            amazon_carrier("yamatotransport", None),
            AmazonCarrier::Listed("YamatoTransport")
        );
        assert_eq!(
            amazon_carrier(" Australia Post-ArticleId ", Some("ignored")),
            AmazonCarrier::Listed("Australia Post-ArticleId")
        );
        assert_eq!(amazon_carrier("Sendle", None).code(), "Sendle");
    }

    #[test]
    fn unlisted_carriers_go_as_other_with_their_name() {
        assert_eq!(
            amazon_carrier("Ninja Van", None),
            AmazonCarrier::Other("Ninja Van".into())
        );
        assert_eq!(
            amazon_carrier("NINJAVAN", Some("Ninja Van")),
            AmazonCarrier::Other("Ninja Van".into())
        );
        assert_eq!(
            amazon_carrier("Other", Some(" Japan Post ")),
            AmazonCarrier::Other("Japan Post".into())
        );
        assert_eq!(
            amazon_carrier("other", None),
            AmazonCarrier::Other(String::new())
        );
        assert_eq!(amazon_carrier("J&T Express", None).code(), "Other");
    }

    #[test]
    fn the_list_has_no_duplicates() {
        let mut seen = std::collections::HashSet::new();
        for c in AMAZON_CARRIER_CODES {
            assert!(seen.insert(c.to_ascii_lowercase()), "{c} twice");
        }
    }
}

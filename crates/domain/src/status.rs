//! Statuses of shipping instructions, payments, the shipment return (API status) and Amazon orders.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// A stored or typed status value that is not one of the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}: expected one of {expected}")]
pub struct UnknownStatus {
    pub kind: &'static str,
    pub value: String,
    pub expected: &'static str,
}

macro_rules! labelled_enum {
    (
        $(#[$meta:meta])* $name:ident, $kind:literal {
            $( $(#[$vmeta:meta])* $variant:ident => $db:literal, $ja:literal, $en:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $( $(#[$vmeta])* $variant ),+ }

        impl $name {
            /// Every value, in workflow order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The value stored in the database and used in messages.
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $db),+ } }
            /// The Japanese label the seed and the console use.
            pub fn label_ja(self) -> &'static str { match self { $($name::$variant => $ja),+ } }
            /// The English label.
            pub fn label_en(self) -> &'static str { match self { $($name::$variant => $en),+ } }
        }

        impl FromStr for $name {
            type Err = UnknownStatus;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $($db => Ok($name::$variant),)+ _ => Err(UnknownStatus {
                    kind: $kind, value: s.to_owned(), expected: concat!($($db, " "),+),
                }) }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

labelled_enum! {
    /// Shipping instruction (出荷指示) status.
    InstructionStatus, "instruction status" {
        /// 保留: imported, not yet released for shipping.
        Hold => "hold", "保留", "On hold",
        /// 出荷待ち
        AwaitingShipment => "awaiting_shipment", "出荷待ち", "Awaiting shipment",
        /// 引当済み: stock allocated, the parcel may be about to leave.
        Allocated => "allocated", "引当済み", "Allocated",
        /// 出荷済み
        Shipped => "shipped", "出荷済み", "Shipped",
        /// キャンセル
        Canceled => "canceled", "キャンセル", "Canceled",
    }
}

labelled_enum! {
    /// Why an instruction is on hold (保留理由). Payment releases only [`HoldReason::Unpaid`].
    HoldReason, "hold reason" {
        /// 未入金: the import held the order because it was not paid yet.
        Unpaid => "unpaid", "未入金", "Not paid yet",
        /// オペレーター: an operator put it on hold.
        Operator => "operator", "オペレーター保留", "Held by an operator",
        /// その他
        Other => "other", "その他", "Other",
        /// 購入者キャンセル依頼: the buyer asked to cancel; an operator accepts or declines.
        BuyerCancelRequest => "buyer_cancel_request", "購入者キャンセル依頼", "Buyer asked to cancel",
    }
}

labelled_enum! {
    /// Payment status.
    PaymentStatus, "payment status" {
        Unpaid => "unpaid", "未入金", "Unpaid",
        /// 入金済み
        Paid => "paid", "入金済み", "Paid",
    }
}

labelled_enum! {
    /// API status of the shipment return to Amazon.
    ApiStatus, "API status" {
        /// 印刷待ち: not yet sent to Amazon.
        AwaitingPrint => "awaiting_print", "印刷待ち", "Awaiting print",
        /// 印刷済み: sent to Amazon, result pending.
        Printed => "printed", "印刷済み", "Printed (sent)",
        /// 出荷済み: confirmed by Amazon.
        Shipped => "shipped", "出荷済み", "Shipped (confirmed)",
        /// Amazon rejected the shipment; its message is kept.
        Failed => "failed", "失敗", "Failed",
        /// 一部出荷済み: a shop that sends every package had some packages confirmed by Amazon;
        /// the rest of the order has not left, or is not sent yet.
        PartiallyShipped => "partially_shipped", "一部出荷済み", "Partially shipped (confirmed)",
    }
}

labelled_enum! {
    /// Payment method as Amazon exposes it to sellers.
    PaymentMethod, "payment method" {
        /// `Amazon 仮支払方法`: not visible while the order is Pending.
        Placeholder => "placeholder", "Amazon 仮支払方法", "Amazon placeholder",
        /// 代引き
        CashOnDelivery => "cod", "代引き", "Cash on delivery",
        /// コンビニ
        ConvenienceStore => "convenience_store", "コンビニ", "Convenience store",
        /// その他
        Other => "other", "その他", "Other",
        /// 購入者キャンセル依頼: the buyer asked to cancel; an operator accepts or declines.
        BuyerCancelRequest => "buyer_cancel_request", "購入者キャンセル依頼", "Buyer asked to cancel",
    }
}

impl InstructionStatus {
    /// Between hold (保留) and awaiting shipment (出荷待ち), the window in which the seed lets
    /// status sync change an instruction.
    pub fn is_open_for_sync(self) -> bool {
        matches!(self, Self::Hold | Self::AwaitingShipment)
    }
}

/// A change of a shipment's API status (the shipment return to Amazon): where it may start and
/// where it leads. The one statement of the transitions; the store's updates are guarded by
/// [`ApiTransition::from`] and write [`ApiTransition::to`].
///
/// ```text
/// 印刷待ち awaiting_print ──FeedAccepted──▶ 印刷済み printed ──FeedConfirmed──▶ 出荷済み shipped
///        │  ▲                                      └────────FeedRefused─────▶ failed
///        │  └──ResendRequested── failed / awaiting_print (ctl resend-shipment)
///        ├──ShipmentConfirmed (confirmShipment)──▶ 出荷済み shipped
///        └──ShipmentRefused (confirmShipment)────▶ failed
///
/// Every package, partial shipments (a shop that sends every package):
/// 印刷待ち / 印刷済み ──PartConfirmed──▶ 一部出荷済み partially_shipped ──PackagesAdded──▶ 印刷待ち
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiTransition {
    /// Amazon accepted the feed carrying the shipment (shipment-feedback).
    FeedAccepted,
    /// The feed's processing report confirmed the shipment, or warned (feed-poller).
    FeedConfirmed,
    /// The feed's processing report refused the shipment, or the feed failed (feed-poller).
    FeedRefused,
    /// `confirmShipment` succeeded (shipment-feedback, strategy confirm_shipment).
    ShipmentConfirmed,
    /// `confirmShipment` was refused (shipment-feedback, strategy confirm_shipment).
    ShipmentRefused,
    /// An operator asked to send the shipment again (`ctl resend-shipment`).
    ResendRequested,
    /// Amazon confirmed every package sent so far, and they do not cover the whole order (or
    /// more packages wait): 一部出荷済み (feed-poller, or confirmShipment per package).
    PartConfirmed,
    /// The warehouse recorded more packages of a partially shipped order: they wait to be sent.
    PackagesAdded,
}

impl ApiTransition {
    /// Every transition.
    pub const ALL: &'static [ApiTransition] = &[
        Self::FeedAccepted,
        Self::FeedConfirmed,
        Self::FeedRefused,
        Self::ShipmentConfirmed,
        Self::ShipmentRefused,
        Self::ResendRequested,
        Self::PartConfirmed,
        Self::PackagesAdded,
    ];

    /// The statuses the transition may start from (any other status is left alone).
    pub fn from(self) -> &'static [ApiStatus] {
        use ApiStatus::*;
        match self {
            Self::FeedAccepted | Self::ShipmentConfirmed | Self::ShipmentRefused => {
                &[AwaitingPrint]
            }
            Self::FeedConfirmed | Self::FeedRefused => &[Printed],
            Self::ResendRequested => &[AwaitingPrint, Failed],
            Self::PartConfirmed => &[AwaitingPrint, Printed],
            Self::PackagesAdded => &[PartiallyShipped],
        }
    }

    /// The status it leads to.
    pub fn to(self) -> ApiStatus {
        match self {
            Self::FeedAccepted => ApiStatus::Printed,
            Self::FeedConfirmed | Self::ShipmentConfirmed => ApiStatus::Shipped,
            Self::FeedRefused | Self::ShipmentRefused => ApiStatus::Failed,
            Self::ResendRequested | Self::PackagesAdded => ApiStatus::AwaitingPrint,
            Self::PartConfirmed => ApiStatus::PartiallyShipped,
        }
    }

    /// [`Self::from`] as database values (for a guarded update).
    pub fn from_values(self) -> Vec<String> {
        self.from().iter().map(|s| s.as_str().to_owned()).collect()
    }
}

impl ApiStatus {
    /// The status after `t`, or `None` when `t` does not apply to this status.
    pub fn after(self, t: ApiTransition) -> Option<ApiStatus> {
        t.from().contains(&self).then(|| t.to())
    }
}

impl PaymentMethod {
    /// Maps Amazon's payment executions (`CashOnDelivery`, `ConvenienceStore`, `CreditCard`, ...,
    /// or v0's `COD`/`CVS`/`Other`) to the three methods Amazon exposes to sellers. An empty list
    /// means Amazon still withholds it.
    pub fn from_amazon<'a>(methods: impl IntoIterator<Item = &'a str>) -> Self {
        let mut seen_any = false;
        let mut result = Self::Other;
        for m in methods {
            seen_any = true;
            match m.trim() {
                "CashOnDelivery" | "COD" => return Self::CashOnDelivery,
                "ConvenienceStore" | "CVS" => result = Self::ConvenienceStore,
                _ => {}
            }
        }
        if seen_any { result } else { Self::Placeholder }
    }
}

/// Amazon's fulfillment status of an order (Orders API v2026-01-01).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AmazonOrderStatus {
    PendingAvailability,
    Pending,
    Unshipped,
    PartiallyShipped,
    Shipped,
    Cancelled,
    Unfulfillable,
}

impl AmazonOrderStatus {
    /// Amazon's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingAvailability => "PENDING_AVAILABILITY",
            Self::Pending => "PENDING",
            Self::Unshipped => "UNSHIPPED",
            Self::PartiallyShipped => "PARTIALLY_SHIPPED",
            Self::Shipped => "SHIPPED",
            Self::Cancelled => "CANCELLED",
            Self::Unfulfillable => "UNFULFILLABLE",
        }
    }

    /// Payment is confirmed: the order is Unshipped or later (but not cancelled).
    pub fn is_paid(self) -> bool {
        matches!(
            self,
            Self::Unshipped | Self::PartiallyShipped | Self::Shipped
        )
    }
}

impl FromStr for AmazonOrderStatus {
    type Err = UnknownStatus;
    /// Accepts v2026 (`UNSHIPPED`) and v0 (`Unshipped`, `Canceled`) spellings.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm: String = s
            .chars()
            .filter(|c| *c != '_')
            .collect::<String>()
            .to_ascii_uppercase();
        Ok(match norm.as_str() {
            "PENDINGAVAILABILITY" => Self::PendingAvailability,
            "PENDING" => Self::Pending,
            "UNSHIPPED" => Self::Unshipped,
            "PARTIALLYSHIPPED" => Self::PartiallyShipped,
            "SHIPPED" => Self::Shipped,
            "CANCELLED" | "CANCELED" => Self::Cancelled,
            "UNFULFILLABLE" => Self::Unfulfillable,
            _ => {
                return Err(UnknownStatus {
                    kind: "Amazon order status",
                    value: s.to_owned(),
                    expected: "PENDING_AVAILABILITY PENDING UNSHIPPED PARTIALLY_SHIPPED SHIPPED CANCELLED UNFULFILLABLE",
                });
            }
        })
    }
}

impl fmt::Display for AmazonOrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_match_the_seed() {
        let ja: Vec<_> = InstructionStatus::ALL
            .iter()
            .map(|s| s.label_ja())
            .collect();
        assert_eq!(
            ja,
            ["保留", "出荷待ち", "引当済み", "出荷済み", "キャンセル"]
        );
        assert_eq!(PaymentStatus::Paid.label_ja(), "入金済み");
        let api: Vec<_> = ApiStatus::ALL[..3].iter().map(|s| s.label_ja()).collect();
        assert_eq!(api, ["印刷待ち", "印刷済み", "出荷済み"]);
        assert_eq!(
            PaymentMethod::Placeholder.label_ja(),
            crate::PLACEHOLDER_PAYMENT_METHOD
        );
    }

    #[test]
    fn api_status_transitions() {
        use ApiStatus::*;
        use ApiTransition::*;
        assert_eq!(AwaitingPrint.after(FeedAccepted), Some(Printed));
        assert_eq!(Printed.after(FeedConfirmed), Some(Shipped));
        assert_eq!(Printed.after(FeedRefused), Some(Failed));
        assert_eq!(AwaitingPrint.after(ShipmentConfirmed), Some(Shipped));
        assert_eq!(AwaitingPrint.after(ShipmentRefused), Some(Failed));
        assert_eq!(Failed.after(ResendRequested), Some(AwaitingPrint));
        // A result never overwrites an operator's resend, nor a confirmed shipment.
        assert_eq!(AwaitingPrint.after(FeedConfirmed), None);
        assert_eq!(Shipped.after(FeedRefused), None);
        assert_eq!(Shipped.after(ResendRequested), None);
        assert_eq!(Printed.after(ResendRequested), None);
        assert_eq!(Printed.after(FeedAccepted), None);
        assert_eq!(Printed.after(PartConfirmed), Some(PartiallyShipped));
        assert_eq!(AwaitingPrint.after(PartConfirmed), Some(PartiallyShipped));
        assert_eq!(PartiallyShipped.after(PackagesAdded), Some(AwaitingPrint));
        // A confirmed part is not resent, and a feed result does not apply to it.
        assert_eq!(PartiallyShipped.after(ResendRequested), None);
        assert_eq!(PartiallyShipped.after(FeedConfirmed), None);
        assert_eq!(Shipped.after(PackagesAdded), None);
        for t in ApiTransition::ALL {
            assert!(
                !t.from().contains(&t.to()) || *t == ResendRequested,
                "{t:?}"
            );
            assert_eq!(t.from_values().len(), t.from().len());
        }
    }

    #[test]
    fn db_values_round_trip() {
        for s in InstructionStatus::ALL {
            assert_eq!(s.as_str().parse::<InstructionStatus>().unwrap(), *s);
        }
        for s in ApiStatus::ALL {
            assert_eq!(s.as_str().parse::<ApiStatus>().unwrap(), *s);
        }
        let err = "done".parse::<InstructionStatus>().unwrap_err();
        assert!(err.to_string().contains("hold awaiting_shipment"), "{err}");
    }

    #[test]
    fn payment_method_mapping() {
        assert_eq!(
            PaymentMethod::from_amazon(["CashOnDelivery"]),
            PaymentMethod::CashOnDelivery
        );
        assert_eq!(
            PaymentMethod::from_amazon(["ConvenienceStore"]),
            PaymentMethod::ConvenienceStore
        );
        assert_eq!(
            PaymentMethod::from_amazon(["CreditCard"]),
            PaymentMethod::Other
        );
        assert_eq!(
            PaymentMethod::from_amazon(["GC", "COD"]),
            PaymentMethod::CashOnDelivery
        );
        assert_eq!(
            PaymentMethod::from_amazon(Vec::<&str>::new()),
            PaymentMethod::Placeholder
        );
    }

    #[test]
    fn amazon_status_spellings() {
        assert_eq!(
            "Canceled".parse::<AmazonOrderStatus>().unwrap(),
            AmazonOrderStatus::Cancelled
        );
        assert_eq!(
            "PARTIALLY_SHIPPED".parse::<AmazonOrderStatus>().unwrap(),
            AmazonOrderStatus::PartiallyShipped
        );
        assert!(AmazonOrderStatus::Unshipped.is_paid());
        assert!(!AmazonOrderStatus::Pending.is_paid());
        assert!(!AmazonOrderStatus::Cancelled.is_paid());
    }
}

//! Japanese and English. Japanese labels follow the seed (差分取得, 範囲指定で取得, APIログ...).

use domain::messages::Action;

/// The console's two languages. Japanese is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Ja,
    En,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ja" => Some(Self::Ja),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Ja => "ja",
            Self::En => "en",
        }
    }

    /// The language's own name (the switch shows the other one).
    pub fn name(self) -> &'static str {
        match self {
            Self::Ja => "日本語",
            Self::En => "English",
        }
    }

    pub fn other(self) -> Self {
        match self {
            Self::Ja => Self::En,
            Self::En => Self::Ja,
        }
    }

    /// Picks the text for this language.
    pub fn t<'a>(self, ja: &'a str, en: &'a str) -> &'a str {
        match self {
            Self::Ja => ja,
            Self::En => en,
        }
    }

    /// An action's name.
    pub fn action(self, a: Action) -> &'static str {
        match self {
            Self::Ja => a.label_ja(),
            Self::En => match a {
                Action::OrderIngest => "Shipping-instruction import",
                Action::StatusSync => "Status sync",
                Action::ShipmentFeedback => "Shipment-result return",
                Action::InventorySync => "Inventory sync",
                Action::FeedPoller => "Feed-result retrieval",
            },
        }
    }

    /// An action name as stored (`order-ingest`), translated when known.
    pub fn action_str(self, s: &str) -> String {
        match s.parse::<Action>() {
            Ok(a) => self.action(a).to_owned(),
            Err(_) if s == "console" => self.t("コンソール", "Console").to_owned(),
            Err(_) => s.to_owned(),
        }
    }

    /// An import mode (`differential`, `range`, `hours`) or other run mode.
    pub fn mode(self, m: &str) -> String {
        self.lookup(MODE, m)
    }

    /// A run status.
    pub fn run_status(self, s: &str) -> String {
        self.lookup(RUN_STATUS, s)
    }

    /// An API log level.
    pub fn level(self, s: &str) -> String {
        self.lookup(LEVEL, s)
    }

    /// A feed state or per-message result.
    pub fn feed_state(self, s: &str) -> String {
        self.lookup(FEED_STATE, s)
    }

    /// A shop's authorization status.
    pub fn auth_status(self, s: &str) -> String {
        self.lookup(AUTH_STATUS, s)
    }

    /// The label of `value` in a (stored value, ja, en) table; the value itself when the table
    /// does not know it.
    fn lookup(self, table: &[(&str, &str, &str)], value: &str) -> String {
        table
            .iter()
            .find(|(k, _, _)| *k == value)
            .map_or_else(|| value.to_owned(), |(_, ja, en)| self.t(ja, en).to_owned())
    }

    /// The label of a stored status string that parses as `S`; the string itself when it does
    /// not (an unknown value is shown as stored).
    pub fn parsed_label<S: Copy + std::str::FromStr>(
        self,
        s: &str,
        ja: fn(S) -> &'static str,
        en: fn(S) -> &'static str,
    ) -> String {
        s.parse::<S>()
            .map(|v| self.status(v, ja, en).to_owned())
            .unwrap_or_else(|_| s.to_owned())
    }

    /// Picks the label of a status enum from `domain` (`label_ja`/`label_en`).
    pub fn status<S: Copy>(
        self,
        s: S,
        ja: fn(S) -> &'static str,
        en: fn(S) -> &'static str,
    ) -> &'static str {
        match self {
            Self::Ja => ja(s),
            Self::En => en(s),
        }
    }
}

/// An import mode (`differential`, `range`, `hours`) or other run mode: labels (stored value, ja, en).
const MODE: &[(&str, &str, &str)] = &[
    ("differential", "差分取得", "Differential"),
    ("range", "範囲指定で取得", "Date range"),
    ("hours", "時間指定で取得", "Last N hours"),
    ("changes", "変更分", "Changes"),
    ("reconcile", "全件照合", "Reconcile"),
    ("full", "全件", "Full"),
];

/// A run status: labels (stored value, ja, en).
const RUN_STATUS: &[(&str, &str, &str)] = &[
    ("running", "実行中", "Running"),
    ("waiting", "待機中", "Waiting"),
    ("succeeded", "成功", "Succeeded"),
    ("failed", "失敗", "Failed"),
    ("skipped", "スキップ", "Skipped"),
    ("rejected", "却下", "Rejected"),
];

/// An API log level: labels (stored value, ja, en).
const LEVEL: &[(&str, &str, &str)] = &[
    ("info", "情報", "Info"),
    ("warning", "警告", "Warning"),
    ("error", "エラー", "Error"),
    ("attention", "要対応", "Attention"),
];

/// A feed state or per-message result: labels (stored value, ja, en).
const FEED_STATE: &[(&str, &str, &str)] = &[
    ("pending", "待機", "Pending"),
    ("in_flight", "送信中", "Sending"),
    ("submitted", "処理待ち", "Submitted"),
    ("done", "完了", "Done"),
    ("fatal", "致命的エラー", "Fatal"),
    ("cancelled", "取消", "Cancelled"),
    ("failed", "失敗", "Failed"),
    ("success", "成功", "Success"),
    ("warning", "警告", "Warning"),
    ("error", "エラー", "Error"),
];

/// A shop's authorization status: labels (stored value, ja, en).
const AUTH_STATUS: &[(&str, &str, &str)] = &[
    ("ok", "正常", "OK"),
    (
        "needs_reauthorization",
        "再認可が必要",
        "Re-authorization needed",
    ),
];

//! Message contracts carried over RabbitMQ: commands that trigger actions and the events
//! services publish. They carry ids and parameters only, never PII or secrets. Versioned: a
//! consumer refuses a version it does not know (the message goes to the dead-letter queue with
//! the reason) instead of guessing.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::window::{self, ImportMode, WindowError};

/// Current version of [`Command`] and [`Event`].
pub const MESSAGE_VERSION: u32 = 1;

/// Exchange commands are published to (direct; routing key = the action's queue).
pub const COMMANDS_EXCHANGE: &str = "commands";
/// Exchange events are published to (topic; routing key = the event kind).
pub const EVENTS_EXCHANGE: &str = "events";

/// The five actions, one service and one command queue each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// 出荷指示取得
    OrderIngest,
    /// ステータス同期
    StatusSync,
    /// 出荷実績戻し
    ShipmentFeedback,
    /// 在庫連携
    InventorySync,
    /// フィード送信結果取得
    FeedPoller,
}

/// An action name that is not one of the five.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown action {0:?}: expected order-ingest, status-sync, shipment-feedback, inventory-sync or feed-poller"
)]
pub struct UnknownAction(pub String);

impl Action {
    pub const ALL: [Action; 5] = [
        Self::OrderIngest,
        Self::StatusSync,
        Self::ShipmentFeedback,
        Self::InventorySync,
        Self::FeedPoller,
    ];

    /// Service, queue and routing-key name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderIngest => "order-ingest",
            Self::StatusSync => "status-sync",
            Self::ShipmentFeedback => "shipment-feedback",
            Self::InventorySync => "inventory-sync",
            Self::FeedPoller => "feed-poller",
        }
    }

    /// The seed's Japanese name.
    pub fn label_ja(self) -> &'static str {
        match self {
            Self::OrderIngest => "出荷指示取得",
            Self::StatusSync => "ステータス同期",
            Self::ShipmentFeedback => "出荷実績戻し",
            Self::InventorySync => "在庫連携",
            Self::FeedPoller => "フィード送信結果取得",
        }
    }
}

impl FromStr for Action {
    type Err = UnknownAction;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownAction(s.to_owned()))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Status-sync modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StatusSyncMode {
    /// What changed on Amazon since the last watermark (searchOrders on lastUpdatedAfter).
    #[default]
    Changes,
    /// Check every open API-imported instruction with getOrder (after an outage).
    Reconcile,
}

/// Parameters of a command, per action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CommandParams {
    OrderIngest {
        #[serde(flatten)]
        mode: ImportMode,
    },
    StatusSync {
        #[serde(default)]
        mode: StatusSyncMode,
    },
    /// status-sync of the orders Amazon announced (ORDER_CHANGE notifications): each fetched
    /// with `getOrder` and applied by the same rules as `changes`; one not imported yet is
    /// imported (merchant-fulfilled PENDING or UNSHIPPED). 1 to [`MAX_ANNOUNCED_ORDERS`] ids.
    StatusSyncOrders {
        order_ids: Vec<String>,
    },
    ShipmentFeedback {},
    InventorySync {
        /// Push every mapped SKU, not only the changed ones.
        #[serde(default)]
        full: bool,
    },
    FeedPoll {
        /// Poll one feed; `None` polls every open feed of the shop.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        feed_submission_id: Option<Uuid>,
    },
    /// Resume a run that stored its cursor (e.g. waiting for Amazon's quota).
    Continue {
        run_id: Uuid,
    },
}

impl CommandParams {
    /// The action these parameters belong to (`Continue` is valid for any action).
    pub fn action(&self) -> Option<Action> {
        match self {
            Self::OrderIngest { .. } => Some(Action::OrderIngest),
            Self::StatusSync { .. } | Self::StatusSyncOrders { .. } => Some(Action::StatusSync),
            Self::ShipmentFeedback {} => Some(Action::ShipmentFeedback),
            Self::InventorySync { .. } => Some(Action::InventorySync),
            Self::FeedPoll { .. } => Some(Action::FeedPoller),
            Self::Continue { .. } => None,
        }
    }
}

/// A trigger for one action for one shop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub version: u32,
    /// Also the AMQP message id: the consumer's inbox key.
    pub message_id: Uuid,
    pub shop_id: Uuid,
    pub action: Action,
    pub params: CommandParams,
    pub requested_at: DateTime<Utc>,
    /// Who asked: an operator's user name, `cron:<name>`, or `system`.
    pub requested_by: String,
}

/// Why a command was refused before anything happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("command version {0} is not supported: this service reads version {MESSAGE_VERSION}")]
    Version(u32),
    #[error("parameters for {params} were sent to the {action} queue")]
    WrongAction { action: Action, params: Action },
    #[error(transparent)]
    Window(#[from] WindowError),
    #[error("malformed command: {0}")]
    Malformed(String),
    #[error(
        "announced orders: {0}; give 1 to {MAX_ANNOUNCED_ORDERS} Amazon order ids like 503-1234567-1234567"
    )]
    AnnouncedOrders(String),
}

/// Most order ids in one [`CommandParams::StatusSyncOrders`].
pub const MAX_ANNOUNCED_ORDERS: usize = 100;

impl Command {
    /// A new command with a fresh time-ordered id.
    pub fn new(
        shop_id: Uuid,
        action: Action,
        params: CommandParams,
        requested_by: impl Into<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            version: MESSAGE_VERSION,
            message_id: Uuid::now_v7(),
            shop_id,
            action,
            params,
            requested_at: now,
            requested_by: requested_by.into(),
        }
    }

    /// Checks what can be checked without the database: version, parameters matching the
    /// action, and window limits (8-day ranges, 200 hours, inverted ranges are refused).
    pub fn validate(&self, now: DateTime<Utc>) -> Result<(), CommandError> {
        if self.version != MESSAGE_VERSION {
            return Err(CommandError::Version(self.version));
        }
        if let Some(p) = self.params.action()
            && p != self.action
        {
            return Err(CommandError::WrongAction {
                action: self.action,
                params: p,
            });
        }
        if let CommandParams::OrderIngest { mode } = self.params {
            window::validate(mode, now)?;
        }
        if let CommandParams::StatusSyncOrders { order_ids } = &self.params {
            if order_ids.is_empty() || order_ids.len() > MAX_ANNOUNCED_ORDERS {
                return Err(CommandError::AnnouncedOrders(format!(
                    "{} order ids",
                    order_ids.len()
                )));
            }
            if let Some(bad) = order_ids
                .iter()
                .find(|id| !crate::order_id::is_amazon_order_id(id))
            {
                return Err(CommandError::AnnouncedOrders(format!(
                    "{bad:?} is not an Amazon order id"
                )));
            }
        }
        Ok(())
    }

    /// Decodes and validates a command body.
    pub fn decode(body: &[u8], now: DateTime<Utc>) -> Result<Self, CommandError> {
        let cmd: Command =
            serde_json::from_slice(body).map_err(|e| CommandError::Malformed(e.to_string()))?;
        cmd.validate(now)?;
        Ok(cmd)
    }
}

/// What happened, published on the events exchange with [`EventKind::routing_key`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    OrderImported {
        instruction_id: Uuid,
        amazon_order_id: String,
        run_id: Uuid,
    },
    OrderPaid {
        instruction_id: Uuid,
        amazon_order_id: String,
    },
    OrderCanceled {
        instruction_id: Uuid,
        amazon_order_id: String,
    },
    FeedSubmitted {
        feed_submission_id: Uuid,
        feed_type: String,
    },
    FeedProcessed {
        feed_submission_id: Uuid,
        succeeded: u32,
        failed: u32,
    },
    StockChanged {
        product_id: Uuid,
    },
}

impl EventKind {
    /// Topic routing key, e.g. `order.imported`.
    pub fn routing_key(&self) -> &'static str {
        match self {
            Self::OrderImported { .. } => "order.imported",
            Self::OrderPaid { .. } => "order.paid",
            Self::OrderCanceled { .. } => "order.canceled",
            Self::FeedSubmitted { .. } => "feed.submitted",
            Self::FeedProcessed { .. } => "feed.processed",
            Self::StockChanged { .. } => "stock.changed",
        }
    }
}

/// An event envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub version: u32,
    pub event_id: Uuid,
    pub shop_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    pub fn new(shop_id: Uuid, kind: EventKind, now: DateTime<Utc>) -> Self {
        Self {
            version: MESSAGE_VERSION,
            event_id: Uuid::now_v7(),
            shop_id,
            occurred_at: now,
            kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
    }

    #[test]
    fn command_wire_format() {
        let cmd = Command::new(
            Uuid::nil(),
            Action::OrderIngest,
            CommandParams::OrderIngest {
                mode: ImportMode::Hours { hours: 6 },
            },
            "alice",
            now(),
        );
        let v = serde_json::to_value(&cmd).unwrap();
        assert_eq!(v["action"], "order-ingest");
        assert_eq!(
            v["params"],
            serde_json::json!({"kind": "order_ingest", "mode": "hours", "hours": 6})
        );
        let back = Command::decode(&serde_json::to_vec(&cmd).unwrap(), now()).unwrap();
        assert_eq!(back, cmd);
    }

    /// Announced orders (issue 19): the wire form, and 1-100 well-formed Amazon order ids.
    #[test]
    fn announced_orders_are_checked() {
        let cmd = |ids: Vec<String>| {
            Command::new(
                Uuid::nil(),
                Action::StatusSync,
                CommandParams::StatusSyncOrders { order_ids: ids },
                "notifications",
                now(),
            )
        };
        let ok = cmd(vec!["503-1234567-1234567".into()]);
        assert_eq!(
            serde_json::to_value(&ok).unwrap()["params"],
            serde_json::json!({"kind": "status_sync_orders", "order_ids": ["503-1234567-1234567"]})
        );
        assert_eq!(ok.validate(now()), Ok(()));
        for bad in [
            vec![],
            vec!["503-1234567-1234567".into(), "<script>".into()],
            vec!["503-1234567-1234567".to_owned(); MAX_ANNOUNCED_ORDERS + 1],
        ] {
            let e = cmd(bad).validate(now()).unwrap_err();
            assert!(matches!(e, CommandError::AnnouncedOrders(_)), "{e}");
            assert!(
                e.to_string().contains("503-1234567-1234567"),
                "says what is valid: {e}"
            );
        }
        let wrong = Command {
            action: Action::OrderIngest,
            ..cmd(vec!["503-1234567-1234567".into()])
        };
        assert!(matches!(
            wrong.validate(now()),
            Err(CommandError::WrongAction { .. })
        ));
    }

    #[test]
    fn invalid_commands_are_refused() {
        let from = now() - Duration::days(30);
        let long = Command::new(
            Uuid::nil(),
            Action::OrderIngest,
            CommandParams::OrderIngest {
                mode: ImportMode::Range {
                    from,
                    to: from + Duration::days(8),
                },
            },
            "alice",
            now(),
        );
        assert!(matches!(
            long.validate(now()),
            Err(CommandError::Window(WindowError::RangeTooLong { .. }))
        ));

        let wrong = Command::new(
            Uuid::nil(),
            Action::StatusSync,
            CommandParams::ShipmentFeedback {},
            "x",
            now(),
        );
        assert!(matches!(
            wrong.validate(now()),
            Err(CommandError::WrongAction { .. })
        ));

        let mut v2 = Command::new(
            Uuid::nil(),
            Action::StatusSync,
            CommandParams::StatusSync {
                mode: StatusSyncMode::Changes,
            },
            "x",
            now(),
        );
        v2.version = 2;
        assert_eq!(v2.validate(now()), Err(CommandError::Version(2)));

        let err = Command::decode(br#"{"version":1}"#, now()).unwrap_err();
        assert!(matches!(err, CommandError::Malformed(_)));
    }

    #[test]
    fn event_routing() {
        let e = Event::new(
            Uuid::nil(),
            EventKind::FeedSubmitted {
                feed_submission_id: Uuid::nil(),
                feed_type: "X".into(),
            },
            now(),
        );
        assert_eq!(e.kind.routing_key(), "feed.submitted");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["kind"], "feed_submitted");
        assert_eq!(serde_json::from_value::<Event>(v).unwrap(), e);
    }

    #[test]
    fn action_names() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>().unwrap(), a);
        }
        assert!("order_ingest".parse::<Action>().is_err());
    }
}

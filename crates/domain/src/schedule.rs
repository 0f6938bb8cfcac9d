//! 自動実行 (schedules): when each action runs for each shop. An entry is a cron expression read in
//! the shop's time zone; the scheduler (`ctl scheduler tick`, once a minute) fires the latest slot
//! of an entry that is due, once.
//!
//! The rules, all here and pure:
//! - a cadence is a five-field cron expression (minute hour day-of-month month day-of-week, or an
//!   alias such as `@hourly`) that matches at least one date ([`Cadence`]);
//! - an entry is due at `now` when its latest slot at or before `now` is later than the slot it
//!   last dealt with (its watermark): slots missed in between are never fired one by one, only the
//!   latest, once ([`due`]);
//! - a slot more than `max_late` old ([`MAX_LATE`] by default) is passed over instead of fired
//!   late (the scheduler was down across it; the next slot runs as usual);
//! - every shop starts with [`DEFAULTS`]: the five actions at the cadences the per-shop CronJobs
//!   had, plus the end-of-day shipment-feedback run at 23:55.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use croner::{
    Cron,
    parser::{CronParser, Seconds, Year},
};

use crate::{
    messages::{Action, CommandParams, StatusSyncMode},
    window::ImportMode,
};

/// The name of an action's usual entry.
pub const DEFAULT_ENTRY: &str = "default";
/// The name of shipment-feedback's end-of-day entry (the day's last run, issue 17 item 1).
pub const END_OF_DAY_ENTRY: &str = "end-of-day";

/// How late a slot may still be fired: a slot older than this at the tick is passed over.
pub const MAX_LATE: Duration = Duration::minutes(60);

/// One of the entries every shop starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultEntry {
    pub action: Action,
    pub entry: &'static str,
    pub cron: &'static str,
}

/// The entries a new shop gets (and migration 20261202006000 gave every existing shop): the
/// cadences of the per-shop trigger CronJobs they replace, in the shop's own time zone.
pub const DEFAULTS: [DefaultEntry; 6] = [
    DefaultEntry {
        action: Action::OrderIngest,
        entry: DEFAULT_ENTRY,
        cron: "*/15 * * * *",
    },
    DefaultEntry {
        action: Action::StatusSync,
        entry: DEFAULT_ENTRY,
        cron: "*/10 * * * *",
    },
    DefaultEntry {
        action: Action::ShipmentFeedback,
        entry: DEFAULT_ENTRY,
        cron: "0 * * * *",
    },
    // The day's last shipment-feedback run, after the warehouse's last dispatch: the seed sends
    // only the day's shipments (docs/operations.md, "Late shipments").
    DefaultEntry {
        action: Action::ShipmentFeedback,
        entry: END_OF_DAY_ENTRY,
        cron: "55 23 * * *",
    },
    DefaultEntry {
        action: Action::InventorySync,
        entry: DEFAULT_ENTRY,
        cron: "5-59/15 * * * *",
    },
    DefaultEntry {
        action: Action::FeedPoller,
        entry: DEFAULT_ENTRY,
        cron: "*/5 * * * *",
    },
];

/// The cadence of `action`'s default entry in [`DEFAULTS`] (every action has one).
pub fn default_cron(action: Action) -> &'static str {
    DEFAULTS
        .iter()
        .find(|d| d.action == action && d.entry == DEFAULT_ENTRY)
        .map(|d| d.cron)
        .expect("every action has a default entry")
}

/// A cron expression that is not a usable cadence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a valid schedule ({problem}): expected a cron expression of five fields in \
     the shop's time zone (minute hour day-of-month month day-of-week), e.g. \"*/15 * * * *\" \
     (every 15 minutes) or \"55 23 * * *\" (23:55 every day)"
)]
pub struct InvalidCadence {
    /// What was given.
    pub input: String,
    /// What is wrong with it.
    pub problem: CadenceProblem,
}

/// What is wrong with a cron expression ([`InvalidCadence`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CadenceProblem {
    #[error("it is empty")]
    Empty,
    #[error("it has {0} field(s), not 5")]
    FieldCount(usize),
    /// A field the cron parser refuses (its message).
    #[error("{0}")]
    Syntax(String),
    /// It parses but matches no date (e.g. 30 February).
    #[error("it matches no date")]
    NeverMatches,
}

/// Why an entry name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an entry name: use 1-32 lower-case letters, digits and '-', starting with a \
     letter or digit (e.g. default, end-of-day)"
)]
pub struct InvalidEntryName(pub String);

/// Checks an entry name (`default`, `end-of-day`, ...).
pub fn entry_name(s: &str) -> Result<&str, InvalidEntryName> {
    let ok = (1..=32).contains(&s.len())
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(s)
    } else {
        Err(InvalidEntryName(s.to_owned()))
    }
}

/// A validated cron expression, minute precision, read in a shop's time zone.
#[derive(Clone)]
pub struct Cadence {
    text: String,
    cron: Cron,
}

impl fmt::Debug for Cadence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Cadence").field(&self.text).finish()
    }
}

impl fmt::Display for Cadence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for Cadence {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Cadence {}

impl FromStr for Cadence {
    type Err = InvalidCadence;

    fn from_str(input: &str) -> Result<Self, InvalidCadence> {
        let invalid = |problem| InvalidCadence {
            input: input.to_owned(),
            problem,
        };
        let text = input.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            return Err(invalid(CadenceProblem::Empty));
        }
        let fields = text.split(' ').count();
        if !text.starts_with('@') && fields != 5 {
            return Err(invalid(CadenceProblem::FieldCount(fields)));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(&text)
            .map_err(|e| invalid(CadenceProblem::Syntax(e.to_string())))?;
        let cadence = Self { text, cron };
        // A pattern such as "0 0 30 2 *" (30 February) parses but never comes.
        let probe = DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap_or_default(); // 2026-01-01
        if cadence.next_after(probe, chrono_tz::UTC).is_none() {
            return Err(invalid(CadenceProblem::NeverMatches));
        }
        Ok(cadence)
    }
}

impl Cadence {
    /// The expression as stored (whitespace collapsed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The latest slot at or before `now`, the expression read in `tz`.
    pub fn latest_at_or_before(&self, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&now.with_timezone(&tz), true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The first slot after `t`, the expression read in `tz`.
    pub fn next_after(&self, t: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&tz), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// What the scheduler does with an entry at a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Publish a trigger for this slot.
    Fire(DateTime<Utc>),
    /// The latest slot is more than `max_late` old: pass it over (recorded, not fired).
    Missed(DateTime<Utc>),
}

impl Due {
    /// The slot.
    pub fn slot(self) -> DateTime<Utc> {
        match self {
            Self::Fire(s) | Self::Missed(s) => s,
        }
    }
}

/// Whether an entry whose watermark is `last_slot` (the latest slot already dealt with) is due at
/// `now`: its latest slot at or before `now` when that is later than `last_slot` (missed slots
/// before it are not fired one by one), passed over when more than `max_late` old.
pub fn due(
    cadence: &Cadence,
    tz: Tz,
    last_slot: DateTime<Utc>,
    now: DateTime<Utc>,
    max_late: Duration,
) -> Option<Due> {
    let slot = cadence.latest_at_or_before(now, tz)?;
    if slot <= last_slot {
        return None;
    }
    Some(if now - slot > max_late {
        Due::Missed(slot)
    } else {
        Due::Fire(slot)
    })
}

/// What a scheduled trigger asks for: each action's usual run (a differential import, payments
/// and cancellations since the last run, today's shipments, SKUs whose stock changed, the
/// results of submitted feeds). Other modes are an operator's (`ctl trigger`, the console).
pub fn params(action: Action) -> CommandParams {
    match action {
        Action::OrderIngest => CommandParams::OrderIngest {
            mode: ImportMode::Differential,
        },
        Action::StatusSync => CommandParams::StatusSync {
            mode: StatusSyncMode::Changes,
        },
        Action::ShipmentFeedback => CommandParams::ShipmentFeedback {},
        Action::InventorySync => CommandParams::InventorySync { full: false },
        Action::FeedPoller => CommandParams::FeedPoll {
            feed_submission_id: None,
        },
    }
}

/// The dedupe key of a slot (`schedule/20261128T0915Z`): with the shop and the action it makes the
/// trigger's message id, so a retried tick re-sends the same command id and the run ledger
/// ignores the duplicate.
pub fn dedupe_key(slot: DateTime<Utc>) -> String {
    format!("schedule/{}", slot.format("%Y%m%dT%H%MZ"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn c(s: &str) -> Cadence {
        s.parse().unwrap()
    }

    #[test]
    fn the_defaults_are_valid_and_one_per_action_plus_end_of_day() {
        for d in DEFAULTS {
            d.cron.parse::<Cadence>().unwrap();
            entry_name(d.entry).unwrap();
        }
        for a in Action::ALL {
            assert_eq!(
                DEFAULTS
                    .iter()
                    .filter(|d| d.action == a && d.entry == DEFAULT_ENTRY)
                    .count(),
                1,
                "{a}"
            );
        }
        assert!(DEFAULTS.iter().any(|d| d.action == Action::ShipmentFeedback
            && d.entry == END_OF_DAY_ENTRY
            && d.cron == "55 23 * * *"));
    }

    #[test]
    fn bad_expressions_say_what_is_wrong_and_what_is_valid() {
        for (input, reason) in [
            ("", "it is empty"),
            ("*/15 * * *", "it has 4 field(s), not 5"),
            ("0 */15 * * * *", "it has 6 field(s), not 5"),
            ("61 * * * *", ""),
            ("every 15 minutes", ""),
            ("0 0 30 2 *", "it matches no date"),
        ] {
            let err = input.parse::<Cadence>().unwrap_err();
            assert_eq!(err.input, input);
            let problem = err.problem.to_string();
            assert!(problem.contains(reason), "{input:?}: {problem}");
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("{input:?}")) && msg.contains("\"*/15 * * * *\""),
                "{msg}"
            );
        }
        // Ranges, steps, lists and names as in the operations guide.
        for ok in [
            "0 9-18 * * 1-5",
            "0 9 * * MON-FRI",
            "0,30 8,20 * * *",
            "5-59/15 * * * *",
        ] {
            assert!(ok.parse::<Cadence>().is_ok(), "{ok}");
        }
        // Spacing is normalised; aliases are accepted.
        assert_eq!(c("  0   *  * * * ").as_str(), "0 * * * *");
        assert_eq!(
            c("@hourly").latest_at_or_before(utc("2026-11-28T10:20:00Z"), chrono_tz::UTC),
            Some(utc("2026-11-28T10:00:00Z"))
        );
    }

    #[test]
    fn entry_names() {
        assert!(entry_name("end-of-day").is_ok());
        assert!(entry_name("2nd").is_ok());
        for bad in ["", "-x", "End", "a b", "x".repeat(33).as_str()] {
            assert!(entry_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn slots_are_read_in_the_shop_time_zone() {
        let eod = c("55 23 * * *");
        // 2026-11-28 23:55 in Tokyo is 14:55 UTC.
        let now = utc("2026-11-28T15:00:00Z");
        assert_eq!(
            eod.latest_at_or_before(now, chrono_tz::Asia::Tokyo),
            Some(utc("2026-11-28T14:55:00Z"))
        );
        // In Sydney (daylight saving time in November, UTC+11) it is 12:55 UTC.
        assert_eq!(
            eod.latest_at_or_before(now, chrono_tz::Australia::Sydney),
            Some(utc("2026-11-28T12:55:00Z"))
        );
        assert_eq!(
            eod.next_after(now, chrono_tz::Asia::Tokyo),
            Some(utc("2026-11-29T14:55:00Z"))
        );
        // Inclusive: a tick exactly on the slot fires it.
        let q = c("*/15 * * * *");
        assert_eq!(
            q.latest_at_or_before(utc("2026-11-28T10:15:00Z"), chrono_tz::Asia::Tokyo),
            Some(utc("2026-11-28T10:15:00Z"))
        );
        let offset = c("5-59/15 * * * *");
        assert_eq!(
            offset.latest_at_or_before(utc("2026-11-28T10:19:30Z"), chrono_tz::Asia::Tokyo),
            Some(utc("2026-11-28T10:05:00Z"))
        );
    }

    #[test]
    fn due_fires_the_latest_slot_once_and_passes_over_old_ones() {
        let tz = chrono_tz::Asia::Tokyo;
        let q = c("*/15 * * * *");
        let now = utc("2026-11-28T10:16:00Z");
        // Due: the 10:15 slot.
        assert_eq!(
            due(&q, tz, utc("2026-11-28T10:00:00Z"), now, MAX_LATE),
            Some(Due::Fire(utc("2026-11-28T10:15:00Z")))
        );
        // Already dealt with: nothing.
        assert_eq!(
            due(&q, tz, utc("2026-11-28T10:15:00Z"), now, MAX_LATE),
            None
        );
        // Three hours without a tick: one fire, the latest slot, not twelve.
        assert_eq!(
            due(&q, tz, utc("2026-11-28T07:00:00Z"), now, MAX_LATE),
            Some(Due::Fire(utc("2026-11-28T10:15:00Z")))
        );
        // A daily slot two hours ago, the scheduler down across it: passed over.
        let eod = c("55 23 * * *");
        let late = utc("2026-11-28T16:55:00Z"); // 01:55 in Tokyo
        assert_eq!(
            due(&eod, tz, utc("2026-11-28T10:00:00Z"), late, MAX_LATE),
            Some(Due::Missed(utc("2026-11-28T14:55:00Z")))
        );
        assert_eq!(
            due(
                &eod,
                tz,
                utc("2026-11-28T10:00:00Z"),
                late,
                Duration::hours(3)
            ),
            Some(Due::Fire(utc("2026-11-28T14:55:00Z")))
        );
    }

    #[test]
    fn scheduled_triggers_ask_for_the_usual_run_of_their_action() {
        for a in Action::ALL {
            assert_eq!(params(a).action(), Some(a));
        }
    }

    #[test]
    fn dedupe_keys_name_the_slot() {
        let slot = chrono::Utc
            .with_ymd_and_hms(2026, 11, 28, 0, 15, 0)
            .single()
            .unwrap();
        assert_eq!(dedupe_key(slot), "schedule/20261128T0015Z");
    }
}

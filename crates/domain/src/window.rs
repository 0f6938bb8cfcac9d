//! Import-window planning for order-ingest (seed section 1).
//!
//! * differential (差分取得): from the previous run's watermark (minus a small overlap) to now;
//!   first run ever: one week back.
//! * range (範囲指定で取得): an explicit from/to of at most one week.
//! * hours (時間指定で取得): the last N hours, at most one week (168 hours).
//!
//! Amazon refuses a `createdBefore` closer than two minutes to now, so every window ends at
//! `now − 2 minutes` at the latest.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The longest window a range or hours import may span.
pub const MAX_WINDOW: Duration = Duration::days(7);
/// Longest `hours` value (one week).
pub const MAX_HOURS: i64 = 168;
/// Amazon's rule: `createdBefore`/`lastUpdatedBefore` at least this long before now.
pub const AMAZON_LAG: Duration = Duration::minutes(2);
/// Overlap with the previous window, so orders Amazon made visible late are not missed.
pub const OVERLAP: Duration = Duration::minutes(5);

/// How an import run chooses its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ImportMode {
    /// 差分取得
    Differential,
    /// 範囲指定で取得
    Range {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    /// 時間指定で取得
    Hours { hours: i64 },
}

impl ImportMode {
    /// `differential`, `range` or `hours`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Differential => "differential",
            Self::Range { .. } => "range",
            Self::Hours { .. } => "hours",
        }
    }
}

/// A planned window: orders created in `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Why a window was refused. Each message names the input and what would be valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error(
        "range {from} .. {to} spans {hours} hours: a range may span at most 7 days (168 hours); split it into weekly ranges"
    )]
    RangeTooLong {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        hours: i64,
    },
    #[error("range is inverted: from {from} is after to {to}; give from earlier than to")]
    Inverted {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    #[error(
        "hours = {hours} is out of range: give a whole number of hours from 1 to 168 (one week)"
    )]
    HoursOutOfRange { hours: i64 },
    #[error(
        "window {from} .. {to} is empty once its end is clamped to 2 minutes before now ({latest}); choose an earlier range"
    )]
    Empty {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        latest: DateTime<Utc>,
    },
}

/// Plans the window for a run at `now`. `watermark` is where the previous successful
/// differential run ended (Amazon's `createdBefore`), if any.
pub fn plan(
    mode: ImportMode,
    watermark: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Window, WindowError> {
    let latest = now - AMAZON_LAG;
    let (from, to) = match mode {
        ImportMode::Differential => {
            let from = match watermark {
                Some(w) => w - OVERLAP,
                None => now - MAX_WINDOW,
            };
            (from, latest)
        }
        ImportMode::Range { from, to } => {
            if from > to {
                return Err(WindowError::Inverted { from, to });
            }
            if to - from > MAX_WINDOW {
                let hours = (to - from).num_hours();
                return Err(WindowError::RangeTooLong { from, to, hours });
            }
            (from, to.min(latest))
        }
        ImportMode::Hours { hours } => {
            if !(1..=MAX_HOURS).contains(&hours) {
                return Err(WindowError::HoursOutOfRange { hours });
            }
            (now - Duration::hours(hours), latest)
        }
    };
    if from >= to {
        return Err(WindowError::Empty { from, to, latest });
    }
    Ok(Window { from, to })
}

/// Checks a trigger's mode without planning it against a watermark (for ctl and the console:
/// a rejected trigger publishes nothing).
pub fn validate(mode: ImportMode, now: DateTime<Utc>) -> Result<(), WindowError> {
    match mode {
        ImportMode::Differential => Ok(()),
        other => plan(other, None, now).map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
    }

    #[test]
    fn first_differential_run_is_one_week() {
        let w = plan(ImportMode::Differential, None, now()).unwrap();
        assert_eq!(w.from, now() - Duration::days(7));
        assert_eq!(w.to, now() - Duration::minutes(2));
    }

    #[test]
    fn differential_overlaps_previous_window() {
        let mark = now() - Duration::hours(1);
        let w = plan(ImportMode::Differential, Some(mark), now()).unwrap();
        assert_eq!(w.from, mark - OVERLAP);
        assert_eq!(w.to, now() - AMAZON_LAG);
    }

    #[test]
    fn eight_day_range_is_refused() {
        let from = now() - Duration::days(20);
        let err = plan(
            ImportMode::Range {
                from,
                to: from + Duration::days(8),
            },
            None,
            now(),
        )
        .unwrap_err();
        assert!(matches!(err, WindowError::RangeTooLong { .. }));
        assert!(err.to_string().contains("at most 7 days"), "{err}");
    }

    #[test]
    fn exactly_one_week_is_allowed() {
        let from = now() - Duration::days(20);
        let w = plan(
            ImportMode::Range {
                from,
                to: from + Duration::days(7),
            },
            None,
            now(),
        )
        .unwrap();
        assert_eq!(w.to - w.from, Duration::days(7));
    }

    #[test]
    fn inverted_range_is_refused() {
        let to = now() - Duration::days(3);
        let err = plan(
            ImportMode::Range {
                from: to + Duration::hours(1),
                to,
            },
            None,
            now(),
        )
        .unwrap_err();
        assert!(matches!(err, WindowError::Inverted { .. }));
    }

    #[test]
    fn range_end_is_clamped() {
        let from = now() - Duration::days(1);
        let w = plan(
            ImportMode::Range {
                from,
                to: now() + Duration::hours(1),
            },
            None,
            now(),
        )
        .unwrap();
        assert_eq!(w.to, now() - AMAZON_LAG);
        let err = plan(
            ImportMode::Range {
                from: now() - Duration::minutes(1),
                to: now(),
            },
            None,
            now(),
        )
        .unwrap_err();
        assert!(matches!(err, WindowError::Empty { .. }));
    }

    #[test]
    fn hours_bounds() {
        assert!(plan(ImportMode::Hours { hours: 168 }, None, now()).is_ok());
        for bad in [0, -5, 169, 200] {
            let err = plan(ImportMode::Hours { hours: bad }, None, now()).unwrap_err();
            assert_eq!(err, WindowError::HoursOutOfRange { hours: bad });
        }
        assert!(
            validate(ImportMode::Hours { hours: 200 }, now())
                .unwrap_err()
                .to_string()
                .contains("1 to 168")
        );
    }

    #[test]
    fn mode_serde() {
        let m: ImportMode = serde_json::from_str(r#"{"mode":"hours","hours":6}"#).unwrap();
        assert_eq!(m, ImportMode::Hours { hours: 6 });
        assert_eq!(
            serde_json::to_value(ImportMode::Differential).unwrap(),
            serde_json::json!({"mode":"differential"})
        );
    }

    proptest! {
        #[test]
        fn planned_windows_respect_the_rules(
            offset_min in -30_000i64..30_000,
            len_min in -20_000i64..20_000,
            hours in -10i64..400,
            mark_min in proptest::option::of(1i64..50_000),
        ) {
            let from = now() + Duration::minutes(offset_min);
            let to = from + Duration::minutes(len_min);
            let watermark = mark_min.map(|m| now() - Duration::minutes(m));
            for mode in [ImportMode::Range { from, to }, ImportMode::Hours { hours }, ImportMode::Differential] {
                if let Ok(w) = plan(mode, watermark, now()) {
                    prop_assert!(w.from < w.to);
                    prop_assert!(w.to <= now() - AMAZON_LAG);
                    if !matches!(mode, ImportMode::Differential) {
                        prop_assert!(w.to - w.from <= MAX_WINDOW);
                    }
                }
            }
            // A range longer than a week is always refused, whatever its position.
            if to - from > MAX_WINDOW {
                let refused = plan(ImportMode::Range { from, to }, None, now()).is_err();
                prop_assert!(refused);
            }
        }
    }
}

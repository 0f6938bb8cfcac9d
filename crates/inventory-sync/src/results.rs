//! Results of inventory feeds: Amazon's `JSON_LISTINGS_FEED` processing report applied to the
//! SKUs (confirmed, or failed with Amazon's issue text and an API-log entry; failed SKUs are
//! sent again by the next run).
//!
//! This is feed-poller's job; the functions are here, in one place, so feed-poller can call
//! [`apply_report`] (or fold [`poll_and_apply`] in) for submissions of type
//! `JSON_LISTINGS_FEED`. The database side is [`store::inventory::apply_listing_results`].

use spapi::reports::{self, MessageStatus, ProcessingReport};
use sqlx::{PgConnection, PgPool};
use store::feeds as feeds_store;
use store::inventory::{self, AppliedResults, MessageOutcome};
use uuid::Uuid;

/// Errors while applying results.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Api(#[from] spapi::Error),
    #[error("feed submission {0} has no Amazon feed id (never submitted)")]
    NotSubmitted(Uuid),
    #[error("processing report: {0}")]
    Report(String),
}

/// Where a submission stands after [`poll_and_apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollOutcome {
    /// Amazon is still processing (`IN_QUEUE`, `IN_PROGRESS`).
    Pending(String),
    /// DONE: the report was applied.
    Applied(AppliedResults),
    /// FATAL or CANCELLED: every SKU of the feed failed (sent by the next run).
    NotProcessed(String),
}

/// Turns a parsed report into one outcome per sent message.
pub fn outcomes(
    report: &ProcessingReport,
    sent: impl IntoIterator<Item = u64>,
) -> Vec<MessageOutcome> {
    report
        .message_results(sent)
        .into_iter()
        .map(|r| {
            let text = if r.issues.is_empty() {
                None
            } else {
                Some(
                    r.issues
                        .iter()
                        .filter(|i| {
                            i.severity != reports::Severity::Info
                                || r.status == MessageStatus::Success
                        })
                        .map(|i| i.message.as_str())
                        .collect::<Vec<_>>()
                        .join(" / "),
                )
            };
            MessageOutcome {
                message_id: i64::try_from(r.message_id).unwrap_or(i64::MAX),
                result: r.status.as_str(),
                code: r.code().map(str::to_owned),
                message: text,
            }
        })
        .collect()
}

/// Applies the text of a `JSON_LISTINGS_FEED` processing report to its submission's SKUs
/// (API-log entries under `action`). Does not change the submission's state.
pub async fn apply_report(
    conn: &mut PgConnection,
    submission_id: Uuid,
    report_text: &str,
    action: &str,
) -> Result<AppliedResults, ResultsError> {
    let report = reports::parse_processing_report(report_text)
        .map_err(|e| ResultsError::Report(e.to_string()))?;
    let sent: Vec<u64> = feeds_store::messages(&mut *conn, submission_id)
        .await?
        .iter()
        .filter_map(|m| u64::try_from(m.message_id).ok())
        .collect();
    let outcomes = outcomes(&report, sent);
    Ok(inventory::apply_listing_results(conn, submission_id, &outcomes, action).await?)
}

/// Polls one submitted inventory feed and, when Amazon is done, downloads and applies its
/// report and closes the submission (`done`, `fatal`, `cancelled`).
pub async fn poll_and_apply(
    pool: &PgPool,
    api: &spapi::Shop,
    submission_id: Uuid,
    action: &str,
) -> Result<PollOutcome, ResultsError> {
    let sub = {
        let mut conn = pool.acquire().await?;
        feeds_store::get(&mut conn, submission_id).await?
    };
    let feed_id = sub
        .amazon_feed_id
        .clone()
        .ok_or(ResultsError::NotSubmitted(submission_id))?;
    let feed = api.get_feed(&feed_id).await?;
    let status = feed.processing_status.as_str().to_owned();
    if !feed.processing_status.is_terminal() {
        return Ok(PollOutcome::Pending(status));
    }
    match (feed.processing_status, feed.result_feed_document_id) {
        (spapi::feeds::ProcessingStatus::Done, Some(doc_id)) => {
            let doc = api.get_feed_document(&doc_id).await?;
            let text = api.download_document(&doc).await?.text().text;
            let mut tx = pool.begin().await?;
            let applied = apply_report(&mut tx, submission_id, &text, action).await?;
            feeds_store::finish(
                &mut tx,
                submission_id,
                feeds_store::state::DONE,
                &status,
                Some(&doc_id),
                None,
            )
            .await?;
            tx.commit().await?;
            Ok(PollOutcome::Applied(applied))
        }
        (s, doc) => {
            let state = if s == spapi::feeds::ProcessingStatus::Cancelled {
                feeds_store::state::CANCELLED
            } else {
                feeds_store::state::FATAL
            };
            let why = format!(
                "Amazon did not process feed {feed_id} ({status}): the SKUs are sent again"
            );
            let mut tx = pool.begin().await?;
            inventory::mark_skus_not_sent(&mut tx, submission_id, &why).await?;
            feeds_store::finish(
                &mut tx,
                submission_id,
                state,
                &status,
                doc.as_deref(),
                Some(&why),
            )
            .await?;
            tx.commit().await?;
            Ok(PollOutcome::NotProcessed(status))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_issues_become_one_outcome_per_sent_message() {
        let report = reports::parse_processing_report(
            r#"{"header":{"sellerId":"A1","version":"2.0","feedId":"1"},
                "issues":[
                  {"messageId":2,"sku":"SKU-2","code":"4000003","severity":"ERROR","message":"The SKU 'SKU-2' was not found for this seller."},
                  {"messageId":3,"sku":"SKU-3","code":"90000","severity":"WARNING","message":"quantity is high"},
                  {"messageId":3,"sku":"SKU-3","code":"1","severity":"INFO","message":"fyi"}
                ],
                "summary":{"errors":1,"warnings":1,"messagesProcessed":3,"messagesAccepted":2,"messagesInvalid":1}}"#,
        )
        .unwrap();
        let o = outcomes(&report, [1, 2, 3]);
        assert_eq!(o.len(), 3);
        assert_eq!(
            (o[0].message_id, o[0].result, o[0].message.as_deref()),
            (1, "success", None)
        );
        assert_eq!(
            (o[1].result, o[1].code.as_deref()),
            ("error", Some("4000003"))
        );
        assert!(o[1].message.as_deref().unwrap().contains("SKU-2"));
        assert_eq!(o[2].result, "warning");
        assert_eq!(o[2].message.as_deref(), Some("quantity is high"));
    }

    #[test]
    fn a_feed_level_error_fails_every_message() {
        let report = reports::parse_processing_report(
            r#"{"header":{"sellerId":"A1","version":"2.0","feedId":"1"},
                "issues":[{"code":"100","severity":"ERROR","message":"The feed header is missing."}],
                "summary":{"errors":1,"warnings":0,"messagesProcessed":0,"messagesAccepted":0,"messagesInvalid":0}}"#,
        )
        .unwrap();
        let o = outcomes(&report, [1, 2]);
        assert!(o.iter().all(|m| m.result == "error"));
    }
}

//! Step 1: submissions whose `createFeed` outcome was never recorded (a crash, or an unknown
//! outcome between Amazon accepting the feed and our commit) are resolved with `getFeeds`
//! before anything could be sent twice.

use job_api::JobError;
use store::api_log::{self, Entry, Level};
use store::feeds as feeds_store;

use crate::job::{Feedback, Run};
use crate::{ACTION, FEED_TYPE, RunReport};

impl Feedback {
    /// Resolves submissions whose `createFeed` outcome was not recorded. Returns true when one
    /// could not be resolved (the run must not send anything now).
    pub(crate) async fn reconcile(
        &self,
        run: &Run<'_>,
        api: &spapi::Shop,
        report: &mut RunReport,
    ) -> Result<bool, JobError> {
        let shop = &run.shop.shop;
        let mut conn = self.deps.pool.acquire().await?;
        let open = feeds_store::unresolved(&mut conn, shop.id, FEED_TYPE).await?;
        for sub in open {
            if sub.state == feeds_store::state::PENDING {
                // createFeed was never called (the state moves to in_flight before it).
                feeds_store::mark_not_sent(
                    &mut conn,
                    sub.id,
                    "interrupted before createFeed: nothing was sent",
                )
                .await?;
                report.released += 1;
                continue;
            }
            let since = sub.in_flight_at.unwrap_or(sub.created_at) - self.settings.reconcile_skew;
            let known = feeds_store::known_amazon_ids(
                &mut conn,
                shop.id,
                since - chrono::Duration::days(1),
            )
            .await?;
            let mut candidates = Vec::new();
            let mut params = spapi::feeds::GetFeedsParams {
                feed_types: vec![FEED_TYPE.to_owned()],
                marketplace_ids: sub.marketplace_ids.clone(),
                page_size: Some(100),
                created_since: Some(since),
                ..Default::default()
            };
            loop {
                let page = api
                    .get_feeds(&params)
                    .await
                    .map_err(|e| JobError::api("getFeeds (reconciliation)", e))?;
                candidates.extend(
                    page.feeds
                        .into_iter()
                        .filter(|f| !known.contains(&f.feed_id)),
                );
                match page.next_token {
                    Some(t) => {
                        params = spapi::feeds::GetFeedsParams {
                            next_token: Some(t),
                            ..Default::default()
                        }
                    }
                    None => break,
                }
            }
            candidates.sort_by_key(|f| f.created_time);
            match candidates.len() {
                0 => {
                    feeds_store::mark_not_sent(
                        &mut conn,
                        sub.id,
                        "Amazon has no feed for this submission (getFeeds): not accepted, its shipments are sent again",
                    )
                    .await?;
                    api_log::write(
                        &mut conn,
                        &Entry {
                            run_id: Some(run.run_id),
                            details: Some(serde_json::json!({"feed_submission_id": sub.id})),
                            code: Some("feed_not_found"),
                            ..Entry::new(
                                Some(shop.id),
                                ACTION,
                                Level::Warning,
                                "an interrupted feed submission never reached Amazon; its shipments will be sent again",
                            )
                        },
                    )
                    .await?;
                    report.released += 1;
                }
                1 => {
                    let feed_id = candidates.remove(0).feed_id;
                    let mut tx = self.deps.pool.begin().await?;
                    self.record_accepted(&mut tx, run, sub.id, &feed_id, true)
                        .await?;
                    tx.commit().await?;
                    report.reconciled += 1;
                    report.feed_submission_ids.push(sub.id);
                }
                n => {
                    api_log::write(
                        &mut conn,
                        &Entry {
                            run_id: Some(run.run_id),
                            code: Some("feed_ambiguous"),
                            details: Some(serde_json::json!({
                                "feed_submission_id": sub.id,
                                "candidates": candidates.iter().map(|f| &f.feed_id).collect::<Vec<_>>(),
                            })),
                            ..Entry::new(
                                Some(shop.id),
                                ACTION,
                                Level::Attention,
                                &format!(
                                    "an interrupted feed submission matches {n} unknown feeds at Amazon; nothing is sent until an operator resolves it"
                                ),
                            )
                        },
                    )
                    .await?;
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

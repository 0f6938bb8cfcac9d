//! Feeds API 2021-06-30.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Duration;
use serde_json::{Value, json};

use super::http::{ApiError, Query, base_url, call, json_response, parse_json_body, parse_time};
use crate::model::fmt_time_ms;
use crate::ops::{LISTINGS_FEED_PLAN, Op};
use crate::records::{Document, Feed, FeedStatus, Presigned, PresignedMethod, ms};
use crate::sim::{Sim, tick};
use crate::state::{PageCursor, State as SimState};

/// Presigned URLs live five minutes.
const URL_LIFETIME_SECS: i64 = 300;

/// Creates a presigned URL for a document.
pub(crate) fn presign(
    st: &mut SimState,
    base: &str,
    document_id: &str,
    method: PresignedMethod,
    content_encoding_gzip: bool,
) -> String {
    let signature = st.random_token(64).to_lowercase();
    let now = st.now();
    st.presigned.insert(
        signature.clone(),
        Presigned {
            document_id: document_id.to_string(),
            method,
            expires_at: now + Duration::seconds(URL_LIFETIME_SECS),
            content_encoding_gzip,
        },
    );
    let mut url = format!(
        "{base}/s3/tortuga/{document_id}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={}&X-Amz-Expires={URL_LIFETIME_SECS}&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}",
        now.format("%Y%m%dT%H%M%SZ")
    );
    if content_encoding_gzip {
        url.push_str("&response-content-encoding=gzip");
    }
    url
}

pub(crate) fn render_feed(f: &Feed) -> Value {
    let mut v = json!({
        "feedId": f.feed_id,
        "feedType": f.feed_type,
        "marketplaceIds": f.marketplace_ids,
        "createdTime": fmt_time_ms(f.created_time),
        "processingStatus": f.status.as_str(),
    });
    if let Some(t) = f.processing_start_time {
        v["processingStartTime"] = json!(fmt_time_ms(t));
    }
    if let Some(t) = f.processing_end_time {
        v["processingEndTime"] = json!(fmt_time_ms(t));
    }
    if let Some(d) = &f.result_document_id {
        v["resultFeedDocumentId"] = json!(d);
    }
    v
}

fn invalid_input(details: &str) -> ApiError {
    ApiError::invalid("Invalid input").with_details(details)
}

/// `POST /feeds/2021-06-30/documents`
pub(crate) async fn create_feed_document(
    State(sim): State<Sim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let sim2 = sim.clone();
    let base = base_url(&sim, &headers);
    call(
        &sim,
        Op::CreateFeedDocument,
        &headers,
        |_, caller| async move {
            let v = parse_json_body(&body)?;
            let content_type = v
                .get("contentType")
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| invalid_input("contentType is required."))?;
            let mut st = sim2.lock();
            let id = st.new_document_id();
            st.documents.insert(
                id.clone(),
                Document {
                    seller_id: caller.seller_id,
                    content_type: content_type.to_string(),
                    content: None,
                    gzip: false,
                },
            );
            let url = presign(&mut st, &base, &id, PresignedMethod::Put, false);
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"feedDocumentId": id, "url": url}),
            ))
        },
    )
    .await
}

/// `POST /feeds/2021-06-30/feeds`
pub(crate) async fn create_feed(
    State(sim): State<Sim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    call(&sim, Op::CreateFeed, &headers, |sim2, caller| async move {
        let v = parse_json_body(&body)?;
        let feed_type = v
            .get("feedType")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid_input("feedType is required."))?
            .to_string();
        let marketplace_ids: Vec<String> = match v.get("marketplaceIds") {
            Some(Value::Array(a)) if (1..=25).contains(&a.len()) => a
                .iter()
                .map(|m| m.as_str().filter(|s| !s.is_empty()).map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid_input("marketplaceIds must be strings."))?,
            _ => {
                return Err(invalid_input(
                    "marketplaceIds must contain 1 to 25 marketplace ids.",
                ));
            }
        };
        let input_id = v
            .get("inputFeedDocumentId")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid_input("inputFeedDocumentId is required."))?
            .to_string();
        let mut feed_options = BTreeMap::new();
        match v.get("feedOptions") {
            None | Some(Value::Null) => {}
            Some(Value::Object(o)) => {
                for (k, val) in o {
                    let s = val
                        .as_str()
                        .ok_or_else(|| invalid_input("feedOptions values must be strings."))?;
                    feed_options.insert(k.clone(), s.to_string());
                }
            }
            Some(_) => return Err(invalid_input("feedOptions must be an object.")),
        }
        let mut st = sim2.lock();
        if st
            .documents
            .get(&input_id)
            .is_none_or(|d| d.seller_id != caller.seller_id)
        {
            return Err(invalid_input(
                "inputFeedDocumentId does not refer to a feed document of this seller.",
            ));
        }
        if feed_type == "JSON_LISTINGS_FEED"
            && !st.take_token(
                &caller.seller_id,
                "createFeed:JSON_LISTINGS_FEED",
                LISTINGS_FEED_PLAN,
            )
        {
            return Err(ApiError::quota_exceeded());
        }
        st.next_feed_id += 1;
        let feed_id = st.next_feed_id.to_string();
        let now = st.now();
        let withhold_report = st.options.withhold_reports;
        st.feeds.insert(
            feed_id.clone(),
            Feed {
                feed_id: feed_id.clone(),
                seller_id: caller.seller_id,
                feed_type,
                marketplace_ids,
                created_time: ms(now),
                created_instant: now,
                status: FeedStatus::InQueue,
                processing_start_time: None,
                processing_end_time: None,
                input_document_id: input_id,
                result_document_id: None,
                withhold_report,
                feed_options,
            },
        );
        if st.options.feed_processing_ms == 0 {
            tick(&mut st);
        }
        Ok(json_response(
            StatusCode::ACCEPTED,
            &json!({"feedId": feed_id}),
        ))
    })
    .await
}

fn check_feed_id(feed_id: &str) -> Result<(), ApiError> {
    if feed_id.is_empty() || !feed_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid_input("Invalid feedId."));
    }
    Ok(())
}

/// `GET /feeds/2021-06-30/feeds/{feedId}`
pub(crate) async fn get_feed(
    State(sim): State<Sim>,
    headers: HeaderMap,
    Path(feed_id): Path<String>,
) -> Response {
    call(&sim, Op::GetFeed, &headers, |sim2, caller| async move {
        check_feed_id(&feed_id)?;
        let mut st = sim2.lock();
        let feed = st
            .feeds
            .get_mut(&feed_id)
            .filter(|f| f.seller_id == caller.seller_id)
            .ok_or_else(|| ApiError::not_found(format!("Feed {feed_id} was not found.")))?;
        let mut v = render_feed(feed);
        if feed.status == FeedStatus::Done && feed.withhold_report > 0 {
            feed.withhold_report -= 1;
            if let Some(o) = v.as_object_mut() {
                o.remove("resultFeedDocumentId");
            }
        }
        Ok(json_response(StatusCode::OK, &v))
    })
    .await
}

/// `DELETE /feeds/2021-06-30/feeds/{feedId}`
pub(crate) async fn cancel_feed(
    State(sim): State<Sim>,
    headers: HeaderMap,
    Path(feed_id): Path<String>,
) -> Response {
    call(&sim, Op::CancelFeed, &headers, |sim2, caller| async move {
        check_feed_id(&feed_id)?;
        let mut st = sim2.lock();
        let now = st.now();
        let feed = st
            .feeds
            .get_mut(&feed_id)
            .filter(|f| f.seller_id == caller.seller_id)
            .ok_or_else(|| ApiError::not_found(format!("Feed {feed_id} was not found.")))?;
        if feed.status != FeedStatus::InQueue {
            return Err(invalid_input(&format!(
                "Feed {feed_id} cannot be cancelled: its processingStatus is {}. Only IN_QUEUE feeds can be cancelled.",
                feed.status.as_str()
            )));
        }
        feed.status = FeedStatus::Cancelled;
        feed.processing_end_time = Some(ms(now));
        st.notify_feed_finished(&feed_id);
        let mut resp = Response::new(axum::body::Body::empty());
        *resp.status_mut() = StatusCode::OK;
        Ok(resp)
    })
    .await
}

const STATUSES: [&str; 5] = ["CANCELLED", "DONE", "FATAL", "IN_PROGRESS", "IN_QUEUE"];

/// `GET /feeds/2021-06-30/feeds`
pub(crate) async fn get_feeds(
    State(sim): State<Sim>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    call(&sim, Op::GetFeeds, &headers, |sim2, caller| async move {
        let q = Query::parse(raw.as_deref());
        let mut st = sim2.lock();
        let now = st.now();
        let page_size = match q.one("pageSize") {
            None => 10,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=100).contains(&n) => n,
                _ => {
                    return Err(invalid_input(
                        "pageSize must be an integer between 1 and 100.",
                    ));
                }
            },
        };
        let ids: Vec<String> = if let Some(token) = q.one("nextToken") {
            if q.names()
                .iter()
                .any(|n| *n != "nextToken" && *n != "pageSize")
            {
                return Err(invalid_input("nextToken must be the only parameter."));
            }
            let cursor = st
                .page_tokens
                .get(token)
                .filter(|c| {
                    c.seller_id == caller.seller_id
                        && c.fingerprint == "getFeeds"
                        && c.expires_at > now
                })
                .cloned()
                .ok_or_else(|| invalid_input("Invalid nextToken."))?;
            cursor.remaining
        } else {
            let types = q.list("feedTypes");
            if types.is_empty() {
                return Err(invalid_input("Either feedTypes or nextToken is required."));
            }
            if types.len() > 10 {
                return Err(invalid_input("feedTypes may contain at most 10 values."));
            }
            let markets = q.list("marketplaceIds");
            if markets.len() > 10 {
                return Err(invalid_input(
                    "marketplaceIds may contain at most 10 values.",
                ));
            }
            let statuses = q.list("processingStatuses");
            if let Some(bad) = statuses.iter().find(|s| !STATUSES.contains(&s.as_str())) {
                return Err(invalid_input(&format!(
                    "Invalid processingStatuses value '{bad}'."
                )));
            }
            let since = match q.one("createdSince") {
                Some(s) => parse_time("createdSince", s)?,
                None => now - Duration::days(90),
            };
            if since < now - Duration::days(90) - Duration::minutes(5) {
                return Err(invalid_input(
                    "createdSince must be within the last 90 days.",
                ));
            }
            let until = match q.one("createdUntil") {
                Some(s) => parse_time("createdUntil", s)?,
                None => now,
            };
            if until < since {
                return Err(invalid_input("createdUntil must be after createdSince."));
            }
            let mut feeds: Vec<&Feed> = st
                .feeds
                .values()
                .filter(|f| f.seller_id == caller.seller_id)
                .filter(|f| types.contains(&f.feed_type))
                .filter(|f| {
                    markets.is_empty() || f.marketplace_ids.iter().any(|m| markets.contains(m))
                })
                .filter(|f| statuses.is_empty() || statuses.iter().any(|s| s == f.status.as_str()))
                .filter(|f| f.created_time >= since && f.created_time <= until)
                .collect();
            feeds.sort_by(|a, b| {
                b.created_instant
                    .cmp(&a.created_instant)
                    .then_with(|| b.feed_id.cmp(&a.feed_id))
            });
            feeds.iter().map(|f| f.feed_id.clone()).collect()
        };
        let (page, rest) = ids.split_at(page_size.min(ids.len()));
        let feeds: Vec<Value> = page
            .iter()
            .filter_map(|id| st.feeds.get(id))
            .map(render_feed)
            .collect();
        let mut body = json!({"feeds": feeds});
        if !rest.is_empty() {
            let token = st.random_token(64);
            st.page_tokens.insert(
                token.clone(),
                PageCursor {
                    seller_id: caller.seller_id.clone(),
                    fingerprint: "getFeeds".into(),
                    remaining: rest.to_vec(),
                    expires_at: now + Duration::hours(24),
                    before: now,
                },
            );
            body["nextToken"] = json!(token);
        }
        Ok(json_response(StatusCode::OK, &body))
    })
    .await
}

/// `GET /feeds/2021-06-30/documents/{feedDocumentId}`
pub(crate) async fn get_feed_document(
    State(sim): State<Sim>,
    headers: HeaderMap,
    Path(document_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let sim2 = sim.clone();
    let base = base_url(&sim, &headers);
    call(
        &sim,
        Op::GetFeedDocument,
        &headers,
        |_, caller| async move {
            let q = Query::parse(raw.as_deref());
            let encoding_header = match q.one("enableContentEncodingUrlHeader") {
                None | Some("false") => false,
                Some("true") => true,
                Some(_) => {
                    return Err(invalid_input(
                        "enableContentEncodingUrlHeader must be true or false.",
                    ));
                }
            };
            if !document_id.starts_with("amzn1.tortuga.") {
                return Err(invalid_input("Invalid feedDocumentId."));
            }
            let mut st = sim2.lock();
            let gzip = st
                .documents
                .get(&document_id)
                .filter(|d| d.seller_id == caller.seller_id)
                .map(|d| d.gzip)
                .ok_or_else(|| {
                    ApiError::not_found(format!("Feed document {document_id} was not found."))
                })?;
            let url = presign(
                &mut st,
                &base,
                &document_id,
                PresignedMethod::Get,
                gzip && encoding_header,
            );
            let mut body = json!({"feedDocumentId": document_id, "url": url});
            if gzip {
                body["compressionAlgorithm"] = json!("GZIP");
            }
            Ok(json_response(StatusCode::OK, &body))
        },
    )
    .await
}

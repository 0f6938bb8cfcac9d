//! Feeds: documents, feed lifecycle and processing.

use chrono::Duration;

use crate::model::MARKETPLACE_JP;
use crate::records::{Document, ms};
use crate::state::{GzipPolicy, State};

pub use crate::records::{FeedInfo, FeedStatus};

pub(crate) mod acknowledgement;
pub mod fulfillment;
pub(crate) mod listings;
pub(crate) mod xml;

/// Feed types Amazon removed on 2025-07-31: submitting one ends FATAL.
pub const REMOVED_FEED_TYPES: [&str; 11] = [
    "POST_INVENTORY_AVAILABILITY_DATA",
    "POST_FLAT_FILE_INVLOADER_DATA",
    "POST_FLAT_FILE_PRICEANDQUANTITYONLY_UPDATE_DATA",
    "POST_PRODUCT_DATA",
    "POST_PRODUCT_PRICING_DATA",
    "POST_PRODUCT_OVERRIDES_DATA",
    "POST_PRODUCT_IMAGE_DATA",
    "POST_PRODUCT_RELATIONSHIP_DATA",
    "POST_FLAT_FILE_LISTINGS_DATA",
    "POST_FLAT_FILE_BOOKLOADER_DATA",
    "POST_FLAT_FILE_CONVERGENCE_LISTINGS_DATA",
];

/// Moves feeds along IN_QUEUE → IN_PROGRESS → DONE/FATAL as simulated time passes, processing
/// each feed whose time is up.
pub(crate) fn advance(st: &mut State) {
    let now = st.now();
    let processing = Duration::milliseconds(st.options.feed_processing_ms as i64);
    let due: Vec<String> = st
        .feeds
        .values()
        .filter(|f| matches!(f.status, FeedStatus::InQueue | FeedStatus::InProgress))
        .map(|f| f.feed_id.clone())
        .collect();
    for id in due {
        let Some(feed) = st.feeds.get(&id) else {
            continue;
        };
        let created = feed.created_instant;
        if feed.status == FeedStatus::InQueue
            && now >= created + processing / 3
            && let Some(f) = st.feeds.get_mut(&id)
        {
            f.status = FeedStatus::InProgress;
            f.processing_start_time = Some(ms(now));
        }
        if now >= created + processing {
            process_feed(st, &id);
        }
    }
}

/// Applies a feed whose processing time has elapsed and writes its result document.
pub(crate) fn process_feed(st: &mut State, feed_id: &str) {
    let Some(feed) = st.feeds.get(feed_id).cloned() else {
        return;
    };
    if !matches!(feed.status, FeedStatus::InQueue | FeedStatus::InProgress) {
        return;
    }
    let now = st.now();
    let input = st
        .documents
        .get(&feed.input_document_id)
        .and_then(|d| d.content.clone());
    let jp = feed.marketplace_ids.iter().any(|m| m == MARKETPLACE_JP);
    let text_plain = "text/plain; charset=UTF-8".to_string();
    let (status, content, content_type) = if REMOVED_FEED_TYPES.contains(&feed.feed_type.as_str()) {
        (
            FeedStatus::Fatal,
            format!(
                "Feed type {} is no longer supported: it was removed on 2025-07-31. Use JSON_LISTINGS_FEED or the Listings Items API.",
                feed.feed_type
            )
            .into_bytes(),
            text_plain,
        )
    } else {
        match (feed.feed_type.as_str(), input) {
            (_, None) => (
                FeedStatus::Fatal,
                b"The input feed document was never uploaded.".to_vec(),
                text_plain,
            ),
            ("POST_ORDER_FULFILLMENT_DATA", Some(bytes)) => {
                let out = fulfillment::process(st, &feed.seller_id, feed_id, &bytes);
                if jp && st.options.shift_jis_reports_for_jp {
                    let text = fulfillment::render_report(
                        &out,
                        &feed.seller_id,
                        feed_id,
                        true,
                        "Shift_JIS",
                    );
                    let (encoded, _, _) = encoding_rs::SHIFT_JIS.encode(&text);
                    (
                        FeedStatus::Done,
                        encoded.into_owned(),
                        "text/xml; charset=Shift_JIS".to_string(),
                    )
                } else {
                    let text =
                        fulfillment::render_report(&out, &feed.seller_id, feed_id, false, "UTF-8");
                    (
                        FeedStatus::Done,
                        text.into_bytes(),
                        "text/xml; charset=UTF-8".to_string(),
                    )
                }
            }
            ("POST_ORDER_ACKNOWLEDGEMENT_DATA", Some(bytes)) => {
                let out = acknowledgement::process(st, &feed.seller_id, &bytes);
                let text =
                    fulfillment::render_report(&out, &feed.seller_id, feed_id, false, "UTF-8");
                (
                    FeedStatus::Done,
                    text.into_bytes(),
                    "text/xml; charset=UTF-8".to_string(),
                )
            }
            ("JSON_LISTINGS_FEED", Some(bytes)) => {
                let out = listings::process(st, &feed.seller_id, feed_id, &bytes);
                (
                    if out.fatal {
                        FeedStatus::Fatal
                    } else {
                        FeedStatus::Done
                    },
                    serde_json::to_vec_pretty(&out.report).unwrap_or_default(),
                    "application/json; charset=UTF-8".to_string(),
                )
            }
            (other, Some(_)) => (
                FeedStatus::Fatal,
                format!("Feed type {other} is not supported by the simulator.").into_bytes(),
                text_plain,
            ),
        }
    };
    let gzip = match st.options.gzip_results {
        GzipPolicy::Never => false,
        GzipPolicy::Always => true,
        GzipPolicy::JapanOnly => jp,
    };
    let doc_id = st.new_document_id();
    st.documents.insert(
        doc_id.clone(),
        Document {
            seller_id: feed.seller_id.clone(),
            content_type,
            content: Some(content),
            gzip,
        },
    );
    if let Some(f) = st.feeds.get_mut(feed_id) {
        f.status = status;
        let t = ms(now);
        if f.processing_start_time.is_none() {
            f.processing_start_time = Some(t);
        }
        f.processing_end_time = Some(t);
        f.result_document_id = Some(doc_id);
    }
    st.notify_feed_finished(feed_id);
    tracing::debug!(feed_id, status = status.as_str(), "feed processed");
}

//! Feeds: documents, feed lifecycle and processing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::state::State;

pub mod fulfillment;
pub(crate) mod listings;
pub(crate) mod xml;

/// Feed `processingStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FeedStatus {
    InQueue,
    InProgress,
    Done,
    Cancelled,
    Fatal,
}

impl FeedStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedStatus::InQueue => "IN_QUEUE",
            FeedStatus::InProgress => "IN_PROGRESS",
            FeedStatus::Done => "DONE",
            FeedStatus::Cancelled => "CANCELLED",
            FeedStatus::Fatal => "FATAL",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Feed {
    pub feed_id: String,
    pub seller_id: String,
    pub feed_type: String,
    pub marketplace_ids: Vec<String>,
    pub created_time: DateTime<Utc>,
    /// Exact creation instant (created_time is truncated to milliseconds).
    pub created_instant: DateTime<Utc>,
    pub status: FeedStatus,
    pub processing_start_time: Option<DateTime<Utc>>,
    pub processing_end_time: Option<DateTime<Utc>>,
    pub input_document_id: String,
    pub result_document_id: Option<String>,
    pub feed_options: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Document {
    pub seller_id: String,
    pub content_type: String,
    /// Stored uncompressed.
    pub content: Option<Vec<u8>>,
    pub gzip: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PresignedMethod {
    Put,
    Get,
}

#[derive(Debug, Clone)]
pub(crate) struct Presigned {
    pub document_id: String,
    pub method: PresignedMethod,
    pub expires_at: DateTime<Utc>,
    /// Serve `Content-Encoding: gzip` (enableContentEncodingUrlHeader).
    pub content_encoding_gzip: bool,
}

/// A feed as the control API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FeedInfo {
    pub feed_id: String,
    pub seller_id: String,
    pub feed_type: String,
    pub marketplace_ids: Vec<String>,
    pub processing_status: FeedStatus,
    pub created_time: DateTime<Utc>,
    pub processing_end_time: Option<DateTime<Utc>>,
    pub input_document_id: String,
    pub result_document_id: Option<String>,
    pub feed_options: BTreeMap<String, String>,
    /// Input document as text (lossy UTF-8).
    pub input: Option<String>,
    /// Result document as text, decoded from its charset, uncompressed.
    pub result: Option<String>,
    pub result_content_type: Option<String>,
}

impl Feed {
    pub(crate) fn info(&self, st: &State) -> FeedInfo {
        let input = st
            .documents
            .get(&self.input_document_id)
            .and_then(|d| d.content.as_ref())
            .map(|c| String::from_utf8_lossy(c).into_owned());
        let result_doc = self
            .result_document_id
            .as_ref()
            .and_then(|id| st.documents.get(id));
        let result = result_doc.and_then(|d| {
            d.content.as_ref().map(|c| {
                if d.content_type.to_ascii_lowercase().contains("shift_jis") {
                    encoding_rs::SHIFT_JIS.decode(c).0.into_owned()
                } else {
                    String::from_utf8_lossy(c).into_owned()
                }
            })
        });
        FeedInfo {
            feed_id: self.feed_id.clone(),
            seller_id: self.seller_id.clone(),
            feed_type: self.feed_type.clone(),
            marketplace_ids: self.marketplace_ids.clone(),
            processing_status: self.status,
            created_time: self.created_time,
            processing_end_time: self.processing_end_time,
            input_document_id: self.input_document_id.clone(),
            result_document_id: self.result_document_id.clone(),
            feed_options: self.feed_options.clone(),
            input,
            result,
            result_content_type: result_doc.map(|d| d.content_type.clone()),
        }
    }
}

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

/// A new feed document id in Amazon's style.
pub(crate) fn new_document_id(st: &mut State) -> String {
    let hex: String = {
        let t = st.random_token(32).to_lowercase();
        t.chars()
            .map(|c| {
                if c.is_ascii_hexdigit() {
                    c
                } else {
                    char::from(b'a' + (c as u8 % 6))
                }
            })
            .collect()
    };
    format!(
        "amzn1.tortuga.4.fe.{}-{}-{}-{}-{}.T{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32],
        st.random_token(12).to_uppercase()
    )
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
    let jp = feed
        .marketplace_ids
        .iter()
        .any(|m| m == crate::model::MARKETPLACE_JP);
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
        crate::state::GzipPolicy::Never => false,
        crate::state::GzipPolicy::Always => true,
        crate::state::GzipPolicy::JapanOnly => jp,
    };
    let doc_id = new_document_id(st);
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
    tracing::debug!(feed_id, status = status.as_str(), "feed processed");
}

/// Truncates to milliseconds (Amazon's feed timestamps carry milliseconds).
pub(crate) fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

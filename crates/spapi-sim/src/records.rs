//! Feed and document records as the simulator stores them, and the feed view the control
//! API shows. Plain data: the state holds these, feed processing and the API handlers use them.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
    /// `getFeed` answers DONE without `resultFeedDocumentId` this many more times (a control:
    /// Amazon sometimes reports a feed DONE before its report is available).
    pub withhold_report: u32,
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
    /// The feed with its documents (looked up in `documents`) as the control API shows it.
    pub(crate) fn info(&self, documents: &HashMap<String, Document>) -> FeedInfo {
        let input = documents
            .get(&self.input_document_id)
            .and_then(|d| d.content.as_ref())
            .map(|c| String::from_utf8_lossy(c).into_owned());
        let result_doc = self
            .result_document_id
            .as_ref()
            .and_then(|id| documents.get(id));
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

/// Truncates to milliseconds (Amazon's feed timestamps carry milliseconds).
pub(crate) fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

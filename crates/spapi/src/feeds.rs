//! Feeds API 2021-06-30: documents, feeds, results.
//!
//! The flow: [`Shop::create_feed_document`] → [`Shop::upload_feed_document`] (PUT to the
//! presigned URL with the same content type) → record the intent → [`Shop::create_feed`] →
//! poll [`Shop::get_feed`] (or FEED_PROCESSING_FINISHED) → [`Shop::get_feed_document`] →
//! [`Shop::download_document`] → [`crate::reports::parse_processing_report`].

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::{ApiRequest, Expect, Shop, json, segment};
pub use crate::documents::CompressionAlgorithm;
use crate::documents::{self, Document};
use crate::error::{Error, Result};
use crate::operation::Operation;
use crate::types::string_enum;

/// Feed type of shipment confirmations (XML).
pub const POST_ORDER_FULFILLMENT_DATA: &str = "POST_ORDER_FULFILLMENT_DATA";
/// Feed type of JSON listings (inventory) updates.
pub const JSON_LISTINGS_FEED: &str = "JSON_LISTINGS_FEED";
/// Content type of XML feeds.
pub const XML_CONTENT_TYPE: &str = "text/xml; charset=UTF-8";
/// Content type of JSON feeds.
pub const JSON_CONTENT_TYPE: &str = "application/json; charset=UTF-8";

string_enum! {
    /// `processingStatus` of a feed.
    pub enum ProcessingStatus {
        /// Cancelled before processing.
        Cancelled = "CANCELLED",
        /// Processed (see the result document).
        Done = "DONE",
        /// Aborted (e.g. a removed feed type); a result document may explain.
        Fatal = "FATAL",
        /// Being processed.
        InProgress = "IN_PROGRESS",
        /// Waiting to be processed.
        InQueue = "IN_QUEUE",
    }
}

impl ProcessingStatus {
    /// DONE, FATAL or CANCELLED: polling can stop.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Done | Self::Fatal | Self::Cancelled)
    }
}

/// `CreateFeedDocumentSpecification`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateFeedDocumentSpecification {
    /// Content type the document will be uploaded with.
    pub content_type: String,
}

/// `CreateFeedDocumentResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateFeedDocumentResponse {
    /// Document id (valid two days), passed to `createFeed`.
    pub feed_document_id: String,
    /// Presigned upload URL (valid five minutes). Treat as a secret: never log it.
    pub url: String,
}

/// `CreateFeedSpecification`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateFeedSpecification {
    /// Feed type, e.g. [`POST_ORDER_FULFILLMENT_DATA`].
    pub feed_type: String,
    /// Marketplaces (1–25).
    pub marketplace_ids: Vec<String>,
    /// The uploaded document.
    pub input_feed_document_id: String,
    /// Feed-type specific options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed_options: Option<BTreeMap<String, String>>,
}

/// `CreateFeedResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateFeedResponse {
    /// Feed id.
    pub feed_id: String,
}

/// `Feed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Feed {
    /// Feed id.
    pub feed_id: String,
    /// Feed type.
    pub feed_type: String,
    /// Marketplaces.
    #[serde(default)]
    pub marketplace_ids: Vec<String>,
    /// Creation time.
    pub created_time: DateTime<Utc>,
    /// Status.
    pub processing_status: ProcessingStatus,
    /// Processing start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_start_time: Option<DateTime<Utc>>,
    /// Processing end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_end_time: Option<DateTime<Utc>>,
    /// Result document (DONE, sometimes FATAL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_feed_document_id: Option<String>,
}

/// `GetFeedsResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetFeedsResponse {
    /// Feeds of this page.
    #[serde(default)]
    pub feeds: Vec<Feed>,
    /// Token of the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `FeedDocument`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedDocument {
    /// Document id.
    pub feed_document_id: String,
    /// Presigned download URL (valid five minutes). Treat as a secret: never log it.
    pub url: String,
    /// Set when the content is compressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression_algorithm: Option<CompressionAlgorithm>,
}

/// Parameters of `getFeeds`: `feed_types` or `next_token` is required.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetFeedsParams {
    /// Feed types (1–10).
    pub feed_types: Vec<String>,
    /// Marketplaces (1–10).
    pub marketplace_ids: Vec<String>,
    /// Page size (1–100, default 10).
    pub page_size: Option<u32>,
    /// Statuses.
    pub processing_statuses: Vec<ProcessingStatus>,
    /// Created at or after (at most 90 days ago).
    pub created_since: Option<DateTime<Utc>>,
    /// Created before.
    pub created_until: Option<DateTime<Utc>>,
    /// Next page (when given, Amazon ignores the other parameters).
    pub next_token: Option<String>,
}

impl GetFeedsParams {
    fn to_request(&self) -> Result<ApiRequest> {
        let bad = |m: &str| Err(Error::InvalidRequest(format!("getFeeds: {m}")));
        if self.next_token.is_none() && self.feed_types.is_empty() {
            return bad("feedTypes or nextToken is required");
        }
        if self.feed_types.len() > 10 || self.marketplace_ids.len() > 10 {
            return bad("at most 10 feedTypes and 10 marketplaceIds");
        }
        if let Some(n) = self.page_size
            && !(1..=100).contains(&n)
        {
            return bad("pageSize must be 1..=100");
        }
        let ts = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
        let statuses: Vec<&str> = self
            .processing_statuses
            .iter()
            .map(|s| s.as_str())
            .collect();
        Ok(ApiRequest::new(
            Operation::GetFeeds,
            Method::GET,
            "/feeds/2021-06-30/feeds".to_owned(),
        )
        .query_csv("feedTypes", &self.feed_types)
        .query_csv("marketplaceIds", &self.marketplace_ids)
        .query_opt("pageSize", self.page_size.map(|n| n.to_string()))
        .query_csv("processingStatuses", &statuses)
        .query_opt("createdSince", ts(self.created_since))
        .query_opt("createdUntil", ts(self.created_until))
        .query_opt("nextToken", self.next_token.clone()))
    }
}

impl Shop {
    /// `createFeedDocument`: a document id and a presigned upload URL.
    pub async fn create_feed_document(
        &self,
        content_type: &str,
    ) -> Result<CreateFeedDocumentResponse> {
        let req = ApiRequest::new(
            Operation::CreateFeedDocument,
            Method::POST,
            "/feeds/2021-06-30/documents".to_owned(),
        )
        .json(&CreateFeedDocumentSpecification {
            content_type: content_type.to_owned(),
        })?;
        self.execute(req, Expect::Json(json::<CreateFeedDocumentResponse>))
            .await
    }

    /// Uploads feed content to the presigned URL of `document` (HTTP PUT with the same
    /// `content_type` as declared to `createFeedDocument`). Retried on transient failures.
    pub async fn upload_feed_document(
        &self,
        document: &CreateFeedDocumentResponse,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<()> {
        documents::upload(self, &document.url, content_type, body).await
    }

    /// `createFeedDocument` followed by the upload: everything before `createFeed`, safe to
    /// repeat. Returns the document (its id goes into the intent record).
    pub async fn prepare_feed_document(
        &self,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<CreateFeedDocumentResponse> {
        let document = self.create_feed_document(content_type).await?;
        self.upload_feed_document(&document, content_type, body)
            .await?;
        Ok(document)
    }

    /// `createFeed`. Never re-sent after an unknown outcome: a timeout, a 5xx or an
    /// unreadable 202 returns [`Error::UnknownOutcome`]; the caller reconciles with
    /// [`Shop::get_feeds`] before submitting again. `JSON_LISTINGS_FEED` also takes a token
    /// of its own quota (5 per 5 minutes).
    pub async fn create_feed(&self, spec: &CreateFeedSpecification) -> Result<CreateFeedResponse> {
        if spec.marketplace_ids.is_empty() || spec.marketplace_ids.len() > 25 {
            return Err(Error::InvalidRequest(
                "createFeed: 1 to 25 marketplaceIds".into(),
            ));
        }
        let mut req = ApiRequest::new(
            Operation::CreateFeed,
            Method::POST,
            "/feeds/2021-06-30/feeds".to_owned(),
        )
        .json(spec)?;
        if spec.feed_type == JSON_LISTINGS_FEED {
            req.extra_quota = Some(Operation::JsonListingsFeedSubmission);
        }
        self.execute(req, Expect::Json(json::<CreateFeedResponse>))
            .await
    }

    /// `getFeed`.
    pub async fn get_feed(&self, feed_id: &str) -> Result<Feed> {
        let req = ApiRequest::new(
            Operation::GetFeed,
            Method::GET,
            format!("/feeds/2021-06-30/feeds/{}", segment(feed_id)),
        );
        self.execute(req, Expect::Json(json::<Feed>)).await
    }

    /// `getFeeds`.
    pub async fn get_feeds(&self, params: &GetFeedsParams) -> Result<GetFeedsResponse> {
        let req = params.to_request()?;
        self.execute(req, Expect::Json(json::<GetFeedsResponse>))
            .await
    }

    /// `cancelFeed` (only feeds still `IN_QUEUE`).
    pub async fn cancel_feed(&self, feed_id: &str) -> Result<()> {
        let req = ApiRequest::new(
            Operation::CancelFeed,
            Method::DELETE,
            format!("/feeds/2021-06-30/feeds/{}", segment(feed_id)),
        );
        self.execute(req, Expect::Empty(|| ())).await
    }

    /// `getFeedDocument`: where to download a (result) document.
    pub async fn get_feed_document(&self, feed_document_id: &str) -> Result<FeedDocument> {
        let req = ApiRequest::new(
            Operation::GetFeedDocument,
            Method::GET,
            format!("/feeds/2021-06-30/documents/{}", segment(feed_document_id)),
        );
        self.execute(req, Expect::Json(json::<FeedDocument>)).await
    }

    /// Downloads a document (gunzipped when compressed); decode it with
    /// [`Document::text`].
    pub async fn download_document(&self, document: &FeedDocument) -> Result<Document> {
        documents::download(self, &document.url, document.compression_algorithm.as_ref()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../spapi-models/models/feeds-api-model/feeds_2021-06-30.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn sandbox(
        model: &serde_json::Value,
        path: &str,
        method: &str,
        status: &str,
    ) -> serde_json::Value {
        model["paths"][path][method]["responses"][status]["x-amzn-api-sandbox"]["static"][0].clone()
    }

    /// Amazon's sandbox responses of every Feeds operation parse into the typed models.
    #[test]
    fn sandbox_responses_parse() {
        let m = model();
        let feeds: GetFeedsResponse = serde_json::from_value(
            sandbox(&m, "/feeds/2021-06-30/feeds", "get", "200")["response"].clone(),
        )
        .unwrap();
        assert!(!feeds.feeds.is_empty());
        assert_eq!(feeds.feeds[0].feed_id, "FeedId1");

        let created: CreateFeedResponse = serde_json::from_value(
            sandbox(&m, "/feeds/2021-06-30/feeds", "post", "202")["response"].clone(),
        )
        .unwrap();
        assert_eq!(created.feed_id, "3485934");
        // The sandbox request body is a valid CreateFeedSpecification.
        let spec: CreateFeedSpecification = serde_json::from_value(
            sandbox(&m, "/feeds/2021-06-30/feeds", "post", "202")["request"]["parameters"]["body"]
                ["value"]
                .clone(),
        )
        .unwrap();
        assert_eq!(spec.marketplace_ids.len(), 2);

        let feed: Feed = serde_json::from_value(
            sandbox(&m, "/feeds/2021-06-30/feeds/{feedId}", "get", "200")["response"].clone(),
        )
        .unwrap();
        assert_eq!(feed.processing_status, ProcessingStatus::Cancelled);
        assert!(feed.processing_status.is_terminal());

        let doc: CreateFeedDocumentResponse = serde_json::from_value(
            sandbox(&m, "/feeds/2021-06-30/documents", "post", "201")["response"].clone(),
        )
        .unwrap();
        assert_eq!(doc.feed_document_id, "3d4e42b5-1d6e-44e8-a89c-2abfca0625bb");

        let fd: FeedDocument = serde_json::from_value(
            sandbox(
                &m,
                "/feeds/2021-06-30/documents/{feedDocumentId}",
                "get",
                "200",
            )["response"]
                .clone(),
        )
        .unwrap();
        assert_eq!(fd.compression_algorithm, None);

        // Error bodies keep code and message.
        let errors = crate::client::parse_error_body(
            sandbox(&m, "/feeds/2021-06-30/feeds", "post", "400")["response"]
                .to_string()
                .as_bytes(),
        );
        assert_eq!(errors[0].code, "400");
        assert_eq!(errors[0].details.as_deref(), Some("Invalid input"));
    }

    #[test]
    fn get_feeds_needs_types_or_token() {
        assert!(GetFeedsParams::default().to_request().is_err());
        let p = GetFeedsParams {
            feed_types: vec![POST_ORDER_FULFILLMENT_DATA.into()],
            processing_statuses: vec![ProcessingStatus::Done, ProcessingStatus::Fatal],
            ..Default::default()
        };
        let q = p.to_request().unwrap().query;
        assert_eq!(q[1], ("processingStatuses", "DONE,FATAL".to_owned()));
    }
}

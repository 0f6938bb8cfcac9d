//! Feed processing reports: the XML `ProcessingReport` of `POST_ORDER_FULFILLMENT_DATA` and the
//! JSON report of `JSON_LISTINGS_FEED`, both turned into per-message results.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Outcome of one feed message, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Processed (JSON: accepted) without issues.
    Success,
    /// Processed with warnings.
    Warning,
    /// Rejected.
    Error,
}

impl MessageStatus {
    /// `success` / `warning` / `error` (the `feed_messages.result` values).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

/// Severity of one issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational.
    Info,
    /// Warning.
    Warning,
    /// Error.
    Error,
}

/// One issue Amazon reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportIssue {
    /// Severity.
    pub severity: Severity,
    /// Amazon's code (XML `ResultMessageCode`, JSON `code`).
    pub code: Option<String>,
    /// Amazon's (possibly Japanese) message.
    pub message: String,
}

/// The result of one submitted message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageResult {
    /// The feed's `MessageID` / `messageId`.
    pub message_id: u64,
    /// Worst outcome.
    pub status: MessageStatus,
    /// Every issue for this message (worst first).
    pub issues: Vec<ReportIssue>,
    /// Order id Amazon echoed (XML `AdditionalInfo/AmazonOrderID`).
    pub amazon_order_id: Option<String>,
    /// SKU Amazon echoed (JSON `sku`, XML `AdditionalInfo/SKU`).
    pub sku: Option<String>,
}

impl MessageResult {
    /// Code of the worst issue.
    pub fn code(&self) -> Option<&str> {
        self.issues.first().and_then(|i| i.code.as_deref())
    }

    /// Message of the worst issue.
    pub fn message(&self) -> Option<&str> {
        self.issues.first().map(|i| i.message.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// XML ProcessingReport
// ---------------------------------------------------------------------------------------------

/// `ProcessingSummary` of an XML report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessingSummary {
    /// `MessagesProcessed`.
    #[serde(rename = "MessagesProcessed", default)]
    pub messages_processed: u64,
    /// `MessagesSuccessful`.
    #[serde(rename = "MessagesSuccessful", default)]
    pub messages_successful: u64,
    /// `MessagesWithError`.
    #[serde(rename = "MessagesWithError", default)]
    pub messages_with_error: u64,
    /// `MessagesWithWarning`.
    #[serde(rename = "MessagesWithWarning", default)]
    pub messages_with_warning: u64,
}

/// One `Result` of an XML report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XmlResult {
    /// The submitted message (0 or absent: the whole document).
    pub message_id: u64,
    /// `Error` or `Warning`.
    pub result_code: String,
    /// `ResultMessageCode`.
    pub result_message_code: Option<String>,
    /// `ResultDescription`.
    pub result_description: String,
    /// `AdditionalInfo/AmazonOrderID`.
    pub amazon_order_id: Option<String>,
    /// `AdditionalInfo/AmazonOrderItemCode`.
    pub amazon_order_item_code: Option<String>,
    /// `AdditionalInfo/SKU`.
    pub sku: Option<String>,
}

impl XmlResult {
    fn severity(&self) -> Severity {
        match self.result_code.trim() {
            "Warning" => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

/// An XML `ProcessingReport` (`POST_ORDER_FULFILLMENT_DATA` and other XML feeds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct XmlProcessingReport {
    /// `DocumentTransactionID`.
    pub document_transaction_id: Option<String>,
    /// `StatusCode` (`Complete`, `Processing`, `Rejected`).
    pub status_code: Option<String>,
    /// Counts.
    pub summary: Option<ProcessingSummary>,
    /// Errors and warnings.
    pub results: Vec<XmlResult>,
}

mod xml {
    use super::ProcessingSummary;
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub(super) struct Envelope {
        #[serde(rename = "Message", default)]
        pub(super) messages: Vec<Message>,
    }

    #[derive(Deserialize)]
    pub(super) struct Message {
        #[serde(rename = "ProcessingReport")]
        pub(super) report: Option<Report>,
    }

    #[derive(Deserialize)]
    pub(super) struct Report {
        #[serde(rename = "DocumentTransactionID")]
        pub(super) document_transaction_id: Option<String>,
        #[serde(rename = "StatusCode")]
        pub(super) status_code: Option<String>,
        #[serde(rename = "ProcessingSummary")]
        pub(super) summary: Option<ProcessingSummary>,
        #[serde(rename = "Result", default)]
        pub(super) results: Vec<ResultEl>,
    }

    #[derive(Deserialize)]
    pub(super) struct ResultEl {
        #[serde(rename = "MessageID")]
        pub(super) message_id: Option<String>,
        #[serde(rename = "ResultCode")]
        pub(super) result_code: Option<String>,
        #[serde(rename = "ResultMessageCode")]
        pub(super) result_message_code: Option<String>,
        #[serde(rename = "ResultDescription")]
        pub(super) result_description: Option<String>,
        #[serde(rename = "AdditionalInfo")]
        pub(super) additional_info: Option<AdditionalInfo>,
    }

    #[derive(Deserialize)]
    pub(super) struct AdditionalInfo {
        #[serde(rename = "AmazonOrderID")]
        pub(super) amazon_order_id: Option<String>,
        #[serde(rename = "AmazonOrderItemCode")]
        pub(super) amazon_order_item_code: Option<String>,
        #[serde(rename = "SKU")]
        pub(super) sku: Option<String>,
    }
}

/// Parses an XML `AmazonEnvelope` holding a `ProcessingReport`.
pub fn parse_xml_processing_report(text: &str) -> Result<XmlProcessingReport> {
    let envelope: xml::Envelope = quick_xml::de::from_str(text)
        .map_err(|e| Error::Document(format!("processing report XML: {e}")))?;
    let report = envelope
        .messages
        .into_iter()
        .find_map(|m| m.report)
        .ok_or_else(|| Error::Document("no ProcessingReport in the envelope".into()))?;
    let results = report
        .results
        .into_iter()
        .map(|r| XmlResult {
            message_id: r
                .message_id
                .and_then(|id| id.trim().parse().ok())
                .unwrap_or(0),
            result_code: r.result_code.unwrap_or_else(|| "Error".into()),
            result_message_code: r.result_message_code.map(|c| c.trim().to_owned()),
            result_description: r.result_description.unwrap_or_default().trim().to_owned(),
            amazon_order_id: r
                .additional_info
                .as_ref()
                .and_then(|a| a.amazon_order_id.clone()),
            amazon_order_item_code: r
                .additional_info
                .as_ref()
                .and_then(|a| a.amazon_order_item_code.clone()),
            sku: r.additional_info.and_then(|a| a.sku),
        })
        .collect();
    Ok(XmlProcessingReport {
        document_transaction_id: report.document_transaction_id,
        status_code: report.status_code.map(|s| s.trim().to_owned()),
        summary: report.summary,
        results,
    })
}

// ---------------------------------------------------------------------------------------------
// JSON listings processing report
// ---------------------------------------------------------------------------------------------

/// Header of a JSON listings processing report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListingsReportHeader {
    /// Seller.
    #[serde(default)]
    pub seller_id: String,
    /// `2.0`.
    #[serde(default)]
    pub version: String,
    /// Feed id.
    #[serde(default)]
    pub feed_id: String,
}

/// One issue of a JSON listings processing report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListingsReportIssue {
    /// Message (absent for feed-level issues).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<u64>,
    /// SKU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// Code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// `ERROR`, `WARNING` or `INFO`.
    pub severity: String,
    /// Localized message.
    pub message: String,
    /// Attribute concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_name: Option<String>,
}

impl ListingsReportIssue {
    fn severity(&self) -> Severity {
        match self.severity.as_str() {
            "ERROR" => Severity::Error,
            "WARNING" => Severity::Warning,
            _ => Severity::Info,
        }
    }
}

/// Summary of a JSON listings processing report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListingsReportSummary {
    /// Errors.
    #[serde(default)]
    pub errors: u64,
    /// Warnings.
    #[serde(default)]
    pub warnings: u64,
    /// Messages processed.
    #[serde(default)]
    pub messages_processed: u64,
    /// Messages accepted for asynchronous application.
    #[serde(default)]
    pub messages_accepted: u64,
    /// Messages rejected.
    #[serde(default)]
    pub messages_invalid: u64,
}

/// A `JSON_LISTINGS_FEED` processing report
/// (`listings-feed-processing-report-schema-v2.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListingsProcessingReport {
    /// Header.
    #[serde(default)]
    pub header: ListingsReportHeader,
    /// Issues.
    #[serde(default)]
    pub issues: Vec<ListingsReportIssue>,
    /// Summary.
    #[serde(default)]
    pub summary: ListingsReportSummary,
    /// Listings items (when `includedData` was requested), kept as raw JSON.
    #[serde(default)]
    pub items: Vec<serde_json::Value>,
}

/// Parses a JSON listings processing report.
pub fn parse_listings_processing_report(text: &str) -> Result<ListingsProcessingReport> {
    serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| Error::Document(format!("listings processing report JSON: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Either
// ---------------------------------------------------------------------------------------------

/// A processing report of either kind.
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessingReport {
    /// XML `ProcessingReport`.
    Xml(XmlProcessingReport),
    /// JSON listings report.
    Json(ListingsProcessingReport),
}

/// Parses a processing report, recognizing XML or JSON by its first character.
pub fn parse_processing_report(text: &str) -> Result<ProcessingReport> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('<') {
        parse_xml_processing_report(trimmed).map(ProcessingReport::Xml)
    } else if trimmed.starts_with('{') {
        parse_listings_processing_report(trimmed).map(ProcessingReport::Json)
    } else {
        Err(Error::Document(
            "processing report is neither XML nor JSON".into(),
        ))
    }
}

struct Collected {
    issues: Vec<ReportIssue>,
    amazon_order_id: Option<String>,
    sku: Option<String>,
}

impl ProcessingReport {
    /// Issues that concern the whole document rather than one message (e.g. malformed XML).
    pub fn feed_issues(&self) -> Vec<ReportIssue> {
        self.collect().1
    }

    fn collect(&self) -> (BTreeMap<u64, Collected>, Vec<ReportIssue>) {
        let mut per_message: BTreeMap<u64, Collected> = BTreeMap::new();
        let mut feed = Vec::new();
        let mut push = |id: Option<u64>,
                        issue: ReportIssue,
                        order: Option<String>,
                        sku: Option<String>| match id {
            Some(id) if id > 0 => {
                let entry = per_message.entry(id).or_insert(Collected {
                    issues: Vec::new(),
                    amazon_order_id: None,
                    sku: None,
                });
                entry.issues.push(issue);
                entry.amazon_order_id = entry.amazon_order_id.take().or(order);
                entry.sku = entry.sku.take().or(sku);
            }
            _ => feed.push(issue),
        };
        match self {
            ProcessingReport::Xml(r) => {
                for res in &r.results {
                    push(
                        Some(res.message_id),
                        ReportIssue {
                            severity: res.severity(),
                            code: res.result_message_code.clone(),
                            message: res.result_description.clone(),
                        },
                        res.amazon_order_id.clone(),
                        res.sku.clone(),
                    );
                }
            }
            ProcessingReport::Json(r) => {
                for issue in &r.issues {
                    push(
                        issue.message_id,
                        ReportIssue {
                            severity: issue.severity(),
                            code: issue.code.clone(),
                            message: issue.message.clone(),
                        },
                        None,
                        issue.sku.clone(),
                    );
                }
            }
        }
        (per_message, feed)
    }

    /// One result per submitted message id. Messages the report does not mention succeeded,
    /// unless the report carries document-level errors (then they failed with those).
    /// Message ids mentioned by the report but not in `sent` are appended.
    pub fn message_results(&self, sent: impl IntoIterator<Item = u64>) -> Vec<MessageResult> {
        let (mut per_message, feed) = self.collect();
        let feed_failed = feed.iter().any(|i| i.severity == Severity::Error);
        let mut results = Vec::new();
        let mut finish = |message_id: u64, collected: Option<Collected>| {
            let (mut issues, amazon_order_id, sku) = match collected {
                Some(c) => (c.issues, c.amazon_order_id, c.sku),
                None if feed_failed => (feed.clone(), None, None),
                None => (Vec::new(), None, None),
            };
            issues.sort_by_key(|i| std::cmp::Reverse(i.severity));
            let status = match issues.first().map(|i| i.severity) {
                Some(Severity::Error) => MessageStatus::Error,
                Some(Severity::Warning) => MessageStatus::Warning,
                Some(Severity::Info) | None => MessageStatus::Success,
            };
            results.push(MessageResult {
                message_id,
                status,
                issues,
                amazon_order_id,
                sku,
            });
        };
        for id in sent {
            let collected = per_message.remove(&id);
            finish(id, collected);
        }
        for (id, collected) in per_message {
            finish(id, Some(collected));
        }
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use encoding_rs::SHIFT_JIS;

    const REPORT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<AmazonEnvelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="amzn-envelope.xsd">
  <Header><DocumentVersion>1.02</DocumentVersion><MerchantIdentifier>A1SELLER</MerchantIdentifier></Header>
  <MessageType>ProcessingReport</MessageType>
  <Message>
    <MessageID>1</MessageID>
    <ProcessingReport>
      <DocumentTransactionID>53935018605</DocumentTransactionID>
      <StatusCode>Complete</StatusCode>
      <ProcessingSummary>
        <MessagesProcessed>3</MessagesProcessed><MessagesSuccessful>1</MessagesSuccessful>
        <MessagesWithError>1</MessagesWithError><MessagesWithWarning>1</MessagesWithWarning>
      </ProcessingSummary>
      <Result>
        <MessageID>2</MessageID><ResultCode>Error</ResultCode>
        <ResultMessageCode>18028</ResultMessageCode>
        <ResultDescription>The data you submitted is incomplete or invalid &amp; was rejected.</ResultDescription>
        <AdditionalInfo><AmazonOrderID>503-1234567-1234567</AmazonOrderID></AdditionalInfo>
      </Result>
      <Result>
        <MessageID>3</MessageID><ResultCode>Warning</ResultCode>
        <ResultMessageCode>5001</ResultMessageCode>
        <ResultDescription>Tracking number format unusual</ResultDescription>
      </Result>
    </ProcessingReport>
  </Message>
</AmazonEnvelope>"#;

    #[test]
    fn xml_report_per_message() {
        let report = parse_processing_report(REPORT).unwrap();
        let ProcessingReport::Xml(xml) = &report else {
            panic!("xml")
        };
        assert_eq!(xml.status_code.as_deref(), Some("Complete"));
        assert_eq!(xml.summary.as_ref().unwrap().messages_with_error, 1);
        let results = report.message_results([1, 2, 3]);
        assert_eq!(results[0].status, MessageStatus::Success);
        assert_eq!(results[1].status, MessageStatus::Error);
        assert_eq!(results[1].code(), Some("18028"));
        assert_eq!(
            results[1].message(),
            Some("The data you submitted is incomplete or invalid & was rejected.")
        );
        assert_eq!(
            results[1].amazon_order_id.as_deref(),
            Some("503-1234567-1234567")
        );
        assert_eq!(results[2].status, MessageStatus::Warning);
    }

    #[test]
    fn document_level_error_fails_every_message() {
        let text = r#"<AmazonEnvelope><Header><DocumentVersion>1.02</DocumentVersion><MerchantIdentifier>M</MerchantIdentifier></Header>
<MessageType>ProcessingReport</MessageType><Message><MessageID>1</MessageID><ProcessingReport>
<DocumentTransactionID>1</DocumentTransactionID><StatusCode>Complete</StatusCode>
<ProcessingSummary><MessagesProcessed>0</MessagesProcessed><MessagesSuccessful>0</MessagesSuccessful><MessagesWithError>1</MessagesWithError><MessagesWithWarning>0</MessagesWithWarning></ProcessingSummary>
<Result><MessageID>0</MessageID><ResultCode>Error</ResultCode><ResultMessageCode>5000</ResultMessageCode><ResultDescription>XML Parsing Fatal Error</ResultDescription></Result>
</ProcessingReport></Message></AmazonEnvelope>"#;
        let report = parse_processing_report(text).unwrap();
        assert_eq!(report.feed_issues().len(), 1);
        let results = report.message_results([1, 2]);
        assert!(results.iter().all(|r| r.status == MessageStatus::Error));
        assert_eq!(results[0].code(), Some("5000"));
    }

    /// A Japanese report encoded in CP932 (bytes, not a UTF-8 string) decodes and parses with
    /// its Japanese text intact.
    #[test]
    fn cp932_japanese_xml_report() {
        let japanese = "注文番号 503-1234567-1234567 の出荷通知に無効な追跡番号が含まれています（ヤマト運輸）。";
        let source = REPORT
            .replace("encoding=\"UTF-8\"", "encoding=\"Shift_JIS\"")
            .replace(
                "The data you submitted is incomplete or invalid &amp; was rejected.",
                japanese,
            );
        let (bytes, _, had_errors) = SHIFT_JIS.encode(&source);
        assert!(!had_errors);
        let bytes = bytes.into_owned();
        assert!(std::str::from_utf8(&bytes).is_err());
        for content_type in [
            Some("text/xml; charset=Windows-31J"),
            Some("text/xml"),
            None,
        ] {
            let decoded = crate::documents::decode_text(&bytes, content_type);
            let report = parse_processing_report(&decoded.text).unwrap();
            let results = report.message_results([1, 2, 3]);
            assert_eq!(results[1].message(), Some(japanese), "{content_type:?}");
        }
    }

    fn example() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../spapi-models/schemas/feeds/listings-feed-processing-report-schema-v2.example.json"
        ))
        .unwrap()
    }

    /// Amazon's example JSON listings processing report.
    #[test]
    fn json_listings_report_example() {
        let report = parse_processing_report(&example()).unwrap();
        let ProcessingReport::Json(json) = &report else {
            panic!("json")
        };
        assert_eq!(json.header.feed_id, "1234567890");
        assert_eq!(json.summary.messages_invalid, 2);
        assert_eq!(json.items.len(), 2);
        let results = report.message_results(1..=5);
        let by_id: BTreeMap<u64, &MessageResult> =
            results.iter().map(|r| (r.message_id, r)).collect();
        assert_eq!(by_id[&1].status, MessageStatus::Success);
        assert_eq!(by_id[&4].status, MessageStatus::Error);
        assert_eq!(by_id[&4].issues.len(), 2);
        assert_eq!(by_id[&4].sku.as_deref(), Some("My-SKU-B"));
        assert_eq!(by_id[&4].code(), Some("90220"));
        assert_eq!(by_id[&5].status, MessageStatus::Error);
        assert_eq!(by_id[&5].sku.as_deref(), Some("My-SKU-C"));
        assert_eq!(
            results
                .iter()
                .filter(|r| r.status == MessageStatus::Error)
                .count() as u64,
            json.summary.messages_invalid
        );
    }

    #[test]
    fn cp932_japanese_json_report() {
        let japanese = "「出荷作業日数」は0から30の間で指定してください。";
        let text = format!(
            r#"{{"header":{{"sellerId":"A1","version":"2.0","feedId":"9"}},
               "issues":[{{"messageId":2,"sku":"SKU-漢字","code":"4000003","severity":"ERROR","message":"{japanese}"}}],
               "summary":{{"errors":1,"warnings":0,"messagesProcessed":2,"messagesAccepted":1,"messagesInvalid":1}}}}"#
        );
        let (bytes, _, _) = SHIFT_JIS.encode(&text);
        let decoded =
            crate::documents::decode_text(&bytes, Some("application/json; charset=Shift_JIS"));
        let results = parse_processing_report(&decoded.text)
            .unwrap()
            .message_results([1, 2]);
        assert_eq!(results[0].status, MessageStatus::Success);
        assert_eq!(results[1].message(), Some(japanese));
        assert_eq!(results[1].sku.as_deref(), Some("SKU-漢字"));
    }
}

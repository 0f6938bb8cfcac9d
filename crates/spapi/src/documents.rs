//! Feed and report documents: presigned upload/download, gzip, and character sets.
//!
//! Japanese processing reports often come back in Shift_JIS / Windows-31J (CP932) rather than
//! UTF-8. The charset is taken from the download's `Content-Type` (or an XML declaration);
//! without one, UTF-8 is tried first and CP932 used when the bytes are not valid UTF-8.
//! `encoding_rs::SHIFT_JIS` is the WHATWG Shift_JIS, which is Windows-31J (CP932).

use std::io::Read;
use std::time::Duration;

use encoding_rs::{Encoding, SHIFT_JIS, UTF_8};
use flate2::read::MultiGzDecoder;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE};
use tracing::Instrument;

use crate::client::{Shop, SpApi, content_type_of};
use crate::error::{Error, Result, TransportKind};
use crate::stats::Outcome;
use crate::types::string_enum;

string_enum! {
    /// Compression of a document (`compressionAlgorithm` of a feed or report document).
    pub enum CompressionAlgorithm {
        /// gzip.
        Gzip = "GZIP",
    }
}

/// A downloaded document: decompressed bytes and the server's content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The content (already gunzipped).
    pub bytes: Vec<u8>,
    /// `Content-Type` of the download, if any.
    pub content_type: Option<String>,
}

/// Text decoded from a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedText {
    /// The text.
    pub text: String,
    /// The encoding used (`UTF-8` or `Shift_JIS`, ...).
    pub encoding: &'static str,
    /// Some bytes were invalid in that encoding and replaced with U+FFFD.
    pub had_errors: bool,
}

impl Document {
    /// A document from raw (possibly gzipped) bytes.
    pub fn from_bytes(
        bytes: Vec<u8>,
        content_type: Option<String>,
        compression: Option<&CompressionAlgorithm>,
    ) -> Result<Self> {
        Ok(Self {
            bytes: decompress(bytes, compression)?,
            content_type,
        })
    }

    /// The text, decoded as described in the module documentation.
    pub fn text(&self) -> DecodedText {
        decode_text(&self.bytes, self.content_type.as_deref())
    }
}

/// Gunzips `bytes` when `compression` says GZIP or the bytes start with the gzip magic
/// number (servers that set `Content-Encoding: gzip` may or may not have decoded already).
pub fn decompress(bytes: Vec<u8>, compression: Option<&CompressionAlgorithm>) -> Result<Vec<u8>> {
    let gzip_magic = bytes.starts_with(&[0x1f, 0x8b]);
    match compression {
        Some(CompressionAlgorithm::Gzip) | None if gzip_magic => {
            let mut out = Vec::with_capacity(bytes.len() * 4);
            MultiGzDecoder::new(bytes.as_slice())
                .read_to_end(&mut out)
                .map_err(|e| Error::Document(format!("gzip: {e}")))?;
            Ok(out)
        }
        // Declared GZIP but not gzip: the transport already decoded it.
        Some(CompressionAlgorithm::Gzip) | None => Ok(bytes),
        Some(CompressionAlgorithm::Other(other)) => Err(Error::Document(format!(
            "unsupported compression algorithm {other}"
        ))),
    }
}

/// The `charset` parameter of a `Content-Type` value.
pub fn charset_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (k, v) = param.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Maps a charset label to an encoding, including the Java/Windows names of CP932.
fn encoding_for(label: &str) -> Option<&'static Encoding> {
    let lower = label.trim().to_ascii_lowercase();
    match lower.as_str() {
        "cp932" | "windows-932" | "ms932" | "windows-31j" | "x-ms-cp932" | "sjis" | "shift_jis"
        | "shift-jis" | "x-sjis" => Some(SHIFT_JIS),
        _ => Encoding::for_label(lower.as_bytes()),
    }
}

/// The `encoding` of an XML declaration at the start of `bytes`.
fn xml_declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(200)];
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&head[..end]).ok()?;
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next()?;
    let rest = &rest[1..];
    Some(rest[..rest.find(quote)?].to_owned())
}

/// Decodes document bytes to text: charset from `content_type`, else from an XML declaration,
/// else UTF-8; CP932 when the bytes are not valid in the UTF-8 that was assumed or declared.
pub fn decode_text(bytes: &[u8], content_type: Option<&str>) -> DecodedText {
    let declared = content_type
        .and_then(charset_of)
        .or_else(|| xml_declared_encoding(bytes))
        .and_then(|label| encoding_for(&label));
    let encoding = declared.unwrap_or(UTF_8);
    if encoding == UTF_8 {
        let without_bom = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        if let Ok(text) = std::str::from_utf8(without_bom) {
            return DecodedText {
                text: text.to_owned(),
                encoding: UTF_8.name(),
                had_errors: false,
            };
        }
        // Japanese reports are often CP932 whatever they claim.
        let (text, _, had_errors) = SHIFT_JIS.decode(bytes);
        return DecodedText {
            text: text.into_owned(),
            encoding: SHIFT_JIS.name(),
            had_errors,
        };
    }
    let (text, used, had_errors) = encoding.decode(bytes);
    DecodedText {
        text: text.into_owned(),
        encoding: used.name(),
        had_errors,
    }
}

fn transport(operation: &'static str, e: reqwest::Error) -> Error {
    Error::Transport {
        operation,
        kind: if e.is_timeout() {
            TransportKind::Timeout
        } else if e.is_connect() {
            TransportKind::Connect
        } else {
            TransportKind::Other
        },
        // The presigned URL is a bearer credential: never include it.
        message: e.without_url().to_string(),
    }
}

/// PUTs `body` to a presigned URL with `content_type`. Idempotent: retried with backoff on
/// transport errors and 5xx.
pub(crate) async fn upload(
    shop: &Shop,
    url: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Result<()> {
    let api = shop.api();
    const OP: &str = "uploadFeedDocument";
    let span = tracing::info_span!(
        "spapi.document",
        operation = OP,
        status = tracing::field::Empty,
        bytes = body.len()
    );
    async {
        let retry = &api.config().retry;
        let mut attempt = 0u32;
        loop {
            let result = api
                .http_documents()
                .put(url)
                .header(CONTENT_TYPE, content_type)
                .body(body.clone())
                .send()
                .await;
            let err = match result {
                Ok(response) if response.status().is_success() => {
                    tracing::Span::current().record("status", response.status().as_u16());
                    shop.record_call(OP, attempt > 0, Outcome::Ok);
                    return Ok(());
                }
                Ok(response) => {
                    let status = response.status();
                    tracing::Span::current().record("status", status.as_u16());
                    shop.record_call(OP, attempt > 0, Outcome::Error);
                    let err = Error::Api {
                        operation: OP,
                        status: status.as_u16(),
                        request_id: None,
                        errors: vec![],
                    };
                    if !status.is_server_error() {
                        return Err(err);
                    }
                    err
                }
                Err(e) => {
                    shop.record_call(OP, attempt > 0, Outcome::Error);
                    transport(OP, e)
                }
            };
            if attempt >= retry.max_retries {
                return Err(err);
            }
            let delay = retry.backoff(attempt);
            attempt += 1;
            tracing::warn!(error = %err, attempt, "upload failed, retrying");
            tokio::time::sleep(delay).await;
        }
    }
    .instrument(span)
    .await
}

/// GETs a presigned document URL, gunzips and returns it. Retried on transport errors, 5xx
/// and broken gzip.
pub(crate) async fn download(
    shop: &Shop,
    url: &str,
    compression: Option<&CompressionAlgorithm>,
) -> Result<Document> {
    let api = shop.api();
    const OP: &str = "downloadDocument";
    let span = tracing::info_span!(
        "spapi.document",
        operation = OP,
        status = tracing::field::Empty,
        bytes = tracing::field::Empty
    );
    async {
        let retry = &api.config().retry;
        let mut attempt = 0u32;
        loop {
            let err = match fetch(api, url).await {
                Ok((status, content_type, content_encoding, bytes))
                    if (200..300).contains(&status) =>
                {
                    tracing::Span::current().record("status", status);
                    tracing::Span::current().record("bytes", bytes.len());
                    let declared = compression.cloned().or_else(|| {
                        content_encoding
                            .filter(|e| e.eq_ignore_ascii_case("gzip"))
                            .map(|_| CompressionAlgorithm::Gzip)
                    });
                    match Document::from_bytes(bytes, content_type, declared.as_ref()) {
                        Ok(doc) => {
                            shop.record_call(OP, attempt > 0, Outcome::Ok);
                            return Ok(doc);
                        }
                        Err(e) => {
                            shop.record_call(OP, attempt > 0, Outcome::Error);
                            e
                        }
                    }
                }
                Ok((status, ..)) => {
                    tracing::Span::current().record("status", status);
                    shop.record_call(OP, attempt > 0, Outcome::Error);
                    let err = Error::Api {
                        operation: OP,
                        status,
                        request_id: None,
                        errors: vec![],
                    };
                    if status < 500 {
                        return Err(err);
                    }
                    err
                }
                Err(e) => {
                    shop.record_call(OP, attempt > 0, Outcome::Error);
                    e
                }
            };
            if attempt >= retry.max_retries {
                return Err(err);
            }
            let delay = retry.backoff(attempt);
            attempt += 1;
            tracing::warn!(error = %err, attempt, "download failed, retrying");
            tokio::time::sleep(delay.max(Duration::from_millis(1))).await;
        }
    }
    .instrument(span)
    .await
}

async fn fetch(api: &SpApi, url: &str) -> Result<(u16, Option<String>, Option<String>, Vec<u8>)> {
    const OP: &str = "downloadDocument";
    let response = api
        .http_documents()
        .get(url)
        .send()
        .await
        .map_err(|e| transport(OP, e))?;
    let status = response.status().as_u16();
    let content_type = content_type_of(response.headers());
    let content_encoding = response
        .headers()
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response.bytes().await.map_err(|e| transport(OP, e))?;
    Ok((status, content_type, content_encoding, bytes.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    const JAPANESE: &str =
        "注文番号の形式が正しくありません。出荷通知を確認してください（ヤマト運輸）";

    fn cp932(text: &str) -> Vec<u8> {
        let (bytes, _, had_errors) = SHIFT_JIS.encode(text);
        assert!(!had_errors);
        bytes.into_owned()
    }

    #[test]
    fn charset_parameter() {
        assert_eq!(
            charset_of("text/xml; charset=Shift_JIS").as_deref(),
            Some("Shift_JIS")
        );
        assert_eq!(
            charset_of("text/plain;CHARSET=\"UTF-8\"").as_deref(),
            Some("UTF-8")
        );
        assert_eq!(charset_of("text/plain"), None);
    }

    #[test]
    fn cp932_by_charset_and_by_fallback() {
        let bytes = cp932(JAPANESE);
        assert!(std::str::from_utf8(&bytes).is_err(), "really not UTF-8");
        for ct in [
            Some("text/plain; charset=Windows-31J"),
            Some("text/plain; charset=cp932"),
            Some("text/plain; charset=Shift_JIS"),
            Some("text/plain; charset=UTF-8"), // lies: falls back to CP932
            None,
        ] {
            let decoded = decode_text(&bytes, ct);
            assert_eq!(decoded.text, JAPANESE, "{ct:?}");
            assert_eq!(decoded.encoding, "Shift_JIS");
            assert!(!decoded.had_errors);
        }
        // CP932 extensions (NEC row 13, IBM extensions) survive too.
        let extended = "①②Ⅲ㈱髙﨑";
        assert_eq!(decode_text(&cp932(extended), None).text, extended);
    }

    #[test]
    fn utf8_with_bom_and_xml_declaration() {
        let text = "出荷済み";
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(text.as_bytes());
        assert_eq!(decode_text(&bom, None).text, text);

        let mut xml = br#"<?xml version="1.0" encoding="Shift_JIS"?>"#.to_vec();
        xml.extend(cp932("<a>出荷</a>"));
        let decoded = decode_text(&xml, Some("application/octet-stream"));
        assert!(decoded.text.ends_with("<a>出荷</a>"));
    }

    #[test]
    fn gzip_is_detected() {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&cp932(JAPANESE)).unwrap();
        let gz = enc.finish().unwrap();
        let doc =
            Document::from_bytes(gz.clone(), None, Some(&CompressionAlgorithm::Gzip)).unwrap();
        assert_eq!(doc.text().text, JAPANESE);
        // Undeclared gzip (Content-Encoding handled elsewhere) is still recognized.
        let doc = Document::from_bytes(gz, None, None).unwrap();
        assert_eq!(doc.text().text, JAPANESE);
        // Declared but already decoded.
        let doc = Document::from_bytes(b"plain".to_vec(), None, Some(&CompressionAlgorithm::Gzip))
            .unwrap();
        assert_eq!(doc.bytes, b"plain");
        // Broken gzip is an error.
        assert!(Document::from_bytes(vec![0x1f, 0x8b, 0, 1, 2], None, None).is_err());
    }
}

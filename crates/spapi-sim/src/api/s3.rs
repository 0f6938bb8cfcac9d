//! Stand-in for the presigned S3 URLs of feed documents (upload `PUT`, download `GET`).

use std::io::Write;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::http::{Query, call};
use crate::ops::Op;
use crate::records::PresignedMethod;
use crate::sim::Sim;

/// An S3-style XML error.
fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    resp
}

/// Looks up and checks the presigned URL; `Err` is the S3 error response.
fn check(
    sim: &Sim,
    document_id: &str,
    q: &Query,
    method: PresignedMethod,
) -> Result<bool, Box<Response>> {
    let st = sim.lock();
    let sig = q.one("X-Amz-Signature").unwrap_or("");
    let now = st.now();
    let Some(p) = st
        .presigned
        .get(sig)
        .filter(|p| p.document_id == document_id && p.method == method)
    else {
        // Expired URLs are dropped from the store, so both look the same: Amazon S3 answers
        // 403 for an expired presigned URL as well.
        return Err(Box::new(s3_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Request has expired or the signature does not match",
        )));
    };
    if p.expires_at <= now {
        return Err(Box::new(s3_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Request has expired",
        )));
    }
    Ok(p.content_encoding_gzip)
}

/// `PUT /s3/tortuga/{documentId}?X-Amz-...` — upload of a feed document.
pub(crate) async fn upload(
    State(sim): State<Sim>,
    headers: HeaderMap,
    Path(document_id): Path<String>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let sim2 = sim.clone();
    let req_headers = headers.clone();
    call(&sim, Op::UploadFeedDocument, &headers, |_, _| async move {
        let q = Query::parse(raw.as_deref());
        if let Err(resp) = check(&sim2, &document_id, &q, PresignedMethod::Put) {
            return Ok(*resp);
        }
        let mut st = sim2.lock();
        let Some(doc) = st.documents.get_mut(&document_id) else {
            return Ok(s3_error(StatusCode::NOT_FOUND, "NoSuchKey", "The specified key does not exist."));
        };
        // The presigned URL is signed over Content-Type: it must match createFeedDocument.
        let sent = req_headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !sent.eq_ignore_ascii_case(&doc.content_type) {
            return Ok(s3_error(
                StatusCode::FORBIDDEN,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check the Content-Type header.",
            ));
        }
        doc.content = Some(body.to_vec());
        let etag = format!("\"{:016x}\"", body.len() as u64 * 2_654_435_761 % 0xFFFF_FFFF_FFFF);
        let mut resp = Response::new(Body::empty());
        if let Ok(v) = HeaderValue::from_str(&etag) {
            resp.headers_mut().insert(header::ETAG, v);
        }
        Ok(resp)
    })
    .await
}

/// `GET /s3/tortuga/{documentId}?X-Amz-...` — download of a (result) document.
pub(crate) async fn download(
    State(sim): State<Sim>,
    headers: HeaderMap,
    Path(document_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    call(&sim, Op::DownloadDocument, &headers, |sim2, _| async move {
        let q = Query::parse(raw.as_deref());
        let encoding_header = match check(&sim2, &document_id, &q, PresignedMethod::Get) {
            Ok(e) => e,
            Err(resp) => return Ok(*resp),
        };
        let st = sim2.lock();
        let Some(doc) = st.documents.get(&document_id) else {
            return Ok(s3_error(
                StatusCode::NOT_FOUND,
                "NoSuchKey",
                "The specified key does not exist.",
            ));
        };
        let content = doc.content.clone().unwrap_or_default();
        let bytes = if doc.gzip {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(&content)
                .and_then(|_| enc.finish())
                .unwrap_or_default()
        } else {
            content
        };
        let mut resp = Response::new(Body::from(bytes));
        if let Ok(v) = HeaderValue::from_str(&doc.content_type) {
            resp.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        if doc.gzip {
            resp.headers_mut().insert(
                "x-amz-meta-sim-compression",
                HeaderValue::from_static("gzip"),
            );
            if encoding_header {
                resp.headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
        }
        Ok(resp)
    })
    .await
}
